"""Shared fixtures. Tests read the real data folder (``LIPO_DATA_DIR``, default ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("LIPO_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
os.environ["LIPO_DATA_DIR"] = str(DATA_DIR)  # never download during tests
# MLflow's system-metrics thread samples every 10 s in production; the suite's runs last
# seconds, so it is off here (tests/unit/test_tracking_ui.py turns it on where it checks it).
os.environ.setdefault("LIPO_SYSTEM_METRICS", "0")
# A final phase fits its ensemble's descriptor partner (1000 boosting rounds x 3 seeds in
# production); 5 rounds take the same code path in a fraction of the time.
os.environ.setdefault("LIPO_PARTNER_ROUNDS", "5")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "lipophilicity.csv").is_file():
        pytest.fail(f"no lipophilicity.csv in {DATA_DIR}: set LIPO_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def lipo_csv(data_dir) -> Path:
    return data_dir / "lipophilicity.csv"


@pytest.fixture(scope="session")
def molecules(lipo_csv):
    from lipo.data.molecules import load_molecules

    return load_molecules(lipo_csv)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
