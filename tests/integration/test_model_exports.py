"""Models that leave the platform: a final LoRA run on `tiny` (1 trial, 1 epoch, 2 seeds)
loads with PEFT alone, as an MLflow pyfunc model, from the model registry and behind
`mlflow models serve`, and predicts as a seed ensemble."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from tests.integration.helpers import TRACKING, env, launch, metric_history, trial_runs
from tests.integration.servers import free_port

pytestmark = pytest.mark.slow
SMILES = ["CCO", "c1ccccc1O", "not-a-smiles(", "CC(=O)Nc1ccc(O)cc1"]


@pytest.fixture(scope="module")
def finals(tmp_path_factory):
    """(folder, final runs by seed) after search, final phase and --register."""
    cwd = tmp_path_factory.mktemp("exports")
    launch(cwd, "--study", "lora", "--backbone", "tiny", "--trials", "1", "--epochs", "1")
    done = launch(cwd, "--study", "lora", "--backbone", "tiny", "--final", "--seeds", "0,1",
                  "--epochs", "1", "--register", "lipo-logd")
    assert "registered models:/lipo-logd/1" in done.stdout
    runs = {int(r.data.tags["lipo.seed"]): r for r in trial_runs(cwd, "lora", "final")}
    assert sorted(runs) == [0, 1]
    pd.DataFrame({"smiles": SMILES}).to_csv(cwd / "molecules.csv", index=False)
    return cwd, runs


@pytest.fixture(scope="module")
def members(finals) -> dict:
    """`launch.py predict --run` of each seed's run: what every other way must reproduce."""
    cwd, runs = finals
    return {seed: predict(cwd, "--run", run.info.run_id) for seed, run in runs.items()}


def client(cwd):
    from mlflow import MlflowClient
    return MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")


def predict(cwd, *args) -> pd.DataFrame:
    """`launch.py predict ...`, through the command line's own entry, in this process (a new
    interpreter per call costs ~10 s of imports)."""
    from lipo.cli import main
    out = cwd / f"predicted-{time.monotonic_ns()}.csv"
    assert main(["predict", *args, "--smiles", str(cwd / "molecules.csv"), "--out", str(out),
                 "--tracking-uri", f"sqlite:///{cwd}/mlruns/mlflow.db"]) == 0
    return pd.read_csv(out)


def test_peft_alone_reproduces_the_run(finals, tmp_path):
    from peft import PeftModel
    from lipo.models.checkpoint import base_model, read_config
    from lipo.inference.predict import predict_logd
    from transformers import AutoTokenizer
    cwd, runs = finals
    run_id = runs[0].info.run_id
    folder = client(cwd).download_artifacts(run_id, "checkpoint", str(tmp_path))
    expected = pd.read_csv(client(cwd).download_artifacts(run_id, "predictions_test.csv",
                                                          str(tmp_path)))
    model = PeftModel.from_pretrained(base_model(tmp_path / "checkpoint"),
                                      f"{folder}/adapter").eval()
    tokenizer = AutoTokenizer.from_pretrained(f"{folder}/tokenizer")
    cfg, _ = read_config(tmp_path / "checkpoint")
    got = predict_logd(model, tokenizer, cfg, list(expected["smiles"]))
    np.testing.assert_allclose(got, expected["y_pred"], rtol=0, atol=1e-5)


def test_pyfunc_and_registry_match_predict(finals, members, monkeypatch):
    import mlflow
    cwd, runs = finals
    monkeypatch.chdir(cwd)
    mlflow.set_tracking_uri(TRACKING)
    run_id, expected = runs[1].info.run_id, members[1]
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    got = model.predict(pd.DataFrame({"smiles": SMILES}))
    assert list(got.columns) == ["logd_pred", "error"]
    np.testing.assert_allclose(got["logd_pred"], expected["logd_pred"], rtol=0, atol=1e-6)
    assert got["error"].iloc[2] == "RDKit cannot parse this SMILES"
    assert model.metadata.signature.inputs.input_names() == ["smiles"]
    # --register: the seed with the lower validation MSE, never chosen on test
    best = min(runs.values(), key=lambda r: min(metric_history(cwd, r.info.run_id, "val/mse")))
    version = client(cwd).get_model_version("lipo-logd", "1")
    assert version.run_id == best.info.run_id
    card = version.description
    assert "| test/mse |" in card and "Seeds of the final phase: 0, 1" in card
    registered = mlflow.pyfunc.load_model("models:/lipo-logd/1").predict(
        pd.DataFrame({"smiles": SMILES[:2]}))
    assert np.isfinite(registered["logd_pred"]).all()
    names = {f.path for f in client(cwd).list_artifacts(run_id, "model")}
    assert {"model/README.md", "model/requirements.txt", "model/MLmodel"} <= names
    requirements = open(client(cwd).download_artifacts(run_id, "model/requirements.txt",
                                                       str(cwd))).read()
    assert "peft==" in requirements and "torch==" in requirements


def test_mlflow_models_serve_answers(finals, members):
    cwd, runs = finals
    run_id, port = runs[0].info.run_id, free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd, env=env(MLFLOW_TRACKING_URI=TRACKING), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server, timeout=120)
        body = json.dumps({"dataframe_split": {"columns": ["smiles"],
                                               "data": [[s] for s in SMILES]}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            rows = json.loads(answer.read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    np.testing.assert_allclose([r["logd_pred"] for r in rows], members[0]["logd_pred"],
                               rtol=0, atol=1e-6)
    assert rows[2]["error"] == "RDKit cannot parse this SMILES"


def wait_until_up(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow models serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    raise AssertionError(f"mlflow models serve did not answer {url} within {timeout} s")


def test_ensemble_mean_is_the_mean_of_members(finals, members):
    cwd, runs = finals
    ensemble = predict(cwd, "--study", "lora", "--final", "--mc-dropout", "3")
    stacked = np.stack([members[s]["logd_pred"].to_numpy() for s in (0, 1)])
    np.testing.assert_allclose(ensemble["logd_pred"], stacked.mean(axis=0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ensemble["logd_std"], stacked.std(axis=0, ddof=1), atol=1e-9)
    valid = ensemble["error"].isna() | (ensemble["error"] == "")
    assert (ensemble.loc[valid, "logd_mc_std"] > 0).all()
    assert ensemble["logd_pred"].isna().tolist() == [False, False, True, False]
    by_ids = predict(cwd, "--run", runs[0].info.run_id, runs[1].info.run_id)
    np.testing.assert_allclose(by_ids["logd_pred"], ensemble["logd_pred"], atol=1e-9)
