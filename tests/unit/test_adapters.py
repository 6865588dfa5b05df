"""Exact trainable-parameter counts on `tiny` (2 layers, width 32, feed-forward 128, head
32 -> 32 -> 1), worked out by hand, and a save/rebuild round trip for every adapter."""

import pytest
import torch

from lipo.config import RunConfig
from lipo.errors import ConfigError
from lipo.models.backbones import load_backbone
from lipo.models.checkpoint import load_checkpoint, save_checkpoint
from lipo.models.regressor import assemble
from lipo.training.trial_run import count_params

W, FF, LAYERS = 32, 128, 2
HEAD = (W * W + W) + (W + 1)  # Linear(32, 32) and Linear(32, 1) = 1089
POSITIONS = 512 * (W // 2)  # the sinusoidal position table: 512 positions x head size 16


def lora(r, fan_in, fan_out):
    return r * fan_in + fan_out * r  # A is r x in, B is out x r


BY_HAND = {
    ("full", ()): None,  # every parameter
    ("bitfit", ()): HEAD + W + LAYERS * (3 * W + W + W + FF + W + W),  # embeddings LN + per layer
    ("lora", (("r", 4),)): HEAD + LAYERS * 3 * lora(4, W, W),  # query, key, value
    ("lora", (("r", 4), ("targets", "all"))): HEAD
    + LAYERS * (4 * lora(4, W, W) + lora(4, W, FF) + lora(4, FF, W)),
    ("ia3", ()): HEAD + LAYERS * (W + W + FF),  # keys, values, feed-forward activation
}


def build(adapter, **knobs):
    torch.manual_seed(0)
    backbone = load_backbone("tiny", ["CCO", "c1ccccc1"])
    cfg = RunConfig(backbone="tiny", adapter=adapter, adapter_args=knobs)
    return assemble(backbone, cfg, 2.0, 1.2), backbone, cfg


@pytest.mark.parametrize("adapter, knobs", list(BY_HAND))
def test_trainable_counts_by_hand(adapter, knobs):
    model, _, _ = build(adapter, **dict(knobs))
    counts = count_params(model)
    full = count_params(build("full")[0])["total_params"]
    expected = BY_HAND[(adapter, knobs)] or full - POSITIONS  # full: all but the fixed table
    assert counts["trainable_params"] == expected
    added = 0 if adapter in ("full", "bitfit") else expected - HEAD
    assert counts["total_params"] == full + added  # PEFT's frozen copy of the head not counted


@pytest.mark.parametrize("adapter", ["lora", "ia3"])
def test_head_is_saved_with_peft(adapter):
    model, _, _ = build(adapter)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(".head.modules_to_save." in n for n in trainable)


@pytest.mark.parametrize("name", ["tiny", "mini"])
def test_position_table_is_neither_trained_nor_decayed(name):
    """`full` turns every parameter on, and `mini` comes from save_pretrained (which does
    too): the fixed sinusoidal table must still stay out of the optimiser."""
    backbone = load_backbone(name, ["CCO", "c1ccccc1"])
    model = assemble(backbone, RunConfig(backbone=name), 2.0, 1.2)
    table = model.encoder.get_submodule("encoder.embed_positions").weight
    before = table.detach().clone()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert not table.requires_grad and all(p is not table for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=0.1, weight_decay=0.5)  # as fit() builds it
    ids = torch.tensor([backbone.tokenizer("CCO")["input_ids"]])
    model(ids, torch.ones_like(ids)).sum().backward()
    optimizer.step()
    assert torch.equal(table, before)
    assert (
        count_params(model)["trainable_params"]
        == count_params(model)["total_params"] - table.numel()
    )


def test_masked_lm_adaptation_leaves_the_position_table_fixed():
    from lipo.masked_lm.adapt import masked_lm

    mlm = masked_lm(load_backbone("mini", ["CCO"]))
    tables = [p for n, p in mlm.named_parameters() if "embed_positions" in n]
    assert tables and not any(p.requires_grad for p in tables)


def test_unknown_adapter_lists_the_names():
    with pytest.raises(ConfigError, match="expected one of bitfit, full, ia3, lora"):
        build("prefix")


def test_unknown_lora_targets():
    with pytest.raises(ConfigError, match="LoRA targets 'mlp'"):
        build("lora", targets="mlp")


@pytest.mark.parametrize(
    "adapter, knobs",
    [
        ("full", {}),
        ("bitfit", {}),
        ("lora", {"r": 2}),
        ("lora", {"r": 2, "use_dora": True}),
        ("ia3", {}),
    ],
)
def test_checkpoint_round_trip(tmp_path, adapter, knobs):
    model, backbone, cfg = build(adapter, **knobs)
    with torch.no_grad():  # move every trainable weight away from its initial value
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.eval()
    batch = backbone.tokenizer(["CCO", "c1ccccc1O"], padding=True, return_tensors="pt")
    before = model.to_logd(model(batch["input_ids"], batch["attention_mask"]))
    save_checkpoint(model, backbone, cfg, tmp_path / "ckpt")
    again, tokenizer, _ = load_checkpoint(tmp_path / "ckpt")
    after = again.to_logd(again(batch["input_ids"], batch["attention_mask"]))
    torch.testing.assert_close(after, before)
