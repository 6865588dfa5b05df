"""`launch.py predict` rebuilds base + adapter + head from MLflow and reproduces the
predictions made at the end of training."""

import io

import pandas as pd
import pytest

from tests.integration.helpers import launch, optuna_trials

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("study, extra", [("lora", ()), ("bitfit", ("--head-features", "rdkit"))])
def test_predict_matches_training(tmp_path, study, extra):
    launch(
        tmp_path, "--study", study, "--backbone", "tiny", "--trials", "1", "--epochs", "1", *extra
    )
    trial = optuna_trials(tmp_path)[0]
    run_id = trial.user_attrs["mlflow_run_id"]
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    expected = pd.read_csv(client.download_artifacts(run_id, "predictions_val.csv", str(tmp_path)))
    smiles = tmp_path / "molecules.csv"
    pd.DataFrame({"smiles": list(expected["smiles"]) + ["not-a-smiles("]}).to_csv(
        smiles, index=False
    )
    out = launch(tmp_path, "predict", "--run", run_id, "--smiles", str(smiles))
    got = pd.read_csv(io.StringIO(out.stdout))
    assert len(got) == len(expected) + 1  # the bad row is kept, with its reason
    assert got["error"].iloc[-1] == "RDKit cannot parse this SMILES"
    assert "1 of" in out.stderr
    pd.testing.assert_series_equal(
        got["logd_pred"].iloc[:-1].reset_index(drop=True),
        expected["y_pred"].rename("logd_pred"),
        rtol=1e-4,
        atol=1e-5,
    )


def test_predict_unknown_run_is_one_line(tmp_path):
    smiles = tmp_path / "one.smi"
    smiles.write_text("CCO\n")
    done = launch(
        tmp_path, "predict", "--run", "0123456789abcdef", "--smiles", str(smiles), ok=False
    )
    assert done.returncode == 2
    assert "no MLflow run '0123456789abcdef'" in done.stderr
