"""Models that leave the platform: a final LoRA run on `tiny` (1 trial, 1 epoch, 2 seeds)
loads with PEFT alone and as an MLflow pyfunc model; the registered model is the seeds'
ensemble (mean, spread, conformal interval, similarity), loads as `models:/NAME@champion`,
answers behind `mlflow models serve` and gives what `predict --study NAME --final` gives."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.integration.helpers import TRACKING, env, launch, trial_runs
from tests.integration.servers import free_port

pytestmark = pytest.mark.slow
# one unparsable row, and PFOS (perfluorooctanesulfonic acid): max Tanimoto 0.19 to the
# Lipophilicity set, far from anything the model trained on
FAR = "FC(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)S(=O)(=O)O"
SMILES = ["CCO", "c1ccccc1O", "not-a-smiles(", "CC(=O)Nc1ccc(O)cc1", FAR]
COLUMNS = ["logd_pred", "logd_std", "logd_lo", "logd_hi", "similarity", "error"]


@pytest.fixture(scope="module")
def finals(tmp_path_factory):
    """(folder, final runs by seed) after search, final phase and --register."""
    cwd = tmp_path_factory.mktemp("exports")
    launch(cwd, "--study", "lora", "--backbone", "tiny", "--trials", "1", "--epochs", "1")
    done = launch(
        cwd,
        "--study",
        "lora",
        "--backbone",
        "tiny",
        "--final",
        "--seeds",
        "0,1",
        "--epochs",
        "1",
        "--register",
        "lipo-logd",
    )
    assert "registered models:/lipo-logd/1 (models:/lipo-logd@champion)" in done.stdout
    runs = {int(r.data.tags["lipo.seed"]): r for r in trial_runs(cwd, "lora", "final")}
    assert sorted(runs) == [0, 1]
    pd.DataFrame({"smiles": SMILES}).to_csv(cwd / "molecules.csv", index=False)
    return cwd, runs


@pytest.fixture(scope="module")
def refits(finals) -> dict:
    """Each seed's refit on training + validation (lipo.final.refit): what the ensemble serves."""
    cwd, runs = finals
    by_final = {r.data.tags["lipo.refit_of"]: r for r in trial_runs(cwd, "lora", "refit")}
    return {seed: by_final[run.info.run_id] for seed, run in runs.items()}


@pytest.fixture(scope="module")
def members(finals, refits) -> dict:
    """`launch.py predict --run` of each seed's refit run, the members the ensemble serves:
    what every other way must reproduce."""
    cwd, _ = finals
    return {seed: predict(cwd, "--run", run.info.run_id) for seed, run in refits.items()}


def client(cwd):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")


def predict(cwd, *args) -> pd.DataFrame:
    """`launch.py predict ...`, through the command line's own entry, in this process (a new
    interpreter per call costs ~10 s of imports)."""
    from lipo.cli import main

    out = cwd / f"predicted-{time.monotonic_ns()}.csv"
    assert (
        main(
            [
                "predict",
                *args,
                "--smiles",
                str(cwd / "molecules.csv"),
                "--out",
                str(out),
                "--tracking-uri",
                f"sqlite:///{cwd}/mlruns/mlflow.db",
            ]
        )
        == 0
    )
    return pd.read_csv(out)


