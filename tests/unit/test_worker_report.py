"""``--workers``: when a worker fails, the starter's error names it and quotes why (a LipoError's
line, an unexpected error's traceback), instead of an exit status alone; real worker processes."""

import os
import sys
import tempfile

import pytest

from lipo.errors import LipoError
from lipo.registry import HANDED_ON
from lipo.runtime.workers import WORKER, run_workers
from tests.conftest import ROOT


def worker_env(**extra) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def test_the_starter_quotes_each_failed_workers_report(tmp_path):
    command = [
        *WORKER,
        "--study",
        "baseline",
        "--data",
        str(tmp_path / "missing.csv"),
        "--tracking-uri",
        f"sqlite:///{tmp_path}/mlflow.db",
    ]
    # worker 1 is handed registrations it cannot read: an unexpected error, not a LipoError
    envs = [worker_env(), worker_env(**{HANDED_ON: "{not json"})]
    with pytest.raises(LipoError) as caught:
        run_workers(command, envs)
    said = str(caught.value)
    assert said.startswith("2 of 2 workers failed; re-run the same command")
    first, second = said.split("worker 1 (exit status 1):")
    assert "worker 0 (exit status 2):\n    lipo: error: " in first
    assert "missing.csv: no such file (given by --data)" in first
    assert "    Traceback (most recent call last):" in second
    assert second.rstrip().splitlines()[-1].startswith("    json.decoder.JSONDecodeError")


def test_a_killed_worker_is_named_with_its_signal(tmp_path):
    killed = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    with pytest.raises(LipoError, match=r"worker 0 \(exit status -9\):\n    killed by SIGKILL"):
        run_workers(killed, [worker_env()])


def test_workers_that_all_succeed_raise_nothing_and_leave_no_folder(tmp_path):
    before = set(os.listdir(tempfile.gettempdir()))
    run_workers([sys.executable, "-c", "pass"], [worker_env(), worker_env()])
    assert (
        not {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("lipo-workers-")} - before
    )
