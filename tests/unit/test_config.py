import pytest

from lipo.config import RunConfig
from lipo.errors import ConfigError


def test_overrides_and_flat_params():
    cfg = RunConfig().with_overrides({"lr": 1e-3, "adapter.r": 8, "strategy.k": 64})
    assert cfg.lr == 1e-3 and cfg.adapter_args == {"r": 8}
    flat = cfg.flat()
    assert flat["adapter.r"] == 8 and flat["strategy.k"] == 64 and "adapter_args" not in flat
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match="'learning_rate'"):
        RunConfig().with_overrides({"learning_rate": 1e-3})


def test_epochs_knob_never_exceeds_the_command_line_cap():
    capped = RunConfig(epochs=2).with_overrides({"epochs": 8})
    assert capped.epochs == 2
    assert RunConfig(epochs=10).with_overrides({"epochs": 7}).epochs == 7


@pytest.mark.parametrize(
    "knob, value",
    [
        ("ema", -0.1),
        ("ema", 1.0),
        ("ema", float("nan")),
        ("ema", "0.9"),
        ("layer_lr_decay", 0.0),
        ("layer_lr_decay", 1.5),
        ("layer_lr_decay", True),
    ],
)
def test_recipe_knobs_outside_their_range_are_refused(knob, value):
    with pytest.raises(ConfigError, match=knob):
        RunConfig().with_overrides({knob: value})  # as a search space's draw arrives


def test_recipe_knobs_are_search_knobs_and_off_by_default():
    assert (RunConfig().ema, RunConfig().layer_lr_decay) == (0.0, 1.0)
    cfg = RunConfig().with_overrides({"ema": 0.99, "layer_lr_decay": 0.8})
    assert (cfg.ema, cfg.layer_lr_decay) == (0.99, 0.8)
    assert cfg.flat()["ema"] == 0.99 and cfg.flat()["layer_lr_decay"] == 0.8
