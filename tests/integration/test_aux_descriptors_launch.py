"""aux_descriptors through the launcher, under torchrun (two processes, Accelerate's
distributed model) with LoRA and randomised SMILES, on `tiny` and 400 molecules: the search's
trial logs train/aux_loss each epoch, the final run's pyfunc model answers with logD alone,
and `predict` of that run gives what the pyfunc model gives."""

import math

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA_DIR
from tests.integration.helpers import launch, metric_history, trial_runs

pytestmark = pytest.mark.slow
TORCHRUN = ("torchrun", "--nproc_per_node", "2", "--master_port", "29531")
STUDY = '''"""LoRA with the descriptors as an auxiliary target."""
STRATEGY = "all"
ADAPTER = "lora"
TRIALS = 1
EPOCHS = 2
DEFAULTS = {"aux_descriptors": 0.5, "augment": 1, "batch_size": 16}


def space(trial):
    return {"lr": trial.suggest_float("lr", 1e-3, 2e-3)}
'''
SMILES = ["CCO", "c1ccccc1O", "not-a-smiles(", "CC(=O)Nc1ccc(O)cc1"]


def test_a_study_with_the_auxiliary_loss_under_torchrun(tmp_path, monkeypatch):
    import mlflow

    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "aux_lora.py").write_text(STUDY)
    table = tmp_path / "small.csv"
    lines = (DATA_DIR / "lipophilicity.csv").read_text().splitlines(keepends=True)
    table.write_text("".join(lines[:401]))
    args = ("--study", "aux_lora", "--backbone", "tiny", "--data", str(table))
    args += ("--precision", "fp32")
    launch(tmp_path, *args, prefix=TORCHRUN, LIPO_STUDIES=str(studies))
    (trial,) = trial_runs(tmp_path, "aux_lora")
    assert trial.data.params["aux_descriptors"] == "0.5"
    aux = metric_history(tmp_path, trial.info.run_id, "train/aux_loss")
    assert len(aux) == 2 and all(math.isfinite(a) and a > 0 for a in aux)

    launch(tmp_path, *args, "--final", "--seeds", "0", prefix=TORCHRUN, LIPO_STUDIES=str(studies))
    (final,) = trial_runs(tmp_path, "aux_lora", phase="final")
    assert "test/mse" in final.data.metrics
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{final.info.run_id}/model")
        got = model.predict(pd.DataFrame({"smiles": SMILES}))
    finally:
        mlflow.set_tracking_uri(None)
    assert list(got.columns) == ["logd_pred", "error"]
    assert np.isfinite(got["logd_pred"].to_numpy()[[0, 1, 3]]).all()

    from lipo.cli import main

    pd.DataFrame({"smiles": SMILES}).to_csv(tmp_path / "molecules.csv", index=False)
    out = tmp_path / "predicted.csv"
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    argv = ["predict", "--run", final.info.run_id, "--smiles", str(tmp_path / "molecules.csv")]
    assert main([*argv, "--out", str(out), "--tracking-uri", uri]) == 0
    predicted = pd.read_csv(out)
    assert list(predicted.columns) == ["row", "smiles", "canonical_smiles", "logd_pred", "error"]
    np.testing.assert_allclose(predicted["logd_pred"], got["logd_pred"], rtol=0, atol=1e-6)
