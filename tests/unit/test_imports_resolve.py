"""Every ``from lipo... import name`` in the code resolves, the ones inside functions too:
those run only when their function does, so a moved module or name would otherwise surface
as an ImportError in the middle of a command, not here."""

import ast
import importlib

import pytest

from tests.conftest import ROOT

FILES = [
    *ROOT.glob("lipo/**/*.py"),
    *ROOT.glob("campaigns/*.py"),
    *ROOT.glob("sweeps/*.py"),
    *ROOT.glob("bench/*.py"),
    *ROOT.glob("tests/**/*.py"),
    ROOT / "launch.py",
]
OPTIONAL = ("lipo.report.chemprop_reference",)  # imports chemprop, an optional extra


def lipo_imports():
    for path in FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and node.module
                and node.module.split(".")[0] == "lipo"
            ):
                for alias in node.names:
                    yield str(path.relative_to(ROOT)), node.module, alias.name


def resolves(module: str, name: str) -> bool:
    if module in OPTIONAL:
        return True
    imported = importlib.import_module(module)
    if hasattr(imported, name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")  # a submodule
        return True
    except ModuleNotFoundError:
        return False


def test_every_lipo_import_resolves():
    broken = sorted(
        {
            f"{where}: from {module} import {name}"
            for where, module, name in lipo_imports()
            if not resolves(module, name)
        }
    )
    assert broken == []


@pytest.mark.parametrize(
    "module,name", [("lipo.tracking.store", "StoreReaderz"), ("lipo.tracking", "nowhere")]
)
def test_a_moved_name_is_caught(module, name):
    assert not resolves(module, name)
