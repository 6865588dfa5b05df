"""End to end through launch.py: what a user finds in the MLflow UI after a search and a final
phase (system metrics, per-step curves, dataset inputs) and the runs address printed last."""

import re

import pytest
from mlflow import MlflowClient

from tests.integration.helpers import launch, trial_runs

pytestmark = pytest.mark.slow


def test_a_study_ends_with_its_runs_address_and_its_runs_show_what_a_user_looks_for(tmp_path):
    args = ("--study", "baseline", "--backbone", "tiny", "--epochs", "1")
    search = launch(tmp_path, *args, "--trials", "1", LIPO_SYSTEM_METRICS="0.5")
    final = launch(tmp_path, *args, "--final", "--seeds", "0", LIPO_SYSTEM_METRICS="0.5")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("baseline").experiment_id
    for done in (search, final):
        last = done.stdout.strip().splitlines()[-1]
        assert last == (
            "runs: mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db, then "
            f"open http://127.0.0.1:5000/#/experiments/{experiment}/runs"
        )
    for phase, parts in (("search", {"train", "val"}), ("final", {"train", "val", "test"})):
        (run,) = trial_runs(tmp_path, "baseline", phase)
        metrics = run.data.metrics
        assert "system/cpu_utilization_percentage" in metrics, phase
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/step_loss")]
        assert steps == list(range(10, 10 * len(steps) + 1, 10)) and len(steps) >= 5
        assert client.get_metric_history(run.info.run_id, "train/lr")
        inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
        assert set(inputs) == parts
        for part in parts:
            assert re.fullmatch(rf"lipophilicity\.csv:random_seed0:{part}", inputs[part].name)
