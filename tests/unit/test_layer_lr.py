"""layer_lr_decay: each encoder layer's parameters at lr x decay^(distance from the top)."""

import pytest
import torch

from lipo.config import RunConfig
from lipo.errors import ConfigError
from lipo.models.backbones import load_backbone
from lipo.models.regressor import assemble
from lipo.training.fit import param_groups

LR, DECAY, HEAD = 1e-3, 0.5, 10.0
LAYERS = {"tiny": 2, "mini": 4, "molformer-tiny": 2}


def model_and_rates(backbone, adapter="full", head_lr_mult=HEAD):
    cfg = RunConfig(
        backbone=backbone, adapter=adapter, lr=LR, layer_lr_decay=DECAY, head_lr_mult=head_lr_mult
    )
    model = assemble(load_backbone(backbone, ["CCO", "c1ccccc1O"]), cfg, 0.0, 1.0)
    groups = param_groups(model, cfg)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    return model, groups, {n: rate[id(p)] for n, p in model.named_parameters() if id(p) in rate}


@pytest.mark.parametrize("backbone", ["tiny", "mini", "molformer-tiny"])
def test_each_layer_trains_at_its_decayed_rate(backbone):
    model, groups, rates = model_and_rates(backbone)
    n = LAYERS[backbone]
    assert len(rates) == sum(p.requires_grad for p in model.parameters())  # each one, once
    assert rates["encoder.embeddings.word_embeddings.weight"] == pytest.approx(LR * DECAY**n)
    assert rates["encoder.encoder.layer.0.attention.self.query.weight"] == pytest.approx(
        LR * DECAY ** (n - 1)
    )
    middle = n // 2  # tiny: layer 1 is the top; mini: layer 2 sits one below it
    assert rates[f"encoder.encoder.layer.{middle}.output.dense.bias"] == pytest.approx(
        LR * DECAY ** (n - 1 - middle)
    )
    assert rates[f"encoder.encoder.layer.{n - 1}.attention.self.key.weight"] == LR
    assert rates["head.net.4.weight"] == pytest.approx(LR * HEAD)
    # one group per rate: the embeddings, each layer, the head; the top layer's first
    assert len(groups) == n + 2 and groups[0]["lr"] == LR


def test_what_follows_the_layers_trains_with_the_top_one():
    _, _, rates = model_and_rates("molformer-tiny")
    assert rates["encoder.LayerNorm.weight"] == LR  # MoLFormer's final LayerNorm


def test_peft_names_keep_their_layers():
    model, _, rates = model_and_rates("tiny", adapter="lora")
    lora = "base_model.model.encoder.encoder.layer.{}.attention.self.query.lora_A.default.weight"
    assert rates[lora.format(0)] == pytest.approx(LR * DECAY)
    assert rates[lora.format(1)] == LR
    head = "base_model.model.head.modules_to_save.default.net.1.weight"
    assert rates[head] == pytest.approx(LR * HEAD)


def test_the_head_at_lr_shares_the_top_layers_group():
    _, groups, rates = model_and_rates("tiny", head_lr_mult=1.0)
    assert rates["head.net.1.weight"] == rates["encoder.encoder.layer.1.output.dense.weight"] == LR
    assert [g["lr"] for g in groups] == pytest.approx([LR, LR * DECAY, LR * DECAY**2])


class Unnumbered(torch.nn.Module):
    """An encoder whose parameter names carry no layer index."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 1)


def test_a_backbone_without_layer_names_is_refused():
    cfg = RunConfig(backbone="my-encoder", layer_lr_decay=0.8)
    with pytest.raises(ConfigError, match="layer_lr_decay.*'my-encoder'"):
        param_groups(Unnumbered(), cfg)
    assert len(param_groups(Unnumbered(), cfg.replace(layer_lr_decay=1.0))) == 1
