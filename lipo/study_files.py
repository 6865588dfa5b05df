"""Find and load study definitions: ``sweeps/<name>.py``, plus any folders listed in
``LIPO_STUDIES`` (os.pathsep-separated) for studies kept outside the package."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import sweeps
from lipo.errors import ConfigError

REQUIRED = ("STRATEGY", "ADAPTER", "TRIALS", "EPOCHS", "space")


def study_files() -> dict[str, Path]:
    folders = [Path(p) for p in sweeps.__path__]
    folders += [Path(p) for p in os.environ.get("LIPO_STUDIES", "").split(os.pathsep) if p]
    found = {}
    for folder in folders:
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                found.setdefault(path.stem, path)
    return found


def study_names() -> list[str]:
    return sorted(study_files())


def load_study(name: str) -> ModuleType:
    files = study_files()
    if name not in files:
        raise ConfigError(f"unknown study {name!r}: expected one of {', '.join(sorted(files))}")
    spec = importlib.util.spec_from_file_location(f"sweeps.{name}", files[name])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise ConfigError(f"{files[name]} lacks {', '.join(missing)}")
    return module


def describe(name: str) -> str:
    doc = (load_study(name).__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def full_fine_tune_studies() -> list[str]:
    """The studies that train every weight by default: those ``--adapter`` applies to. A
    study file that does not load is left out here; running it names its error."""
    names = []
    for name in study_names():
        try:
            if load_study(name).ADAPTER == "full":
                names.append(name)
        except Exception:  # noqa: BLE001 - a broken file must not break --help
            continue
    return names
