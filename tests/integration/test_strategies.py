"""Strategies end to end on `tiny`: their outputs reach MLflow."""

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.integration.helpers import launch, metric_history, optuna_trials

pytestmark = pytest.mark.slow


def test_curriculum_logs_its_pool_schedule(tmp_path):
    launch(
        tmp_path, "--study", "curriculum", "--backbone", "tiny", "--trials", "1", "--epochs", "3"
    )
    (trial,) = optuna_trials(tmp_path)
    run_id = trial.user_attrs["mlflow_run_id"]
    sizes = metric_history(tmp_path, run_id, "curriculum/pool_size")
    assert len(sizes) == 3 and sizes == sorted(sizes) and sizes[-1] == 3360
    fractions = metric_history(tmp_path, run_id, "curriculum/pool_fraction")
    # epoch 1 sees the start fraction (within a batch of 64), the last epoch everything
    assert abs(fractions[0] - trial.params["strategy.start"]) <= 64 / 3360
    assert fractions[-1] == 1.0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert "curriculum_schedule.csv" in [a.path for a in client.list_artifacts(run_id)]
    assert reported_figures(tmp_path) >= {
        "curriculum · tiny: curriculum schedule (curriculum_schedule.csv)"
    }


def test_a_strategy_combines_with_an_adapter(tmp_path):
    launch(
        tmp_path,
        "--study",
        "curriculum",
        "--adapter",
        "lora",
        "--backbone",
        "tiny",
        "--trials",
        "1",
        "--epochs",
        "1",
    )
    (trial,) = optuna_trials(tmp_path)
    run = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db").get_run(
        trial.user_attrs["mlflow_run_id"]
    )
    assert run.data.tags["lipo.adapter"] == "lora"
    assert run.data.tags["lipo.optuna_study"].endswith(":adapter=lora")
    assert 0 < run.data.metrics["trainable_params"] < run.data.metrics["total_params"] / 2


def reported_figures(cwd) -> set[str]:
    """The captions of the report page's figures, built from the real runs in ``cwd``."""
    import re

    launch(cwd, "--report")
    page = (cwd / "reports" / "report.html").read_text()
    return set(re.findall(r"<h2>(.*?)</h2>", page))


ACTIVE = '''"""Active learning on tiny: 2 rounds of 40 from 60, the external pool offered too."""
STRATEGY = "active"
ADAPTER = "full"
TRIALS = 1
EPOCHS = 1
DEFAULTS = {"strategy.initial": 60, "strategy.acquire": 40, "strategy.rounds": 2,
            "strategy.passes": 4, "strategy.external": True}


def space(trial):
    return {"lr": trial.suggest_float("lr", 1e-3, 2e-3)}
'''


def test_active_learning_curve_and_acquisitions(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "active_tiny.py").write_text(ACTIVE)
    launch(tmp_path, "--study", "active_tiny", "--backbone", "tiny", LIPO_STUDIES=str(folder))
    run_id = optuna_trials(tmp_path)[0].user_attrs["mlflow_run_id"]
    assert metric_history(tmp_path, run_id, "active/labelled") == [60, 100, 140]
    assert len(metric_history(tmp_path, run_id, "active/val_mse")) == 3
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    acquired = pd.read_csv(client.download_artifacts(run_id, "active_acquired.csv", str(tmp_path)))
    assert acquired.groupby("round").size().tolist() == [40, 40]
    assert not acquired.duplicated(["source", "row"]).any()
    assert set(acquired["source"]) <= {"train", "pool"}
    assert (acquired["uncertainty"] > 0).all()  # dropout was really active
    assert dataset_inputs(client, run_id) == {"active_acquired": 80}
    assert reported_figures(tmp_path) >= {
        "active_tiny · tiny: active acquired (active_acquired.csv)",
        "Active learning: validation MSE against labelled molecules (mean over seeds)",
    }


def dataset_inputs(client, run_id) -> dict:
    """name -> rows of each MLflow dataset input of the run that a strategy added (the split's
    parts, with contexts train, val and test, are every run's)."""
    import json

    return {
        d.dataset.name: json.loads(d.dataset.profile)["num_rows"]
        for d in client.get_run(run_id).inputs.dataset_inputs
        if d.tags[0].value == "training"
    }


INFLUENCE = '''"""Influence on tiny, a sweep over k sharing one score computation."""
STRATEGY = "influence"
ADAPTER = "full"
TRIALS = 2
EPOCHS = 1
DEFAULTS = {"strategy.depth": 50}


def space(trial):
    return {"strategy.k": [10, 20][trial.number % 2], "strategy.method": "lissa"}
'''


def test_influence_selects_top_k_and_caches_scores(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "influence_tiny.py").write_text(INFLUENCE)
    done = launch(
        tmp_path, "--study", "influence_tiny", "--backbone", "tiny", LIPO_STUDIES=str(folder)
    )
    assert "leave the pool" in done.stderr  # the overlap with Lipophilicity is reported
    trials = sorted(optuna_trials(tmp_path), key=lambda t: t.number)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    tables = [
        pd.read_csv(
            client.download_artifacts(
                t.user_attrs["mlflow_run_id"], "influence_scores.csv", str(tmp_path / str(i))
            )
        )
        for i, t in enumerate(trials)
    ]
    assert [int(t["selected"].sum()) for t in tables] == [10, 20]
    pd.testing.assert_series_equal(tables[0]["score"], tables[1]["score"])  # cached
    top = tables[1].sort_values("score", ascending=False).head(20)
    assert top["selected"].all()
    assert len(list((tmp_path / "mlruns" / "cache" / "influence").glob("*.csv"))) == 1
    first = trials[0].user_attrs["mlflow_run_id"]
    assert metric_history(tmp_path, first, "influence/ihvp_norm")  # the convergence curve
    assert dataset_inputs(client, first) == {"influence_selected": 10}
    control_final(tmp_path, folder)
    assert reported_figures(tmp_path) >= {
        "influence_tiny · tiny: influence scores (influence_scores.csv)"
    }
    report = pd.read_csv(tmp_path / "reports" / "report.csv").set_index("control")
    # the strategy is judged against its control, the control against the (absent) baseline
    strategy = report[report.index.isna() & (report.status == "final")].iloc[0]
    assert strategy.vs_control.startswith("vs random-k: within noise ")  # one seed: no test
    assert report.loc["random-k", "vs_baseline"] == "no baseline final runs"


def control_final(cwd, folder):
    """The final phase, then the random-k control at the same settings and seed."""
    final = ("--study", "influence_tiny", "--backbone", "tiny", "--final", "--seeds", "0")
    launch(cwd, *final, LIPO_STUDIES=str(folder))
    done = launch(cwd, *final, "--control", "random-k", LIPO_STUDIES=str(folder))
    assert "final (control random-k), trial" in done.stdout
    client = MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("influence_tiny").experiment_id
    (run,) = client.search_runs(
        [experiment], "tags.`lipo.control` = 'random-k' AND attributes.run_name = 'final seed 0'"
    )
    assert run.data.params["strategy.selection"] == "random"
    # the best trial's k, drawn at random
    assert run.data.metrics["influence/selected"] == int(run.data.params["strategy.k"])
    table = pd.read_csv(
        client.download_artifacts(run.info.run_id, "influence_scores.csv", str(cwd / "control"))
    )
    assert table["score"].isna().all()
    assert table["selected"].sum() == int(run.data.params["strategy.k"])
