"""Find and load study definitions (``sweeps/<name>.py``)."""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import sweeps
from lipo.errors import ConfigError

REQUIRED = ("STRATEGY", "ADAPTER", "TRIALS", "EPOCHS", "space")


def study_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(sweeps.__path__) if not m.ispkg)


def load_study(name: str) -> ModuleType:
    names = study_names()
    if name not in names:
        raise ConfigError(f"unknown study {name!r}: expected one of {', '.join(names)}")
    module = importlib.import_module(f"sweeps.{name}")
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise ConfigError(f"sweeps/{name}.py lacks {', '.join(missing)}")
    return module


def describe(name: str) -> str:
    doc = (load_study(name).__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""
