"""Backbones, adapters, strategies and commands: one registry each, and everything that lists
them (the CLI's choices and help, --control, the report's strategy figures) reads it, so
nothing can drift; a plugin is one file plus one registration line (tests/plugins.py)."""

import subprocess
import sys

import pytest

from lipo.adapters import ADAPTERS
from lipo.cli import SUBCOMMANDS, main, parser
from lipo.config import RunConfig
from lipo.errors import ConfigError
from lipo.models.backbone_names import BACKBONES
from lipo.models.backbones import check_name, load_backbone
from lipo.models.regressor import assemble
from lipo.registry import Registry
from lipo.strategies import STRATEGIES, control_knobs, control_names, plotted
from tests import plugins
from tests.conftest import ROOT


@pytest.fixture
def plugged(tmp_path, monkeypatch):
    plugins.install(tmp_path, monkeypatch)
    yield tmp_path
    plugins.forget()


def option(name: str):
    (action,) = [a for a in parser()._actions if name in a.option_strings]
    return action


def help_text() -> str:
    return " ".join(parser().format_help().split())  # argparse wraps lines anywhere


def test_cli_choices_and_help_come_from_the_registries():
    assert option("--adapter").choices == ADAPTERS.names() == ["full", "lora", "ia3", "bitfit"]
    assert option("--backbone").help == " | ".join(
        [
            "tiny",
            "mini (default)",
            "mini-scratch",
            "mini-30500",
            "mini-22500",
            "mini-13500",
            "mini-5500",
            "mini-moses",
            "molformer",
            "molformer-tiny",
            "small",
            "small-scratch",
            "PATH",
        ]
    )
    assert (
        "(curriculum: no-curriculum; active: random-acquisition, one-shot; influence: random-k)"
    ) in option("--control").help
    assert "Other commands: predict, pretrain, campaign" in help_text()


def test_registered_controls_are_the_modules_controls():
    """--control's help and errors read the registration (no import); the knobs come from
    the module: the two name the same controls, in the same order."""
    for strategy in STRATEGIES:
        assert control_names(strategy) == tuple(getattr(STRATEGIES.get(strategy), "CONTROLS", {}))
    assert STRATEGIES.having("controls") == ["curriculum", "active", "influence"]


def test_report_draws_the_strategies_registered_with_plots():
    assert plotted() == ["curriculum", "active", "influence"]


def test_every_registration_resolves_to_its_contract():
    assert all(callable(ADAPTERS.get(name).apply) for name in ADAPTERS)
    assert all(callable(STRATEGIES.get(name).train) for name in STRATEGIES)
    assert all(callable(BACKBONES.get(name)) for name in BACKBONES)
    assert all(callable(SUBCOMMANDS.get(name).main) for name in SUBCOMMANDS)


def test_listing_the_names_imports_no_torch():
    """--help builds the parser from the registries: it must stay instant."""
    code = (
        "import sys; from lipo.cli import parser; parser().format_help(); "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'rdkit') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_unknown_and_duplicate_names():
    registry = Registry("widget", "lipo")
    registry.register("b", ".errors:ConfigError")
    registry.register("a", ".errors:LipoError")
    assert registry.names() == ["b", "a"] and registry.get("b") is ConfigError
    with pytest.raises(ConfigError, match="unknown widget 'c': expected one of a, b"):
        registry.get("c")
    with pytest.raises(ConfigError, match=r"widget 'a' is already registered \(.errors:Lipo"):
        registry.register("a", ".errors")


def test_plugins_are_one_file_and_one_line_each(plugged, capsys):
    head_norms = ADAPTERS.get("head_norms")
    assert head_norms.__file__ == str(plugged / "plugin_head_norms.py")
    assert STRATEGIES.get("short_half").__file__ == str(plugged / "plugin_short_half.py")
    assert option("--adapter").choices[-1] == "head_norms"
    assert "--adapter {full,lora,ia3,bitfit,head_norms}" in help_text()
    assert parser().parse_args(["--study", "x", "--adapter", "head_norms"]).adapter == "head_norms"
    assert "tiny-again | PATH" in option("--backbone").help
    assert "influence: random-k; short_half: everything)" in option("--control").help
    assert control_knobs("short_half", "everything") == {"strategy.fraction": 1.0}
    assert plotted()[-1] == "short_half"
    assert main(["hello", "world"]) == 0 and capsys.readouterr().out == "hello world\n"


def test_a_plugin_backbone_and_adapter_build_a_model(plugged):
    check_name("tiny-again")  # a registered name needs no folder
    backbone = load_backbone("tiny-again", ["CCO", "c1ccccc1O"])
    assert backbone.source == "tiny-again" and backbone.hidden_size == 32
    model = assemble(backbone, RunConfig(backbone="tiny-again", adapter="head_norms"), 2.0, 1.0)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("head.") or ".LayerNorm." in n for n in trained)
    assert any(".LayerNorm." in n for n in trained)


def test_registrations_do_not_outlive_the_test():
    for registry, name in (
        (ADAPTERS, "head_norms"),
        (STRATEGIES, "short_half"),
        (BACKBONES, "tiny-again"),
        (SUBCOMMANDS, "hello"),
    ):
        assert name not in registry
    with pytest.raises(SystemExit):
        parser().parse_args(["--adapter", "head_norms"])
