"""A backbone, an adapter, a strategy and a command written outside lipo, each one file plus
one registration line: what tests/unit/test_registries.py and
tests/integration/test_plugins.py add in a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

from lipo.adapters import ADAPTERS
from lipo.cli import SUBCOMMANDS
from lipo.models.backbone_names import BACKBONES
from lipo.strategies import STRATEGIES

# Trains the regression head and the LayerNorms (scale and shift of every layer), nothing
# else: the adapter contract of lipo/adapters/__init__.py.
HEAD_NORMS = """
def apply(model):
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("head.") or ".LayerNorm." in name)
    return model
"""

# The shorter half of the training set, every epoch: the strategy contract of
# lipo/strategies/__init__.py, with a logged metric and a table as the built-in ones have.
SHORT_HALF = """
import numpy as np
import pandas as pd

KNOBS = {"fraction": 0.5}
CONTROLS = {"everything": {"fraction": 1.0}}


def train(run):
    fraction = float(run.cfg.strategy_args.get("fraction", KNOBS["fraction"]))
    model = run.new_model()  # tokenises the table: lengths are known from here on
    train = np.asarray(run.split.train)
    lengths = np.array([len(run.data.ids[p]) for p in train])
    kept = train[np.argsort(lengths, kind="stable")[:max(1, int(fraction * len(train)))]]
    run.log({"short_half/kept": len(kept)}, 1)
    run.save_table("short_half_kept", pd.DataFrame({"position": kept}))
    return run.fit(model, kept)
"""

# Our tiny encoder under another name: a backbone factory takes the training SMILES.
TINY_AGAIN = """
from lipo.models.backbones import scratch


def tiny_again(corpus):
    return scratch("tiny", corpus)
"""

HELLO = """
def main(argv):
    print("hello", *argv)
"""

SOURCES = {
    "plugin_head_norms": HEAD_NORMS,
    "plugin_short_half": SHORT_HALF,
    "plugin_tiny_again": TINY_AGAIN,
    "plugin_hello": HELLO,
}


def install(folder: Path, monkeypatch) -> None:
    """Writes the plugins into ``folder``, puts it on sys.path and registers them; monkeypatch
    restores each registry's entries afterwards, so no other test sees them."""
    for module, source in SOURCES.items():
        (folder / f"{module}.py").write_text(source)
        monkeypatch.delitem(sys.modules, module, raising=False)  # none left from another test
    monkeypatch.syspath_prepend(str(folder))
    for registry in (ADAPTERS, STRATEGIES, BACKBONES, SUBCOMMANDS):
        monkeypatch.setattr(registry, "entries", dict(registry.entries))
    # The registration lines, one per plugin:
    ADAPTERS.register("head_norms", "plugin_head_norms")
    STRATEGIES.register("short_half", "plugin_short_half", controls=("everything",), plots=True)
    BACKBONES.register("tiny-again", "plugin_tiny_again:tiny_again")
    SUBCOMMANDS.register("hello", "plugin_hello")


def forget() -> None:
    """The plugin modules leave sys.modules with their folder."""
    for module in SOURCES:
        sys.modules.pop(module, None)
