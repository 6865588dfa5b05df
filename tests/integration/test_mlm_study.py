"""The `mlm` study: adaptation on training SMILES, then regression; adapted encoders cached."""

import pytest
from optuna.trial import TrialState

from tests.integration.helpers import launch, metric_history, optuna_trials

pytestmark = pytest.mark.slow


def test_mlm_study_two_trials_and_cache(tmp_path):
    launch(tmp_path, "--study", "mlm", "--backbone", "tiny", "--trials", "2", "--epochs", "1")
    trials = optuna_trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        assert metric_history(tmp_path, trial.user_attrs["mlflow_run_id"], "heldout/mlm_loss")
    cache = tmp_path / "mlruns" / "cache" / "mlm"
    folders = sorted(p.name for p in cache.iterdir())
    assert len(folders) == 2
    launch(
        tmp_path, "--study", "mlm", "--backbone", "tiny", "--epochs", "1", "--final", "--seeds", "0"
    )  # the best trial's adapted encoder (seed 0) is reused
    assert sorted(p.name for p in cache.iterdir()) == folders
