"""The final phase's printed summary counts each seed once, and a seed's run left RUNNING by a
launcher that died is failed by the launch that trains the seed again; in a real SQLite MLflow
store."""

from types import SimpleNamespace

from lipo.final.phase import fail_stale_runs, summarise
from lipo.tracking.store import Tracker


def test_a_seed_finished_twice_counts_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the experiment's artifact folder lands here
    inv = SimpleNamespace(
        study="baseline", control="", optuna_name="baseline:tiny:split:data", split_per_seed=False
    )
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "baseline")
    parent = tracker.start_run("final", {"lipo.study": "baseline", "lipo.phase": "final"})
    # seed 0 finished by two launches (the same MSE twice), seed 1 once
    for seed, mse in ((0, 0.2), (0, 0.2), (1, 0.6)):
        tags = {
            "lipo.phase": "final",
            "lipo.optuna_study": inv.optuna_name,
            "lipo.best_trial": 1,
            "lipo.seed": seed,
        }
        run = tracker.start_run(f"final seed {seed}", tags, parent, {"seed": seed})
        tracker.log_metrics(run, {"test/mse": mse, "test/r2": 1 - mse})
        tracker.finish(run)
    summarise(inv, tracker, 1)
    out = capsys.readouterr().out
    # mean and sample std of 0.2 and 0.6; with seed 0 twice it read 3 seeds, 0.3333
    assert "2 seeds: test/mse 0.4000 ± 0.2828" in out, out


def test_a_seed_run_left_running_by_a_dead_launcher_is_failed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    inv = SimpleNamespace(control="", optuna_name="baseline:tiny:split:data", split_per_seed=False)
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "baseline")
    dead_parent = tracker.start_run("final", {"lipo.phase": "final"})

    def seed_run(seed: int, parent: str | None = dead_parent, **more) -> str:
        tags = {
            "lipo.phase": "final",
            "lipo.optuna_study": inv.optuna_name,
            "lipo.best_trial": 1,
            "lipo.seed": seed,
            **more,
        }
        return tracker.start_run(f"final seed {seed}", tags, parent)

    stale = seed_run(0)  # its launcher was killed hard: nothing ended it
    finished = seed_run(0, parent=None)
    tracker.finish(finished)
    other_seed, control = seed_run(1), seed_run(0, **{"lipo.control": "all"})
    fail_stale_runs(tracker, inv, 1, 0)
    status = {r.run_id: r.status for r in tracker.runs("")}
    assert status[stale] == status[dead_parent] == "FAILED"
    assert "killed or lost" in tracker.run(stale).tags["lipo.error"]
    # another seed's, and a control's (another claim) are not this launch's to end
    assert status[finished] == "FINISHED"
    assert status[other_seed] == status[control] == "RUNNING"
    assert stale in capsys.readouterr().out
