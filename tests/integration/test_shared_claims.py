"""Two launchers, as on two machines: one shared Optuna storage and MLflow store, each its own
``--workdir``. The second skips the final seed the first holds, and the seed trains once."""

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT
from tests.integration.helpers import env, launch

pytestmark = pytest.mark.slow


def test_second_launcher_skips_the_seed_the_first_holds(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    stores = (
        "--storage",
        f"sqlite:///{shared}/optuna.db",
        "--tracking-uri",
        f"sqlite:///{shared}/mlflow.db",
    )
    study = ("--study", "baseline", "--backbone", "tiny", "--epochs", "2", *stores)
    one, two = tmp_path / "machine-1", tmp_path / "machine-2"
    one.mkdir(), two.mkdir()
    launch(one, *study, "--trials", "1", "--workdir", str(one / "work"))
    # the MLflow store's artifacts stay beside it; no state or cache in the current folder
    assert not {"state", "cache"} & {p.name for p in (one / "mlruns").iterdir()}

    first = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "launch.py"),
            *study,
            "--final",
            "--seeds",
            "0",
            "--save-every",
            "2",
            "--workdir",
            str(one / "work"),
        ],
        cwd=one,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 300
        while not list((one / "work" / "state").glob("*/final-*-seed0/*")):
            assert first.poll() is None and time.time() < deadline, first.stdout.read()
            time.sleep(0.1)
        os.killpg(first.pid, signal.SIGSTOP)  # holds the claim, alive, and trains no further
        second = launch(two, *study, "--final", "--seeds", "0", "--workdir", str(two / "work"))
        assert "seed 0: another launch is training it" in second.stdout + second.stderr
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out[-3000:]
    assert "seed 0: val/mse" in out
    client = MlflowClient(f"sqlite:///{shared}/mlflow.db")
    runs = client.search_runs(
        [client.get_experiment_by_name("baseline").experiment_id], "tags.`lipo.phase` = 'final'"
    )
    seeds = [r.data.tags["lipo.seed"] for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert seeds == ["0"]  # trained once, by the first launcher
    assert not list((two / "work" / "state").glob("*/final-*"))


RACER = """
import sys
from lipo.search.claims import SeedClaims
claims = SeedClaims("race", sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # all start together
print("won" if claims.take("final-0-strategy-seed0") else "lost", flush=True)
"""


def test_launchers_racing_for_one_seed_on_postgresql_one_wins(tmp_path):
    """Four processes, each its own connection, ask for the same seed's claim at once (the
    claim study created by whichever comes first): exactly one holds it."""
    from lipo.search.claims import SeedClaims
    from tests.integration.servers import postgres

    with postgres(("optuna",)) as urls:
        SeedClaims("race", urls["optuna"])  # Optuna's tables, made once (the launcher does too)
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, urls["optuna"]],
                env=env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready"
        for racer in racers:
            racer.stdin.write("go\n")
            racer.stdin.flush()
        answers = [racer.communicate(timeout=120)[0].strip() for racer in racers]
    assert sorted(answers) == ["lost", "lost", "lost", "won"], answers
