"""The pre-trained `mini` shipped in the package loads offline and matches its model card."""
import hashlib
import json
import re

import pytest

from lipo import backbones
from lipo.backbones import SHIPPED, load_backbone
from lipo.errors import ConfigError

FOLDER = SHIPPED / "mini"


def assert_checksums(folder):
    """Every file the folder's checksums.json names has that sha256."""
    sums = json.loads((folder / "checksums.json").read_text())
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_model_card_matches_the_files():
    assert_checksums(FOLDER)
    card = json.loads((FOLDER / "lipo_card.json").read_text())
    assert card["corpus_sha256"] == (
        "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2")  # MOSES test split
    assert card["size"] == "mini" and card["heldout/mlm_loss"] > 0


def test_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = load_backbone("mini", corpus=[])
    assert backbone.pretrained and backbone.source == "mini" and backbone.revision
    ids = backbone.tokenizer("CC(=O)Nc1ccc(O)cc1")["input_ids"]
    assert backbone.tokenizer.unk_token_id not in ids
    assert backbone.encoder(input_ids=__import__("torch").tensor([ids]))[0].shape[-1] == 128


def test_vocabulary_covers_lipophilicity(molecules):
    tokenizer = load_backbone("mini", corpus=[]).tokenizer
    ids = tokenizer(molecules.smiles)["input_ids"]
    unknown = sum(i == tokenizer.unk_token_id for seq in ids for i in seq)
    total = sum(map(len, ids))
    assert unknown / total < 0.001


def test_model_card_names_no_path_of_the_machine_that_trained():
    """The corpus by file name and checksum (it is found again by its sha256), no folder."""
    card = json.loads((FOLDER / "lipo_card.json").read_text())
    assert card["corpus"] == "moses_test_smiles.csv.gz"
    for name in ("README.md", "lipo_card.json"):
        text = (FOLDER / name).read_text()
        assert not re.search(r"(?<![\w.])/(work|tmp|home|root|Users|mnt|data)/|[A-Z]:\\", text), name


def test_a_missing_shipped_checkpoint_is_an_error_naming_the_folder(tmp_path, monkeypatch):
    """Not a random encoder tagged `mini`: every number it produced would be mislabelled."""
    monkeypatch.setattr(backbones, "SHIPPED", tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_backbone("mini", corpus=["CCO"])
    message = str(caught.value)
    assert str(tmp_path / "mini") in message
    assert "mini-scratch" in message and "reinstall" in message


def test_small_matches_its_card_and_covers_lipophilicity(molecules, monkeypatch):
    """`small`: its files match their checksums, its card names the corpora by file and
    checksum with the task coverage, and it loads offline as a 6 x 192 encoder."""
    folder = SHIPPED / "small"
    assert_checksums(folder)
    card = json.loads((folder / "lipo_card.json").read_text())
    assert [c["file"] for c in card["corpora"]] == ["moses_train_smiles.csv.gz",
                                                    "chembl_moleculeace_smiles.csv.gz"]
    assert card["coverage/tokens"] >= 0.99 and card["coverage/length"] >= 0.99
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = load_backbone("small", corpus=[])
    assert backbone.source == "small" and backbone.revision and backbone.hidden_size == 192
    ids = backbone.tokenizer(molecules.smiles)["input_ids"]
    unknown = sum(i == backbone.tokenizer.unk_token_id for seq in ids for i in seq)
    assert unknown / sum(map(len, ids)) < 0.001
