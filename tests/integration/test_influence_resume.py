"""A trial of the influence strategy killed during its retrain resumes the retrain, not the
scoring fit (its retry reads cached scores and skips the scoring fit), and ends with the
metrics of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT
from tests.integration.helpers import env, launch, metric_history, optuna_trials, trial_runs

pytestmark = pytest.mark.slow
STUDY = '''"""Influence on tiny: fixed k, a short LiSSA."""
STRATEGY = "influence"
ADAPTER = "full"
TRIALS = 1
EPOCHS = 2
DEFAULTS = {"strategy.depth": 50}


def space(trial):
    return {"strategy.k": 10, "strategy.method": "lissa"}
'''
ROWS = 1200  # 960 training molecules: 30 steps an epoch at batch size 32


def wait_for_retrain_state(folder: Path, proc, step: int) -> tuple[Path, dict]:
    """The retrain's first state saved at ``step`` or later: the first state folder of the
    trial that appears after the scores were cached (the scoring fit's is there before)."""
    deadline = time.time() + 300
    scoring: set | None = None
    while True:
        states = {
            p.parents[1] for p in folder.glob("mlruns/state/*/trial-0/*/current/progress.json")
        }
        if scoring is None and list(folder.glob("mlruns/cache/influence/*.csv")):
            scoring = states
        for state in sorted(states - (scoring or states)):
            try:
                progress = json.loads((state / "current" / "progress.json").read_text())
            except (OSError, ValueError):
                continue  # caught between two writes
            if progress["step"] >= step:
                return state, progress
        assert proc.poll() is None and time.time() < deadline, "no retrain state saved"
        time.sleep(0.02)


def test_a_trial_killed_during_its_retrain_resumes_the_retrain(tmp_path, data_dir):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "influence_resume.py").write_text(STUDY)
    lines = (data_dir / "lipophilicity.csv").read_text().splitlines()[: ROWS + 1]
    (tmp_path / "few.csv").write_text("\n".join(lines) + "\n")
    args = (
        "--study",
        "influence_resume",
        "--backbone",
        "tiny",
        "--data",
        str(tmp_path / "few.csv"),
        "--save-every",
        "4",
    )
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    launch(straight, *args, LIPO_STUDIES=str(studies))
    (reference,) = optuna_trials(straight)

    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), *args],
        cwd=killed,
        env=env(LIPO_STUDIES=str(studies)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    state, progress = wait_for_retrain_state(killed, proc, 4)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert progress["epoch"] == 0 and 0 < progress["batch"] < 30  # mid-epoch 1 of the retrain
    (lost,) = optuna_trials(killed)
    assert lost.state == TrialState.RUNNING

    again = launch(killed, *args, LIPO_STUDIES=str(studies))
    assert f"resuming from {state.relative_to(killed)}/current" in again.stderr
    first, retry = sorted(optuna_trials(killed), key=lambda t: t.number)
    assert first.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    assert retry.value == pytest.approx(reference.value, rel=1e-6)
    ref_run = trial_runs(straight, "influence_resume")[0]
    alive = retry.user_attrs["mlflow_run_id"]
    for key in ("val/mse", "train/loss"):  # both epochs of the retrain
        expected = metric_history(straight, ref_run.info.run_id, key)
        assert len(expected) == 2
        assert metric_history(killed, alive, key) == pytest.approx(expected, rel=1e-6)
