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
