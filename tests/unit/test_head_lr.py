"""head_lr_mult: the regression head in an optimiser group of its own."""

import pytest

from lipo.config import RunConfig
from lipo.models.backbones import load_backbone
from lipo.models.regressor import assemble
from lipo.training.fit import param_groups


@pytest.mark.parametrize("adapter", ["full", "lora"])
def test_the_head_gets_its_own_learning_rate(adapter):
    cfg = RunConfig(backbone="tiny", adapter=adapter, lr=1e-3, head_lr_mult=10.0)
    model = assemble(load_backbone("tiny", ["CCO"]), cfg, 0.0, 1.0)
    rest, head = param_groups(model, cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(rest["params"]) + len(head["params"]) == len(trainable)
    assert head["lr"] == pytest.approx(1e-2) and "lr" not in rest
    head_ids = {id(p) for n, p in model.named_parameters() if p.requires_grad and ".net." in n}
    assert {id(p) for p in head["params"]} == head_ids and len(head_ids) == 4  # 2 layers


def test_no_multiplier_is_one_group():
    cfg = RunConfig(backbone="tiny")
    model = assemble(load_backbone("tiny", ["CCO"]), cfg, 0.0, 1.0)
    [group] = param_groups(model, cfg)
    assert len(group["params"]) == sum(p.requires_grad for p in model.parameters())
