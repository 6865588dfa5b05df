"""The SMILES fine-tuning recipe end to end: randomised-SMILES augmentation, test-time
averaging and RDKit's whole 2D descriptor set in the head, through the launcher, MLflow and
``predict`` (which must rebuild the descriptors and the averaging from the checkpoint)."""

import io

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.integration.helpers import launch, optuna_trials, trial_runs

pytestmark = pytest.mark.slow

RECIPE_STUDY = '''"""Full fine-tune with the SMILES recipe's knobs fixed."""
STRATEGY = "all"
ADAPTER = "full"
TRIALS = 1
EPOCHS = 1


def space(trial):
    return {"lr": trial.suggest_float("lr", 1e-3, 2e-3), "augment": 1, "tta": 2}
'''


def test_recipe_with_rdkit2d_trains_records_and_predicts(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "recipe.py").write_text(RECIPE_STUDY)
    launch(
        tmp_path,
        "--study",
        "recipe",
        "--backbone",
        "tiny",
        "--trials",
        "1",
        "--epochs",
        "1",
        "--head-features",
        "rdkit2d",
        LIPO_STUDIES=str(studies),
    )
    trial = optuna_trials(tmp_path)[0]
    [run] = trial_runs(tmp_path, "recipe")
    assert run.data.tags["lipo.optuna_study"].endswith(":+rdkit2d")  # its own report row
    params = run.data.params
    assert (params["head_features"], params["augment"], params["tta"]) == ("rdkit2d", "1", "2")
    run_id = trial.user_attrs["mlflow_run_id"]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    expected = pd.read_csv(client.download_artifacts(run_id, "predictions_val.csv", str(tmp_path)))
    assert len(expected) == 420 and expected["row"].is_unique  # one prediction per molecule
    assert expected["row"].is_monotonic_increasing  # in table-row order, whatever the batching
    smiles = tmp_path / "molecules.csv"
    pd.DataFrame({"smiles": expected["smiles"]}).to_csv(smiles, index=False)
    got = pd.read_csv(
        io.StringIO(launch(tmp_path, "predict", "--run", run_id, "--smiles", str(smiles)).stdout)
    )
    pd.testing.assert_series_equal(
        got["logd_pred"], expected["y_pred"].rename("logd_pred"), rtol=1e-4, atol=1e-5
    )
