"""Strategies use their trial through ``lipo.strategies.surface.Trial`` alone, and
``TrialRun`` offers all of it; knobs a strategy or adapter lacks are errors that name them."""

import ast
import inspect

import pytest

from lipo.config import RunConfig
from lipo.errors import ConfigError
from lipo.strategies import check_knobs, knobs
from lipo.strategies.surface import Trial
from lipo.training.trial_run import TrialRun
from tests.conftest import ROOT

STRATEGY_FILES = [
    *sorted((ROOT / "lipo" / "strategies").glob("*.py")),
    ROOT / "lipo" / "masked_lm" / "adapt.py",
]
SURFACE = {n for n in dir(Trial) if not n.startswith("_")} | set(Trial.__annotations__)


def used_on_run(path) -> set[str]:
    """Attributes read off a variable named ``run`` in a module."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "run"
    }


@pytest.mark.parametrize("path", STRATEGY_FILES, ids=lambda p: p.name)
def test_strategies_stay_on_the_trial_surface(path):
    assert used_on_run(path) - SURFACE == set()


def test_the_check_sees_an_internal():
    assert "ws" in {"ws", "cfg"} - SURFACE


def test_trial_run_offers_the_whole_surface():
    init = inspect.getsource(TrialRun.__init__)
    missing = [
        n
        for n in SURFACE
        if not hasattr(TrialRun, n) and f"self.{n}" not in init and f", self.{n}" not in init
    ]
    assert missing == []


def test_a_strategy_knob_it_lacks_is_named():
    cfg = RunConfig(strategy="curriculum", strategy_args={"treshold": 0.5, "pool": "x.csv"})
    with pytest.raises(ConfigError, match="strategy.treshold"):
        knobs({"threshold": 0.3}, cfg)


def test_known_knobs_override_defaults():
    cfg = RunConfig(strategy="curriculum", strategy_args={"threshold": 0.5, "pool": "x.csv"})
    assert knobs({"threshold": 0.3, "steps": 2}, cfg) == {"threshold": 0.5, "steps": 2}


def test_an_adapter_knob_it_lacks_is_named():
    with pytest.raises(ConfigError, match="adapter.rank"):
        check_knobs(RunConfig(adapter="lora", adapter_args={"rank": 4}))
    with pytest.raises(ConfigError, match="adapter.r .*none"):
        check_knobs(RunConfig(adapter="bitfit", adapter_args={"r": 4}))
    check_knobs(RunConfig(adapter="lora", adapter_args={"r": 4}))


def test_a_strategy_without_knobs_rejects_one():
    with pytest.raises(ConfigError, match="strategy 'all' has no knob strategy.k"):
        check_knobs(RunConfig(strategy="all", strategy_args={"k": 64}))
