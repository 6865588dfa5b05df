"""ema: the moving average of the trainable weights (lipo.training.averaging)."""

import pytest
import torch

from lipo.config import RunConfig
from lipo.models.backbones import load_backbone
from lipo.models.regressor import assemble
from lipo.training.averaging import WeightAverage


def two_layers() -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    model[0].requires_grad_(False)  # frozen: never averaged
    return model


def test_the_average_moves_towards_the_weights_with_a_warmed_up_decay():
    model = two_layers()
    start = model[1].weight.detach().clone()
    average = WeightAverage(model, 0.999)
    assert set(average.shadow) == {"1.weight", "1.bias"}
    with torch.no_grad():
        model[1].weight.add_(1.0)
    average.update()  # decay min(0.999, 1/10): 90% of the way at once
    assert average.shadow["1.weight"] == pytest.approx(start + 0.9)
    average.update()  # decay 2/11
    assert average.shadow["1.weight"] == pytest.approx(start + 1 - 0.1 * 2 / 11)
    for _ in range(200):
        average.update()
    assert average.shadow["1.weight"] == pytest.approx(model[1].weight.detach(), abs=1e-6)


def test_the_decay_reaches_ema_and_stays():
    average = WeightAverage(two_layers(), 0.9)
    decays = []
    for _ in range(100):
        decays.append(average.current_decay())
        average.update()
    assert decays[:3] == pytest.approx([0.1, 2 / 11, 3 / 12])
    assert decays[-1] == 0.9 and max(decays) == 0.9 and decays == sorted(decays)


def test_applied_swaps_the_average_in_and_the_weights_back():
    model = two_layers()
    average = WeightAverage(model, 0.5)
    trained = model[1].weight.detach().clone()
    average.shadow["1.weight"].fill_(3.0)
    with average.applied():
        assert torch.equal(model[1].weight, torch.full_like(trained, 3.0))
    assert torch.equal(model[1].weight, trained)
    assert model[1].weight.requires_grad


def test_state_dict_roundtrip_continues_the_same_average():
    model = two_layers()
    average = WeightAverage(model, 0.99)
    for _ in range(5):
        with torch.no_grad():
            model[1].weight.mul_(1.1)
        average.update()
    again = WeightAverage(model, 0.99)
    again.load_state_dict(average.state_dict())
    assert again.updates == 5
    average.update(), again.update()
    for name in average.shadow:
        assert torch.equal(again.shadow[name], average.shadow[name])


def test_a_state_of_other_parameters_is_refused():
    average = WeightAverage(two_layers(), 0.99)
    state = average.state_dict()
    state["shadow"]["2.weight"] = state["shadow"].pop("1.weight")
    with pytest.raises(ValueError, match="other parameters"):
        WeightAverage(two_layers(), 0.99).load_state_dict(state)


def test_a_peft_model_averages_its_adapters_and_head_alone():
    cfg = RunConfig(backbone="tiny", adapter="lora")
    model = assemble(load_backbone("tiny", ["CCO"]), cfg, 0.0, 1.0)
    average = WeightAverage(model, 0.99)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(average.shadow) == trainable
    assert all("lora_" in n or ".head." in n for n in trainable)
