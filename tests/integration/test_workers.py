"""Scale-out on real servers: PostgreSQL holds the Optuna study and MLflow's runs, an
``mlflow server`` takes the artifacts, and three workers share one study."""
import json
from pathlib import Path

import pytest

from tests.integration.helpers import launch
from tests.integration.servers import mlflow_server, postgres

pytestmark = pytest.mark.slow
TRIALS = 6


def small_table(data_dir: Path, target: Path, rows: int = 600) -> Path:
    lines = (data_dir / "lipophilicity.csv").read_text().splitlines()[:rows + 1]
    target.write_text("\n".join(lines) + "\n")
    return target


def study_trials(url: str):
    import optuna
    (name,) = optuna.get_all_study_names(url)
    return optuna.load_study(study_name=name, storage=url).get_trials()


def search_runs(url: str, experiment: str):
    from mlflow import MlflowClient
    client = MlflowClient(url)
    found = client.get_experiment_by_name(experiment)
    return list(client.search_runs([found.experiment_id], max_results=1000))


def test_three_workers_share_one_study_on_postgres_and_an_mlflow_server(tmp_path, data_dir):
    data = small_table(data_dir, tmp_path / "small.csv")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with postgres() as db, mlflow_server(db["mlflow"], artifacts) as tracking:
        done = launch(tmp_path, "--study", "baseline", "--backbone", "tiny", "--data", str(data),
                      "--trials", str(TRIALS), "--epochs", "1", "--workers", "3",
                      "--storage", db["optuna"], "--tracking-uri", tracking)
        trials = study_trials(db["optuna"])
        runs = search_runs(tracking, "baseline")
    output = done.stdout + done.stderr
    assert "database is locked" not in output and "duplicate" not in output.lower()
    assert output.count("trial ") >= TRIALS and "starting 3 workers" in output

    assert sorted(t.number for t in trials) == list(range(TRIALS))  # exactly the total
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == TRIALS  # no repeats
    workers = {t.user_attrs["lipo.worker"] for t in trials}
    assert len(workers) == 3  # every worker ran trials

    trial_runs = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 3 and all(p.info.status == "FINISHED" for p in parents)
    by_id = {r.info.run_id: r for r in trial_runs}
    assert len(by_id) == TRIALS  # one run per trial ...
    assert sorted(t.user_attrs["mlflow_run_id"] for t in trials) == sorted(by_id)  # ... and back
    for trial in trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["optuna.trial_number"] == str(trial.number)
        assert run.info.status == "FINISHED"
        assert run.data.metrics["val/mse"] == pytest.approx(trial.value)
    stored = list(artifacts.rglob("weights.safetensors"))
    assert len(stored) == TRIALS  # every trial's checkpoint, on the server's disk
