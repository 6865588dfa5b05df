"""Scale-out on real servers: PostgreSQL holds the Optuna study and MLflow's runs, an
``mlflow server`` takes the artifacts, and three workers share one study; a worker on
"another machine" (its own hostname, through a UTS namespace) is killed mid-trial and found
by its missing heartbeats."""

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.helpers import env, launch, trained_trials
from tests.integration.servers import mlflow_server, postgres

pytestmark = pytest.mark.slow
TRIALS = 6


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(Optuna storage URL, tracking URL, artifact folder) of one PostgreSQL + mlflow server."""
    artifacts = tmp_path_factory.mktemp("server") / "artifacts"
    artifacts.mkdir()
    with postgres() as db, mlflow_server(db["mlflow"], artifacts) as tracking:
        yield db["optuna"], tracking, artifacts


def table(data_dir: Path, target: Path, rows: slice) -> Path:
    lines = (data_dir / "lipophilicity.csv").read_text().splitlines()
    target.write_text("\n".join([lines[0], *lines[1:][rows]]) + "\n")
    return target


def study_trials(url: str, data: Path):
    """The trials of the one study run on ``data`` (studies are named by data checksum)."""
    import optuna

    from lipo.data.molecules import content_sha256, load_molecules

    mols = load_molecules(data)
    (name,) = [
        n
        for n in optuna.get_all_study_names(url)
        if n.endswith(content_sha256(mols.smiles, mols.y)[:8])
    ]
    return name, optuna.load_study(study_name=name, storage=url).get_trials()


def search_runs(url: str, study: str):
    from mlflow import MlflowClient

    client = MlflowClient(url)
    found = client.get_experiment_by_name("baseline")
    return list(
        client.search_runs(
            [found.experiment_id], f"tags.`lipo.optuna_study` = '{study}'", max_results=1000
        )
    )


def check_one_run_per_trial(trials, runs) -> dict:
    trial_runs = {r.info.run_id: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(trial_runs) == len(trials)  # one run per trial ...
    assert sorted(t.user_attrs["mlflow_run_id"] for t in trials) == sorted(trial_runs)  # and back
    for trial in trials:
        assert trial_runs[trial.user_attrs["mlflow_run_id"]].data.tags[
            "optuna.trial_number"
        ] == str(trial.number)
    return trial_runs


def test_three_workers_share_one_study(stack, tmp_path, data_dir):
    storage, tracking, artifacts = stack
    data = table(data_dir, tmp_path / "small.csv", slice(0, 600))
    done = launch(
        tmp_path,
        "--study",
        "baseline",
        "--backbone",
        "tiny",
        "--data",
        str(data),
        "--trials",
        str(TRIALS),
        "--epochs",
        "1",
        "--workers",
        "3",
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
    )
    output = done.stdout + done.stderr
    assert "database is locked" not in output and "duplicate" not in output.lower()
    assert "starting 3 workers" in output

    name, asked = study_trials(storage, data)
    trials = trained_trials(asked)
    assert len(trials) == TRIALS  # exactly the total
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == TRIALS  # no repeats
    assert len({t.user_attrs["lipo.worker"] for t in trials}) == 3  # every worker ran trials

    runs = search_runs(tracking, name)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 3 and all(p.info.status == "FINISHED" for p in parents)
    by_id = check_one_run_per_trial(trials, runs)
    for trial in trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.info.status == "FINISHED"
        assert run.data.metrics["val/mse"] == pytest.approx(trial.value)
        assert list(artifacts.rglob(f"{run.info.run_id}/artifacts/checkpoint/weights.safetensors"))


def wait_for_state(folder: Path, proc) -> None:
    deadline = time.time() + 300
    while not list(folder.glob("mlruns/state/*/trial-*/fit-1/current/progress.json")):
        assert proc.poll() is None and time.time() < deadline, "no training state saved"
        time.sleep(0.05)


def test_worker_lost_on_another_machine_is_found_by_its_heartbeat(stack, tmp_path, data_dir):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("a second hostname needs a UTS namespace (unshare, as root)")
    storage, tracking, _ = stack
    data = table(data_dir, tmp_path / "other.csv", slice(600, 1800))
    args = [
        "--study",
        "baseline",
        "--backbone",
        "tiny",
        "--data",
        str(data),
        "--trials",
        "1",
        "--epochs",
        "1",
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
        "--heartbeat",
        "1",
        "--save-every",
        "3",
    ]
    elsewhere = [
        "unshare",
        "--uts",
        "sh",
        "-c",
        'hostname elsewhere && exec "$@"',
        "sh",
        sys.executable,
        str(ROOT / "launch.py"),
        *args,
    ]
    proc = subprocess.Popen(
        elsewhere,
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_state(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    name, (lost,) = study_trials(storage, data)
    assert lost.state.name == "RUNNING" and lost.user_attrs["lipo.worker"].startswith("elsewhere:")

    again = launch(tmp_path, *args)  # this machine: the lost worker is not its own process
    assert "stopped during trial 0 (killed or lost)" in again.stdout + again.stderr
    assert "resuming from" in again.stderr
    _, trials = study_trials(storage, data)
    first, retry = sorted(trials, key=lambda t: t.number)
    assert (first.state.name, retry.state.name) == ("FAIL", "COMPLETE")
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == first.params
    by_id = check_one_run_per_trial(trials, search_runs(tracking, name))
    assert by_id[first.user_attrs["mlflow_run_id"]].info.status == "FAILED"
    assert by_id[retry.user_attrs["mlflow_run_id"]].info.status == "FINISHED"


def log_the_same_data(url: str, data: str, start, said) -> None:
    """One worker's first trial: a run of its own, then the data inputs every trial logs."""
    from lipo.tracking.store import Tracker

    tracker = Tracker(url, "inputs race")
    run = tracker.start_run("trial", {})
    start.wait()
    try:
        sizes = {"train": 80, "val": 10, "test": 10}
        tracker.log_data_inputs(run, data, "ab" * 32, "random_seed0", "cd" * 32, sizes)
        said.put("logged")
    except Exception as exc:  # noqa: BLE001 - the parent asserts on what each worker saw
        said.put(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")


def test_workers_logging_the_same_data_at_once_all_log_it(stack):
    """MLflow adds a dataset with the first run that logs it (look up, then insert): three
    workers starting their first trials together all insert it, and without a retry two of
    them stop on its unique key (PostgreSQL's UniqueViolation through the server)."""
    from lipo.tracking.store import Tracker

    _, tracking, _ = stack
    Tracker(tracking, "inputs race")  # the experiment exists before the workers, as prepare()
    spawn = multiprocessing.get_context("spawn")
    for table in ("first.csv", "second.csv", "third.csv"):
        start, said = spawn.Barrier(3), spawn.Queue()
        workers = [
            spawn.Process(target=log_the_same_data, args=(tracking, table, start, said))
            for _ in range(3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert [said.get(timeout=5) for _ in workers] == ["logged"] * 3
