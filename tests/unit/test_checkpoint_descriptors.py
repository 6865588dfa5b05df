"""A checkpoint trained with descriptor head features keeps the descriptor names and the RDKit
that computed them; where this RDKit computes another list, loading it stops and says which
names differ (a list of the same length would otherwise load and predict nonsense)."""

import json

import numpy as np
import pytest
import rdkit
import torch
from rdkit.Chem import Descriptors

from lipo.config import RunConfig
from lipo.data import features
from lipo.errors import LipoError
from lipo.models.backbones import load_backbone
from lipo.models.checkpoint import load_checkpoint, save_checkpoint
from lipo.models.regressor import assemble

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC"]


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    backbone = load_backbone("tiny", SMILES)
    cfg = RunConfig(backbone="tiny", head_features="rdkit")
    n = len(features.RDKIT_DESCRIPTORS)
    stats = (np.zeros(n, dtype=np.float32), np.ones(n, dtype=np.float32))
    return save_checkpoint(
        assemble(backbone, cfg, 2.0, 1.0, stats), backbone, cfg, tmp_path / "checkpoint"
    )


def another_rdkit(monkeypatch, names_functions: dict) -> None:
    """This process's descriptor list as another RDKit release would compute it."""
    monkeypatch.setitem(features.FEATURE_SETS, "rdkit", names_functions)


def test_the_checkpoint_records_the_descriptors_and_the_rdkit(checkpoint):
    record = json.loads((checkpoint / "descriptors.json").read_text())
    assert record == {
        "head_features": "rdkit",
        "names": list(features.RDKIT_DESCRIPTORS),
        "rdkit": rdkit.__version__,
    }
    model, _, cfg = load_checkpoint(checkpoint)  # the same list: it loads
    assert cfg.head_features == "rdkit" and model.feature_mean.shape == (8,)


def test_a_different_list_of_the_same_length_is_refused_naming_the_difference(
    checkpoint, monkeypatch
):
    changed = dict(features.RDKIT_DESCRIPTORS)
    del changed["tpsa"]
    changed["labute_asa"] = Descriptors.LabuteASA
    another_rdkit(monkeypatch, changed)
    with pytest.raises(LipoError) as info:
        load_checkpoint(checkpoint)
    message = str(info.value)
    assert str(checkpoint) in message and "\n" not in message
    assert (
        f"trained with --head-features rdkit on 8 descriptors computed by RDKit {rdkit.__version__}"
    ) in message
    assert "(missing here: tpsa; extra here: labute_asa)" in message
    assert f"install rdkit=={rdkit.__version__}" in message


def test_a_reordered_list_is_refused_too(checkpoint, monkeypatch):
    another_rdkit(monkeypatch, dict(reversed(features.RDKIT_DESCRIPTORS.items())))
    with pytest.raises(LipoError, match="the same names in another order"):
        load_checkpoint(checkpoint)


def test_a_checkpoint_without_features_records_none(tmp_path):
    backbone = load_backbone("tiny", SMILES)
    cfg = RunConfig(backbone="tiny")
    folder = save_checkpoint(assemble(backbone, cfg, 2.0, 1.0), backbone, cfg, tmp_path / "c")
    assert not (folder / "descriptors.json").exists()
    load_checkpoint(folder)
