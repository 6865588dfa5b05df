"""Launches started together on an empty folder share one new store: no race, no traceback."""

import sqlite3
import subprocess
import sys

import pytest
from optuna.trial import TrialState

from tests.conftest import DATA_DIR, ROOT
from tests.integration.helpers import (
    env,
    launch,
    mlflow_runs,
    optuna_trials,
    trained_trials,
    trial_runs,
)

pytestmark = pytest.mark.slow
LAUNCHES = 4


def small_data(tmp_path):
    rows = (DATA_DIR / "lipophilicity.csv").read_text().splitlines()[:301]  # header + 300
    data = tmp_path / "small.csv"
    data.write_text("\n".join(rows) + "\n")
    return data


def test_four_launches_at_once_make_exactly_the_trials(tmp_path):
    data = small_data(tmp_path)
    cmd = [
        sys.executable,
        str(ROOT / "launch.py"),
        "--study",
        "baseline",
        "--backbone",
        "tiny",
        "--epochs",
        "1",
        "--trials",
        str(LAUNCHES),
        "--data",
        str(data),
    ]
    started = [
        subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=env(OMP_NUM_THREADS="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(LAUNCHES)
    ]
    outputs = [p.communicate(timeout=600) for p in started]
    for process, (out, err) in zip(started, outputs):
        assert process.returncode == 0, err[-3000:]
        assert "Traceback" not in out + err, err[-3000:]
    trials = trained_trials(optuna_trials(tmp_path))
    assert len(trials) == LAUNCHES
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(trial_runs(tmp_path, "baseline")) == LAUNCHES
    parents = [
        r for r in mlflow_runs(tmp_path, "baseline") if "mlflow.parentRunId" not in r.data.tags
    ]
    assert len(parents) == LAUNCHES  # one per launch, all in the one experiment


def test_a_half_created_store_stops_the_launcher_with_one_line_saying_how_to_recover(tmp_path):
    from mlflow import MlflowClient

    store = tmp_path / "mlruns" / "mlflow.db"
    store.parent.mkdir()
    MlflowClient(f"sqlite:///{store}")
    with sqlite3.connect(store) as db:  # as a migration cut short by another launch leaves it
        db.execute("DROP TABLE alembic_version")
    done = launch(
        tmp_path,
        "--study",
        "baseline",
        "--backbone",
        "tiny",
        "--epochs",
        "1",
        "--data",
        str(small_data(tmp_path)),
        ok=False,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if "mlflow.db" in x]
    assert "half-created" in line and "mv mlruns/mlflow.db mlruns/mlflow.db.broken" in line
