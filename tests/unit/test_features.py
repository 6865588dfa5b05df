import numpy as np
import torch

from lipo.backbones import load_backbone
from lipo.config import RunConfig
from lipo.features import RDKIT_DESCRIPTORS, compute, standardisation
from lipo.model import assemble


def test_descriptors_are_computed():
    feats = compute("rdkit", ["CCO", "c1ccccc1"])
    assert feats.shape == (2, len(RDKIT_DESCRIPTORS))
    names = list(RDKIT_DESCRIPTORS)
    assert feats[1, names.index("aromatic_rings")] == 1
    assert feats[0, names.index("hbd")] == 1
    assert compute("", ["CCO"]) is None


def test_standardised_with_train_statistics_only():
    feats = np.array([[0.0], [2.0], [100.0]], dtype=np.float32)
    mean, std = standardisation(feats, np.array([0, 1]))
    assert mean.tolist() == [1.0] and std.tolist() == [1.0]


def test_features_reach_the_head():
    torch.manual_seed(0)
    backbone = load_backbone("tiny", ["CCO"])
    stats = (np.zeros(8, dtype=np.float32), np.ones(8, dtype=np.float32))
    model = assemble(backbone, RunConfig(head_features="rdkit", dropout=0.0), 0.0, 1.0, stats)
    model.eval()
    batch = backbone.tokenizer(["CCO"], return_tensors="pt")
    feats = torch.as_tensor(compute("rdkit", ["CCO"]))
    a = model(batch["input_ids"], batch["attention_mask"], feats)
    b = model(batch["input_ids"], batch["attention_mask"], feats + 1.0)
    assert not torch.allclose(a, b)