def test_peft_alone_reproduces_the_run(finals, tmp_path):
    from peft import PeftModel
    from transformers import AutoTokenizer

    from lipo.inference.predict import predict_logd
    from lipo.models.checkpoint import base_model, read_config

    cwd, runs = finals
    run_id = runs[0].info.run_id
    folder = client(cwd).download_artifacts(run_id, "checkpoint", str(tmp_path))
    expected = pd.read_csv(
        client(cwd).download_artifacts(run_id, "predictions_test.csv", str(tmp_path))
    )
    model = PeftModel.from_pretrained(
        base_model(tmp_path / "checkpoint"), f"{folder}/adapter"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(f"{folder}/tokenizer")
    cfg, _ = read_config(tmp_path / "checkpoint")
    got = predict_logd(model, tokenizer, cfg, list(expected["smiles"]))
    np.testing.assert_allclose(got, expected["y_pred"], rtol=0, atol=1e-5)


def test_pyfunc_matches_predict(finals, monkeypatch):
    import mlflow

    cwd, runs = finals
    run_id = runs[1].info.run_id
    expected = predict(cwd, "--run", run_id)
    monkeypatch.chdir(cwd)
    mlflow.set_tracking_uri(TRACKING)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    got = model.predict(pd.DataFrame({"smiles": SMILES}))
    assert list(got.columns) == ["logd_pred", "error"]
    np.testing.assert_allclose(got["logd_pred"], expected["logd_pred"], rtol=0, atol=1e-6)
    assert got["error"].iloc[2] == "RDKit cannot parse this SMILES"
    assert model.metadata.signature.inputs.input_names() == ["smiles"]
    names = {f.path for f in client(cwd).list_artifacts(run_id, "model")}
    assert {"model/README.md", "model/requirements.txt", "model/MLmodel"} <= names
    requirements = open(
        client(cwd).download_artifacts(run_id, "model/requirements.txt", str(cwd))
    ).read()
    assert "peft==" in requirements and "torch==" in requirements
    assert "+" not in requirements  # torch==2.13.0, not this machine's 2.13.0+cpu


@pytest.fixture(scope="module")
def champion(finals, members):
    """models:/lipo-logd@champion predicting SMILES, and the version the alias points at."""
    import mlflow

    cwd, _ = finals
    mlflow.set_tracking_uri(f"sqlite:///{cwd}/mlruns/mlflow.db")
    try:
        model = mlflow.pyfunc.load_model("models:/lipo-logd@champion")
        return model, model.predict(pd.DataFrame({"smiles": SMILES}))
    finally:
        mlflow.set_tracking_uri(None)


def served(cwd, runs, members) -> np.ndarray:
    """What the ensemble should serve: the seeds' mean blended with the descriptor partner the
    final phase fitted and logged in the parent run's bundle, by its weight."""
    from lipo.inference.partner import Partner

    (parent,) = {r.data.tags["mlflow.parentRunId"] for r in runs.values()}
    bundle = client(cwd).download_artifacts(parent, "ensemble/artifacts/bundle", str(cwd))
    entry = json.loads(open(f"{bundle}/ensemble.json").read())["partner"]
    metrics = client(cwd).get_run(parent).data.metrics
    assert metrics["served/partner_weight"] == entry["weight"]
    assert {"served/test_mse", "served/ensemble_test_mse", "served/partner_test_mse"} <= set(
        metrics
    )
    mean = np.mean([members[s]["logd_pred"].to_numpy() for s in (0, 1)], axis=0)
    valid = ~np.isnan(mean)
    mean[valid] = Partner.load(Path(bundle), entry).blend(
        mean[valid], [s for s, ok in zip(SMILES, valid) if ok]
    )
    return mean


def test_registered_model_is_the_ensemble(finals, members, champion):
    cwd, runs = finals
    model, got = champion
    assert list(got.columns) == COLUMNS
    stacked = np.stack([members[s]["logd_pred"].to_numpy() for s in (0, 1)])
    np.testing.assert_allclose(got["logd_pred"], served(cwd, runs, members), rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["logd_std"], stacked.std(axis=0, ddof=1), atol=1e-6)
    bad = got.iloc[2]
    assert bad["error"] == "RDKit cannot parse this SMILES"
    assert bad[COLUMNS[:-1]].isna().all()
    ok = got.drop(index=2)
    assert ok[COLUMNS[:-1]].notna().all().all() and (ok["error"] == "").all()
    half = ok["logd_hi"] - ok["logd_pred"]
    assert np.isfinite(half).all() and (half > 0).all()
    np.testing.assert_allclose(half, ok["logd_pred"] - ok["logd_lo"], atol=1e-9)
    np.testing.assert_allclose(half, half.iloc[0], atol=1e-9)  # one conformal half-width
    assert ((ok["similarity"] >= 0) & (ok["similarity"] <= 1)).all()
    assert got["similarity"].iloc[4] < 0.25  # PFOS: unlike every training molecule
    wider = model.predict(pd.DataFrame({"smiles": SMILES[:1]}), params={"coverage": 0.99})
    assert wider["logd_hi"].iloc[0] - wider["logd_pred"].iloc[0] >= half.iloc[0]
    # the version behind the alias: the final parent run's ensemble, with the seeds' card
    version = client(cwd).get_model_version_by_alias("lipo-logd", "champion")
    assert str(version.version) == "1"
    parent = {r.data.tags["mlflow.parentRunId"] for r in runs.values()}
    assert {version.run_id} == parent
    card = version.description
    assert "ensemble of seeds 0, 1" in card and "| test/mse |" in card
    assert "validation molecules (never test)" in card
    assert "Descriptor partner: `logd_pred` = " in card
    assert "Refitted members: 2 of 2" in card
    requirements = open(
        client(cwd).download_artifacts(version.run_id, "ensemble/requirements.txt", str(cwd))
    ).read()
    assert "+" not in requirements and "rdkit==" in requirements


def test_mlflow_models_serve_answers(finals, champion):
    """The registered ensemble behind `mlflow models serve`, the columns as loaded."""
    cwd, _ = finals
    expected, port = champion[1], free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/lipo-logd@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=cwd,
        env=env(MLFLOW_TRACKING_URI=TRACKING),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server, timeout=180)
        body = json.dumps(
            {"dataframe_split": {"columns": ["smiles"], "data": [[s] for s in SMILES]}}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            rows = json.loads(answer.read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    served = pd.DataFrame(rows)
    assert list(served.columns) == COLUMNS
    numbers = COLUMNS[:-1]
    np.testing.assert_allclose(
        served[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=0, atol=1e-6
    )  # NaN (JSON null) where the row is bad
    assert served["error"].iloc[2] == "RDKit cannot parse this SMILES"


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


def test_study_ensemble_serves_what_the_registered_model_serves(finals, refits, members, champion):
    cwd, runs = finals
    ensemble = predict(cwd, "--study", "lora", "--final", "--mc-dropout", "3")
    stacked = np.stack([members[s]["logd_pred"].to_numpy() for s in (0, 1)])
    # rebuilt from MLflow here, the partner from the same cache the final phase filled
    expected = served(cwd, runs, members)
    np.testing.assert_allclose(ensemble["logd_pred"], expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ensemble["logd_std"], stacked.std(axis=0, ddof=1), atol=1e-9)
    valid = ensemble["error"].isna() | (ensemble["error"] == "")
    assert (ensemble.loc[valid, "logd_mc_std"] > 0).all()
    assert ensemble["logd_pred"].isna().tolist() == [False, False, True, False, False]
    # the registered model's columns, from the same code (lipo.inference.bundle)
    numbers = ["logd_pred", "logd_std", "logd_lo", "logd_hi", "similarity"]
    np.testing.assert_allclose(
        ensemble[numbers].to_numpy(float), champion[1][numbers].to_numpy(float), rtol=0, atol=1e-6
    )
    narrower = predict(cwd, "--study", "lora", "--final", "--coverage", "0.5")
    assert (
        (narrower["logd_hi"] - narrower["logd_lo"])[valid]
        <= (ensemble["logd_hi"] - ensemble["logd_lo"])[valid] + 1e-12
    ).all()
    # runs named one by one: their plain mean, no partner
    by_ids = predict(cwd, "--run", refits[0].info.run_id, refits[1].info.run_id)
    np.testing.assert_allclose(by_ids["logd_pred"], stacked.mean(axis=0), atol=1e-9)
