"""Faults, each on a real process: SIGKILL mid-epoch, a diverging loss, a tracking server that
does not answer. Nothing recorded before the fault is lost; nothing is recorded twice."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT
from tests.integration.helpers import (
    env,
    launch,
    metric_history,
    mlflow_runs,
    optuna_trials,
    trial_runs,
)

pytestmark = pytest.mark.slow
# Trial 0 of seed 0 draws batch size 64: 53 steps an epoch on the full table, ~6 s with tiny.
KILLED = (
    "--study",
    "baseline",
    "--backbone",
    "tiny",
    "--trials",
    "1",
    "--epochs",
    "2",
    "--save-every",
    "10",
)


def wait_for_state(folder: Path, proc, step: int, fit: str = "trial-0") -> dict:
    """The first training state saved at ``step`` or later, inside the first epoch."""
    deadline = time.time() + 300
    while True:
        found = list(folder.glob(f"mlruns/state/*/{fit}/fit-1/current/progress.json"))
        if found:
            try:
                progress = json.loads(found[0].read_text())
            except (OSError, ValueError):
                progress = {"step": -1}  # caught between two writes
            if progress["step"] >= step:
                return progress
        assert proc.poll() is None and time.time() < deadline, "no training state saved"
        time.sleep(0.05)


def test_sigkill_mid_epoch_is_failed_retried_and_resumed(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    launch(straight, *KILLED)
    (reference,) = optuna_trials(straight)

    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), *KILLED],
        cwd=killed,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    progress = wait_for_state(killed, proc, 10)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert progress["epoch"] == 0 and 0 < progress["batch"] < 53  # mid-epoch 1
    (lost,) = optuna_trials(killed)
    assert lost.state == TrialState.RUNNING  # what a dead worker leaves behind

    again = launch(killed, *KILLED)  # the same command, restarted
    assert "stopped during trial 0 (killed or lost)" in again.stderr + again.stdout
    assert "resuming from" in again.stderr
    first, retry = sorted(optuna_trials(killed), key=lambda t: t.number)
    assert first.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    assert retry.system_attrs["failed_trial"] == 0
    assert first.params == retry.params == reference.params  # the same settings, re-run
    assert retry.value == pytest.approx(reference.value, rel=1e-6)

    runs = {r.info.run_id: r for r in trial_runs(killed, "baseline")}
    assert len(runs) == 2  # one run per trial, one trial per run
    assert sorted(t.user_attrs["mlflow_run_id"] for t in (first, retry)) == sorted(runs)
    dead, alive = runs[first.user_attrs["mlflow_run_id"]], runs[retry.user_attrs["mlflow_run_id"]]
    assert dead.info.status == "FAILED" and "killed or lost" in dead.data.tags["lipo.error"]
    assert alive.info.status == "FINISHED"
    ref_run = trial_runs(straight, "baseline")[0]
    for key in ("val/mse", "train/loss"):  # every epoch, the resumed one included
        assert metric_history(killed, alive.info.run_id, key) == pytest.approx(
            metric_history(straight, ref_run.info.run_id, key), rel=1e-6
        )
    parents = [
        r for r in mlflow_runs(killed, "baseline") if "mlflow.parentRunId" not in r.data.tags
    ]
    assert sorted(p.info.status for p in parents) == ["FAILED", "FINISHED"]
    assert not list(killed.glob("mlruns/state/*/trial-*"))  # finished: nothing left to resume


def test_sigterm_mid_epoch_fails_and_requeues_the_trial(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), *KILLED],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_for_state(tmp_path, proc, 10)
    proc.terminate()  # SIGTERM, as a scheduler or `docker stop` sends
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "re-run the same command" in stderr
    stopped, queued = sorted(optuna_trials(tmp_path), key=lambda t: t.number)
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["interrupted"]
    assert queued.state == TrialState.WAITING
    assert queued.system_attrs["fixed_params"] == stopped.params  # the same settings next time
    (run,) = trial_runs(tmp_path, "baseline")
    assert run.info.status == "FAILED" and "interrupted" in run.data.tags["lipo.error"]


def test_a_final_seed_stopped_mid_epoch_resumes_where_it_stopped(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    straight.mkdir()
    launch(straight, *KILLED)
    shutil.copytree(straight, stopped)  # the same search, finalised twice
    final = (
        "--study",
        "baseline",
        "--backbone",
        "tiny",
        "--epochs",
        "2",
        "--save-every",
        "10",
        "--final",
        "--seeds",
        "0",
    )
    launch(straight, *final)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), *final],
        cwd=stopped,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_state(stopped, proc, 10, fit="final-0-strategy-seed0")
    proc.terminate()
    assert proc.wait(timeout=120) == 130
    again = launch(stopped, *final)
    assert "resuming from" in again.stderr
    [reference] = trial_runs(straight, "baseline", phase="final")
    resumed = [
        r for r in trial_runs(stopped, "baseline", phase="final") if r.info.status == "FINISHED"
    ]
    assert len(resumed) == 1
    for key in ("test/mse", "val/mse"):
        assert resumed[0].data.metrics[key] == pytest.approx(reference.data.metrics[key], rel=1e-6)
    assert not list(stopped.glob("mlruns/state/*/final-*"))  # finished: nothing left to resume


DIVERGING = '''"""Trial 0 trains with an infinite learning rate: its loss becomes NaN."""
STRATEGY = "all"
ADAPTER = "full"
TRIALS = 2
EPOCHS = 1


def space(trial):
    lr = trial.suggest_float("lr", 1e-4, 1e-3, log=True)
    return {"lr": float("inf") if trial.number == 0 else lr}
'''


def noisy_table(data_dir: Path, target: Path, rows: int = 300) -> Path:
    """The first ``rows`` molecules with every tenth SMILES broken: 10% invalid."""
    lines = (data_dir / "lipophilicity.csv").read_text().splitlines()[: rows + 1]
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        chembl, exp, smiles = line.split(",", 2)
        out.append(f"{chembl},{exp},{smiles}((" if i % 10 == 0 else line)
    target.write_text("\n".join(out) + "\n")
    return target


def test_nan_loss_stops_the_trial_and_the_study_goes_on(tmp_path, data_dir):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "diverging.py").write_text(DIVERGING)
    data = noisy_table(data_dir, tmp_path / "noisy.csv")
    done = launch(
        tmp_path,
        "--study",
        "diverging",
        "--backbone",
        "tiny",
        "--data",
        str(data),
        LIPO_STUDIES=str(studies),
    )
    assert "dropped 30 of 300 rows" in done.stderr  # the 10% invalid SMILES, named and skipped
    trials = sorted(optuna_trials(tmp_path), key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert "training loss became nan" in trials[0].user_attrs["error"]
    runs = {r.data.tags["optuna.trial_number"]: r for r in trial_runs(tmp_path, "diverging")}
    assert runs["0"].info.status == "FAILED"
    assert "training loss became nan" in runs["0"].data.tags["lipo.error"]
    assert runs["1"].info.status == "FINISHED"
    assert all(r.data.metrics["data/invalid_rows"] == 30 for r in runs.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_fails_before_training(tmp_path):
    started = time.time()
    done = launch(
        tmp_path,
        "--study",
        "baseline",
        "--backbone",
        "tiny",
        "--trials",
        "1",
        "--tracking-uri",
        f"http://127.0.0.1:{free_port()}",
        ok=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "the MLflow server does not answer" in done.stderr
    assert "epoch" not in done.stderr + done.stdout  # no training started
    assert not (tmp_path / "mlruns").exists()  # no Optuna study, no trial
    assert time.time() - started < 120
