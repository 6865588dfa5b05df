"""Masked-LM training in one place: the loop (loop.py), pre-training a backbone on SMILES
corpora (pretrain.py, corpus.py, descriptor_targets.py, model.py, card.py) and the ``mlm``
strategy's domain adaptation on the task's own molecules (adapt.py)."""
