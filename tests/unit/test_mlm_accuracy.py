"""Masked-token accuracy counts the positions the model saw as <mask>, nothing else."""

import numpy as np
import torch
from accelerate import Accelerator
from transformers.modeling_outputs import MaskedLMOutput

from lipo.data.batching import EncodedMolecules, make_loader
from lipo.masked_lm.loop import heldout_metrics
from lipo.models.backbones import load_backbone


class CopyInput(torch.nn.Module):
    """Predicts each position's input token: right exactly where the input shows the answer
    (BERT's 10% of chosen positions left unchanged), never at a <mask>."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids, attention_mask, labels):
        logits = torch.nn.functional.one_hot(input_ids, self.vocab).float()
        return MaskedLMOutput(loss=torch.tensor(1.0), logits=logits)


def test_reading_the_unchanged_positions_scores_no_accuracy(molecules):
    tokenizer = load_backbone("tiny", molecules.smiles[:400]).tokenizer
    ids = tokenizer(list(molecules.smiles[:400]))["input_ids"]
    loader = make_loader(
        EncodedMolecules(ids, np.zeros(len(ids), np.float32)),
        np.arange(len(ids)),
        64,
        tokenizer.pad_token_id,
        shuffle=False,
    )
    metrics = heldout_metrics(
        CopyInput(len(tokenizer)), loader, tokenizer, 0.15, Accelerator(cpu=True)
    )
    assert metrics["heldout/accuracy"] == 0.0  # it was ~0.1 counting every chosen position
