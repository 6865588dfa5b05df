import pytest
from transformers import AutoTokenizer

from lipo.models.tokenizer import build_tokenizer, decode, smiles_pieces

TRICKY = [
    r"F/C=C\F",  # cis/trans bonds: backslash and slash
    "c1cc[nH]c1",  # bracket aromatic nitrogen with H
    "ClCBr",  # two-letter halogens
    "C%10CCCCCCCCC%10",  # ring closure above 9
    "[C@@H](O)(N)C(=O)[O-]",
    "CC(C)(C)c1ccc(cc1)S(=O)(=O)N",
    "[Na+].[Cl-]",
]


@pytest.fixture(scope="module")
def tokenizer():
    # The corpus teaches the bracket atoms; the molecules tested are not in it.
    return build_tokenizer(["[C@@H](O)N", "[Na+].[Cl-]", "[O-]", "Cc1cc[nH]n1"])


@pytest.mark.parametrize("smiles", TRICKY)
def test_round_trip(tokenizer, smiles):
    ids = tokenizer(smiles)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert decode(tokenizer, ids) == smiles


def test_pieces_follow_the_regex():
    assert smiles_pieces("ClC(Br)[nH]%12") == ["Cl", "C", "(", "Br", ")", "[nH]", "%12"]


def test_special_tokens_and_template(tokenizer):
    ids = tokenizer("CCO")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    for name in ("pad_token", "mask_token", "cls_token", "sep_token", "unk_token"):
        assert getattr(tokenizer, name) is not None


def test_unknown_bracket_atom_maps_to_unk(tokenizer):
    ids = tokenizer("C[Xe]C")["input_ids"]
    assert tokenizer.unk_token_id in ids


def test_save_and_reload_with_autotokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    for smiles in TRICKY:
        assert again(smiles)["input_ids"] == tokenizer(smiles)["input_ids"]
        assert decode(again, again(smiles)["input_ids"]) == smiles
    assert again.pad_token_id == tokenizer.pad_token_id
