"""Run the launcher as a user would, in a scratch folder, and read back what it stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA_DIR, ROOT

TRACKING = "sqlite:///mlruns/mlflow.db"


def env(**extra) -> dict:
    out = {**os.environ, "LIPO_DATA_DIR": str(DATA_DIR), "PYTHONPATH": str(ROOT), **extra}
    out.pop("WORLD_SIZE", None)
    return out


def launch(
    cwd: Path,
    *args: str,
    prefix: tuple = (sys.executable,),
    ok: bool = True,
    timeout: int = 600,
    **extra_env,
) -> subprocess.CompletedProcess:
    cmd = [*prefix, str(ROOT / "launch.py"), *args]
    done = subprocess.run(
        cmd, cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=timeout
    )
    if ok and done.returncode != 0:
        said = without_progress_bars(done.stderr)
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}\n{said[-6000:]}")
    return done


def without_progress_bars(text: str) -> str:
    """What a failed launch said, less tqdm's redraws: with several workers the bars fill
    the tail of stderr and push a worker's traceback out of the failure message."""
    lines = text.replace("\r", "\n").splitlines()
    return "\n".join(line for line in lines if line.strip(" \x1b[A") and "%|" not in line)


def mlflow_runs(cwd: Path, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")
    found = client.get_experiment_by_name(experiment)
    return list(client.search_runs([found.experiment_id], max_results=1000)) if found else []


def trial_runs(cwd: Path, experiment: str, phase: str = "search") -> list:
    return [
        r
        for r in mlflow_runs(cwd, experiment)
        if r.data.tags.get("lipo.phase") == phase and "mlflow.parentRunId" in r.data.tags
    ]


def metric_history(cwd: Path, run_id: str, key: str) -> list[float]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def optuna_trials(cwd: Path) -> list:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(cwd / "mlruns" / "optuna.journal")))
    # the final phase's seed claims live in a side study beside the search's
    studies = [n for n in optuna.get_all_study_names(storage) if ":claims:" not in n]
    assert len(studies) == 1, studies
    return optuna.load_study(study_name=studies[0], storage=storage).get_trials()


def trained_trials(asked: list) -> list:
    """The trials that count towards --trials. Launches or workers drawing at the same moment
    may draw the same settings (the later one's trial is closed as a duplicate and it draws
    again), or take the last free place together (the later one's trial is closed as
    surplus): such trials must be FAIL and never trained (no MLflow run)."""
    uncounted = [t for t in asked if t.user_attrs.keys() & {"duplicate_of", "surplus"}]
    assert all(t.state.name == "FAIL" and "mlflow_run_id" not in t.user_attrs for t in uncounted)
    return [t for t in asked if t not in uncounted]
