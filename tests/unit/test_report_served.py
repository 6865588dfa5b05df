"""The report's served column reads what the bundle serves: each final run's refit where it has
one, the run itself where it has none (a real SQLite MLflow store)."""

import pandas as pd

from lipo.report.calibration import final_tables
from lipo.report.served import served_test_tables
from lipo.report.table import study_rows
from lipo.tracking.reader import StoreReader
from lipo.tracking.store import Tracker

TAGS = {
    "lipo.study": "baseline",
    "lipo.backbone": "tiny",
    "lipo.optuna_study": "baseline:tiny:random_seed0:data",
    "lipo.split": "random_seed0",
    "lipo.split_sha256": "abc",
}


def run_with_table(tracker, tmp_path, name, tags, y_pred, status="FINISHED"):
    run = tracker.start_run(name, {**TAGS, **tags}, params={"lr": 0.001, "split": "random"})
    folder = tmp_path / run
    folder.mkdir()
    table = pd.DataFrame({"smiles": ["C", "CC"], "y_true": [1.0, 2.0], "y_pred": y_pred})
    table.to_csv(folder / "predictions_test.csv", index=False)
    tracker.log_artifact(run, folder / "predictions_test.csv")
    tracker.log_metrics(run, {"test/mse": 0.5})
    tracker.finish(run, status)
    return run


def test_each_member_is_its_refit_where_it_has_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the experiment's artifact folder lands here
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "baseline")
    finals = {
        seed: run_with_table(
            tracker,
            tmp_path,
            f"final seed {seed}",
            {"lipo.phase": "final", "lipo.best_trial": 0, "lipo.seed": seed},
            [float(seed), float(seed)],
        )
        for seed in (0, 1, 2)
    }
    for seed, status in ((0, "FINISHED"), (1, "FAILED"), (2, "FINISHED")):
        refit_tags = {"lipo.phase": "refit", "lipo.seed": seed, "lipo.refit_of": finals[seed]}
        run_with_table(tracker, tmp_path, f"refit {seed}", refit_tags, [9.0, 9.0], status)
    store = StoreReader(uri)
    runs = store.study_runs()
    rows = [r for r in study_rows(runs, {}) if r.kind == "final"]
    tables = final_tables(store, rows)
    served = served_test_tables(store, rows, runs, tables)[tuple(rows[0].run_ids)]
    # seed 1's refit failed: it serves its own final run, as the exported bundle does
    assert [t["y_pred"].iloc[0] for t in served] == [9.0, 1.0, 9.0]
    assert [t["y_pred"].iloc[0] for t in tables[tuple(rows[0].run_ids)]] == [0.0, 1.0, 2.0]
