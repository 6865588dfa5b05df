"""Our MoLFormer against the public reference code (fixtures made by
tests/fixtures/molformer/make_fixture.py): outputs to 1e-5, tokens id for id, and the
published model's tensor names and shapes."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from lipo.config import RunConfig
from lipo.models.backbones import load_backbone
from lipo.models.regressor import assemble
from lipo.molformer import MoLFormerConfig, MoLFormerForMaskedLM, MoLFormerModel
from lipo.molformer.tokenizer import tokenizer_from_folder
from lipo.molformer.weights import load_encoder, masked_lm
from lipo.training.trial_run import count_params

FIXTURES = Path(__file__).parents[1] / "fixtures" / "molformer"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def expected():
    return load_file(FIXTURES / "expected.safetensors")


@pytest.fixture(scope="module")
def reference_folder_model():
    encoder = load_encoder(FIXTURES / "tiny")
    return encoder, masked_lm(encoder, FIXTURES / "tiny").eval()


@torch.no_grad()
def test_outputs_match_the_reference_in_evaluation(expected, reference_folder_model):
    encoder, mlm = reference_folder_model
    ids, mask = expected["input_ids"], expected["attention_mask"]
    assert (mask == 0).any(), "the fixture must exercise padding"
    out = encoder(ids, mask)
    got = {
        "last_hidden_state": out.last_hidden_state,
        "pooled": out.pooler_output,
        "logits": mlm(ids, mask).logits,
    }
    diffs = {name: (got[name] - expected[name]).abs().max().item() for name in got}
    print("max abs diff vs reference:", diffs)
    assert all(d <= TOLERANCE for d in diffs.values()), diffs
    # The fixture is not trivial: outputs far from zero and differing across molecules.
    assert expected["logits"].abs().max() > 1.0
    assert not torch.allclose(expected["pooled"][0], expected["pooled"][1])


def test_masked_lm_head_is_the_checkpoints(reference_folder_model):
    _, mlm = reference_folder_model
    stored = load_file(FIXTURES / "tiny" / "model.safetensors")
    assert torch.equal(mlm.lm_head.decoder.weight, stored["lm_head.decoder.weight"])


def test_tokens_match_the_reference_tokenizer():
    tokenizer = tokenizer_from_folder(FIXTURES / "tiny")
    cases = json.loads((FIXTURES / "tokens.json").read_text())
    # among them: an unknown bracket atom ([Se] -> <unk>) and a stray character (dropped)
    for case in cases:
        assert tokenizer(case["smiles"])["input_ids"] == case["input_ids"], case["smiles"]


def published_names():
    return json.loads((FIXTURES / "published_names.json").read_text())


def test_names_and_shapes_equal_the_published_checkpoints():
    model = MoLFormerForMaskedLM(MoLFormerConfig())  # the published configuration
    params = dict(model.named_parameters())
    ours = [
        {"name": k, "shape": list(v.shape), "kind": "parameter" if k in params else "buffer"}
        for k, v in model.state_dict().items()
    ]
    assert sorted(ours, key=lambda e: e["name"]) == sorted(
        published_names(), key=lambda e: e["name"]
    )


def test_total_params_is_the_checkpoints_encoder_plus_our_head():
    torch.manual_seed(0)
    backbone = load_backbone("molformer-tiny", ["CCO"])
    backbone.encoder = MoLFormerModel(MoLFormerConfig())  # full size, random
    cfg = RunConfig(backbone="molformer", adapter="full")
    model = assemble(backbone, cfg, 0.0, 1.0)
    encoder_params = sum(
        torch.Size(e["shape"]).numel()
        for e in published_names()
        if e["kind"] == "parameter" and e["name"].startswith("molformer.")
    )
    head = sum(p.numel() for p in model.head.parameters())
    assert count_params(model)["total_params"] == encoder_params + head
    # By hand: embeddings 2362*768 + 12 layers * (4 attention Linear(768, 768) + 2 feed-forward
    # Linear(768, 768) + 2 LayerNorms) + the final LayerNorm; 46,781,184 with the LM head.
    assert encoder_params == 2362 * 768 + 12 * (6 * (768 * 768 + 768) + 2 * 1536) + 1536


def dropout_only(model: nn.Module) -> None:
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()


@torch.no_grad()
def test_random_features_fixed_in_evaluation_and_under_mc_dropout(expected):
    encoder = load_encoder(FIXTURES / "tiny")
    ids, mask = expected["input_ids"], expected["attention_mask"]
    stored = encoder.encoder.layer[0].attention.self.feature_map.weight.clone()
    first = encoder(ids, mask).last_hidden_state
    assert torch.equal(first, encoder(ids, mask).last_hidden_state)
    encoder.train()
    for module in encoder.modules():  # dropout off: only the feature draws can differ
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    assert not torch.allclose(first, encoder(ids, mask).last_hidden_state)
    # A training draw is for that pass only: evaluation still uses the stored features.
    assert torch.equal(stored, encoder.encoder.layer[0].attention.self.feature_map.weight)
    dropout_only(encoder)  # MC dropout's mode: the attention modules stay in eval
    assert torch.equal(first, encoder(ids, mask).last_hidden_state)


@torch.no_grad()
def test_without_deterministic_eval_features_are_redrawn(expected):
    encoder = load_encoder(FIXTURES / "tiny")
    for layer in encoder.encoder.layer:
        layer.attention.self.feature_map.deterministic = False
    ids, mask = expected["input_ids"], expected["attention_mask"]
    assert not torch.allclose(
        encoder(ids, mask).last_hidden_state, encoder(ids, mask).last_hidden_state
    )


def test_special_tokens_missing_from_the_vocabulary_get_the_references_ids():
    from lipo.molformer.tokenizer import tokenizer_from_vocab

    # MoLFormer's tokenizer (4.34) appends a missing <unk> after the vocabulary: id 6 here.
    tokenizer = tokenizer_from_vocab(
        {"<bos>": 0, "<eos>": 1, "<pad>": 2, "<mask>": 3, "C": 4, "O": 5}
    )
    assert tokenizer.unk_token_id == 6
    assert tokenizer("CC[Se]O")["input_ids"] == [0, 4, 4, 6, 5, 1]
