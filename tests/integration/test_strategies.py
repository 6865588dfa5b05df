"""Strategies end to end on `tiny`: their outputs reach MLflow."""
import pytest
from mlflow import MlflowClient

from tests.integration.helpers import launch, metric_history, optuna_trials

pytestmark = pytest.mark.slow


def test_curriculum_logs_its_pool_schedule(tmp_path):
    launch(tmp_path, "--study", "curriculum", "--backbone", "tiny", "--trials", "1",
           "--epochs", "3")
    run_id = optuna_trials(tmp_path)[0].user_attrs["mlflow_run_id"]
    sizes = metric_history(tmp_path, run_id, "curriculum/pool_size")
    assert len(sizes) == 3 and sizes == sorted(sizes) and sizes[-1] <= 3360
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert "curriculum_schedule.csv" in [a.path for a in client.list_artifacts(run_id)]
