"""--objective mse,params: a two-objective study keeping the Pareto front, without pruning."""

import pytest
from optuna.trial import TrialState

from tests.integration.helpers import launch, optuna_trials, trial_runs

pytestmark = pytest.mark.slow


def test_multi_objective_lora(tmp_path):
    done = launch(
        tmp_path,
        "--study",
        "lora",
        "--backbone",
        "tiny",
        "--trials",
        "3",
        "--epochs",
        "1",
        "--objective",
        "mse,params",
    )
    assert "pruning is off" in done.stdout
    assert "Pareto front" in done.stdout
    trials = optuna_trials(tmp_path)
    assert len(trials) == 3
    assert all(t.state == TrialState.COMPLETE and len(t.values) == 2 for t in trials)
    runs = {r.info.run_id: r for r in trial_runs(tmp_path, "lora")}
    for trial in trials:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert trial.values[1] == run.data.metrics["trainable_params"]
        assert trial.values[1] < run.data.metrics["total_params"]
