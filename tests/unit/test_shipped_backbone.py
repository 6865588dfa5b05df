"""The pre-trained `mini` shipped in the package loads offline and matches its model card."""

import hashlib
import json
import re

import pytest

from lipo.errors import ConfigError, LipoError
from lipo.models import backbones
from lipo.models.backbones import SHIPPED, load_backbone

FOLDER = SHIPPED / "mini"
PREVIOUS = SHIPPED / "mini-moses"
BEFORE_CONTINUING = SHIPPED / "mini-30500"
EARLIER = SHIPPED / "mini-22500"
EARLIER_STILL = SHIPPED / "mini-13500"
FIRST_RUN = SHIPPED / "mini-5500"


def assert_checksums(folder):
    """Every file the folder's checksums.json names has that sha256."""
    sums = json.loads((folder / "checksums.json").read_text())
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_model_card_matches_the_files():
    """The default `mini`: pre-trained on the new mix with the descriptor objective, covering
    the task's tokens and lengths."""
    assert_checksums(FOLDER)
    card = json.loads((FOLDER / "lipo_card.json").read_text())
    assert [c["sha256"][:16] for c in card["corpora"]] == [
        "b3b28c9fb4c6f7e1",  # MOSES train
        "9b20d5c94dc5d40e",
    ]  # ChEMBL
    assert card["size"] == "mini" and card["objective"] == "masked-LM + 1.0 x descriptors"
    assert card["coverage/tokens"] >= 0.99 and card["coverage/length"] >= 0.99
    # pre-training continued the 30,500-step encoder shipped as mini-30500, which had
    # continued mini-22500, which had continued mini-13500, which had continued mini-5500;
    # every step on the same corpora with the same objective
    chain = [
        (FOLDER, 30500, BEFORE_CONTINUING),
        (BEFORE_CONTINUING, 22500, EARLIER),
        (EARLIER, 13500, EARLIER_STILL),
        (EARLIER_STILL, 5500, FIRST_RUN),
    ]
    for later, steps, folder in chain:
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        later_card = json.loads((later / "lipo_card.json").read_text())
        assert (
            later_card["continued_from"] == f"mini ({steps} steps; model.safetensors {digest[:16]})"
        )
        earlier_card = json.loads((folder / "lipo_card.json").read_text())
        assert (earlier_card["corpora"], earlier_card["objective"]) == (
            card["corpora"],
            card["objective"],
        )
    assert (card["steps"], card["total_steps"]) == (8000, 38500)


@pytest.mark.parametrize(
    "folder, name, steps",
    [
        (BEFORE_CONTINUING, "mini-30500", 8000),
        (EARLIER, "mini-22500", 9000),
        (EARLIER_STILL, "mini-13500", 8000),
        (FIRST_RUN, "mini-5500", 5500),
    ],
)
def test_an_earlier_mini_stays_reachable_under_its_step_count(folder, name, steps, monkeypatch):
    assert_checksums(folder)
    card = json.loads((folder / "lipo_card.json").read_text())
    assert card["steps"] == steps and card["size"] == "mini"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before, default = load_backbone(name, corpus=[]), load_backbone("mini", corpus=[])
    assert before.source == name and before.revision != default.revision


def test_the_previous_mini_stays_reachable_as_mini_moses(monkeypatch):
    assert_checksums(PREVIOUS)
    card = json.loads((PREVIOUS / "lipo_card.json").read_text())
    assert card["corpus_sha256"] == (
        "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2"
    )  # MOSES test split
    assert card["size"] == "mini" and card["heldout/mlm_loss"] > 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    previous, default = load_backbone("mini-moses", corpus=[]), load_backbone("mini", corpus=[])
    assert previous.source == "mini-moses" and previous.revision != default.revision


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
    assert json.loads((PREVIOUS / "lipo_card.json").read_text())["corpus"] == (
        "moses_test_smiles.csv.gz"
    )
    assert [c["file"] for c in json.loads((FOLDER / "lipo_card.json").read_text())["corpora"]] == [
        "moses_train_smiles.csv.gz",
        "chembl_moleculeace_smiles.csv.gz",
    ]
    for name in (
        "mini/README.md",
        "mini/lipo_card.json",
        "mini-30500/README.md",
        "mini-30500/lipo_card.json",
        "mini-22500/README.md",
        "mini-22500/lipo_card.json",
        "mini-13500/README.md",
        "mini-13500/lipo_card.json",
        "mini-5500/README.md",
        "mini-5500/lipo_card.json",
        "mini-moses/README.md",
        "mini-moses/lipo_card.json",
    ):
        text = (SHIPPED / name).read_text()
        assert not re.search(r"(?<![\w.])/(work|tmp|home|root|Users|mnt|data)/|[A-Z]:\\", text), (
            name
        )


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
    assert [c["file"] for c in card["corpora"]] == [
        "moses_train_smiles.csv.gz",
        "chembl_moleculeace_smiles.csv.gz",
    ]
    assert card["coverage/tokens"] >= 0.99 and card["coverage/length"] >= 0.99
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = load_backbone("small", corpus=[])
    assert backbone.source == "small" and backbone.revision and backbone.hidden_size == 192
    ids = backbone.tokenizer(molecules.smiles)["input_ids"]
    unknown = sum(i == backbone.tokenizer.unk_token_id for seq in ids for i in seq)
    assert unknown / sum(map(len, ids)) < 0.001


@pytest.mark.parametrize(
    "earlier_name", ["mini-30500", "mini-22500", "mini-13500", "mini-5500", "mini-moses"]
)
def test_a_run_trained_on_an_earlier_mini_rebuilds_on_its_weights(
    earlier_name, tmp_path, monkeypatch
):
    """Its checkpoint names `mini` at the earlier weights' revision: predict finds them."""
    from lipo.models.checkpoint import rebuild_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    earlier = load_backbone(earlier_name, corpus=[]).revision
    backbone = rebuild_backbone(
        tmp_path, {"pretrained": True, "source": "mini", "revision": earlier}
    )
    assert backbone.revision == earlier and backbone.source == earlier_name
    with pytest.raises(LipoError, match="revision 0123"):
        rebuild_backbone(tmp_path, {"pretrained": True, "source": "mini", "revision": "0123"})
