"""The MLflow contract is pinned: lipo.tracking.schema against ARCHITECTURE.md, and every tag
or metric literal in the code against the schema (a find-and-replace that renames a tag fails
here, not silently in stored runs)."""

import importlib
import re

import pytest

from lipo.adapters import ADAPTERS
from lipo.cli import BACKBONES, SUBCOMMANDS
from lipo.strategies import STRATEGIES
from lipo.tracking import schema
from tests.conftest import ROOT

QUOTED = re.compile(r"[\"'`]((?:lipo|optuna)\.[a-z_0-9]+(?:\.[a-z_0-9]+)*)[\"'`]")
ENTRY_POINT_GROUPS = {r.group for r in (SUBCOMMANDS, BACKBONES, ADAPTERS, STRATEGIES)}
NOT_TAGS = {"optuna.journal", *ENTRY_POINT_GROUPS}  # a file name; the plugins' groups
METRIC = re.compile(r"[\"']([a-z]+/[a-z_0-9]+)[\"']")


def contract() -> str:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    return text[text.index("- **MLflow**") : text.index("- **Optuna**")]


def is_code_path(name: str) -> bool:
    """A module, or an attribute of one (``lipo.models.checkpoint.load_checkpoint``)."""
    parts = name.split(".")
    for n in range(len(parts), 1, -1):
        try:
            module = importlib.import_module(".".join(parts[:n]))
        except ImportError:
            continue
        obj = module
        for attr in parts[n:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def literals(pattern) -> dict[str, str]:
    found = {}
    for path in (ROOT / "lipo").rglob("*.py"):
        if path.name != "schema.py":
            for name in pattern.findall(path.read_text()):
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_architecture_names_exactly_the_schema_tags():
    named = set(re.findall(r"`((?:lipo|optuna)\.[a-z_0-9.]+)`", contract()))
    assert named == set(schema.TAGS) | set(schema.RENAMED)


def test_architecture_names_exactly_the_schema_metrics():
    text = contract()
    named = {
        n
        for n in re.findall(r"`([a-z]+/[a-z_0-9]+|[a-z_]+_(?:params|s))`", text)
        if "/" not in n or n.split("/")[0] in schema.METRIC_NAMESPACES
    }
    assert named == set(schema.METRICS)


def test_every_tag_in_the_code_is_in_the_schema():
    declared = set(schema.TAGS) | set(schema.OPTUNA_ATTRS) | set(schema.RENAMED)
    stray = {
        n: f
        for n, f in literals(QUOTED).items()
        if n not in declared and n not in NOT_TAGS and not is_code_path(n)
    }
    assert stray == {}


def test_every_metric_in_the_code_is_in_the_schema():
    declared = set(schema.METRICS) | set(schema.STRATEGY_METRICS)
    stray = {
        n: f
        for n, f in literals(METRIC).items()
        if n.split("/")[0] in schema.METRIC_NAMESPACES and n not in declared
    }
    assert stray == {}


@pytest.mark.parametrize("name", ["lipo.strategies.influence_mathz.hessian", "lipo.sead"])
def test_a_renamed_tag_would_be_caught(name):
    assert not is_code_path(name) and name not in schema.TAGS


def test_the_influence_tag_keeps_its_name():
    assert schema.INFLUENCE_HESSIAN == "lipo.influence.hessian"


def test_runs_written_under_the_old_name_read_under_the_new(tmp_path):
    from lipo.tracking.store import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "renamed")
    run_id = tracker.start_run("old", {"lipo.strategies.influence_math.hessian": "head"})
    tracker.finish(run_id)
    record = tracker.runs("")[0]
    assert record.tags[schema.INFLUENCE_HESSIAN] == "head"


def test_the_default_tracking_uri_is_written_once():
    elsewhere = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "lipo").rglob("*.py")
        if p.name != "schema.py" and "mlruns/mlflow.db" in p.read_text()
    ]
    assert elsewhere == []
