"""Find and load study definitions: ``sweeps/<name>.py``, plus any folders listed in
``LIPO_STUDIES`` (os.pathsep-separated) for studies kept outside the package."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import sweeps
from lipo.errors import ConfigError
from lipo.search.space import space_of

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
    check_first_trial(files[name], getattr(module, "FIRST_TRIAL", None), module.space)
    return module


def check_first_trial(path: Path, first: dict | None, space) -> None:
    """FIRST_TRIAL (optional): settings a new study trains first, such as a recipe validation
    chose before; knobs of the space, inside its ranges (a knob left out is drawn)."""
    if first is None:
        return
    knobs = space_of(space)
    bad = [f"{k}={v!r}" for k, v in first.items() if k not in knobs or not knobs[k](v)]
    if bad:
        raise ConfigError(
            f"{path}: FIRST_TRIAL {', '.join(bad)} is not a value its space() draws "
            f"(knobs: {', '.join(knobs)})"
        )


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
