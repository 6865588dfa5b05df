"""Every study through the launcher on `molformer-tiny` (our MoLFormer architecture, random
weights), then --final, predict from a run, and the report: one small data folder (400
Lipophilicity molecules, 150 external ones), one trial of one epoch each."""

import io

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import DATA_DIR
from tests.integration.helpers import launch, trial_runs

pytestmark = pytest.mark.slow
BACKBONE = ("--backbone", "molformer-tiny")
SMALL = {  # the active and influence studies at this data size
    "active_small": """STRATEGY = "active"
ADAPTER = "full"
TRIALS = 1
EPOCHS = 1
DEFAULTS = {"strategy.initial": 60, "strategy.acquire": 40, "strategy.rounds": 2,
            "strategy.passes": 4, "strategy.external": True}


def space(trial):
    return {"lr": trial.suggest_float("lr", 1e-3, 2e-3)}
""",
    "influence_small": """STRATEGY = "influence"
ADAPTER = "full"
TRIALS = 1
EPOCHS = 1
DEFAULTS = {"strategy.depth": 50, "strategy.method": "lissa"}


def space(trial):
    return {"strategy.k": trial.suggest_categorical("strategy.k", [20])}
""",
}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("molformer")
    data = cwd / "data"
    data.mkdir()
    pd.read_csv(DATA_DIR / "lipophilicity.csv").head(400).to_csv(
        data / "lipophilicity.csv", index=False
    )
    pool = DATA_DIR / "External-Dataset_for_Task2.csv"
    pd.read_csv(pool).head(150).to_csv(data / pool.name, index=False)
    studies = cwd / "studies"
    studies.mkdir()
    for name, text in SMALL.items():
        (studies / f"{name}.py").write_text(text)
    return cwd, {"LIPO_DATA_DIR": str(data), "LIPO_STUDIES": str(studies)}


def run_study(work, study: str, *extra: str):
    cwd, env = work
    return launch(cwd, "--study", study, *BACKBONE, "--trials", "1", "--epochs", "1", *extra, **env)


def last_trial(cwd, experiment: str, phase: str = "search"):
    runs = trial_runs(cwd, experiment, phase)
    assert runs, f"no {phase} run of {experiment}"
    return max(runs, key=lambda r: r.info.start_time)


@pytest.mark.parametrize(
    "study",
    ["baseline", "lora", "ia3", "bitfit", "mlm", "curriculum", "active_small", "influence_small"],
)
def test_every_study_trains_on_molformer(work, study):
    run_study(work, study)
    run = last_trial(work[0], study)
    assert run.info.status == "FINISHED"
    assert run.data.tags["lipo.backbone"] == "molformer-tiny"
    assert 0 < run.data.metrics["val/mse"] < 10
    trainable, total = run.data.metrics["trainable_params"], run.data.metrics["total_params"]
    if study in ("lora", "ia3", "bitfit"):
        assert trainable < total / 2, (study, trainable, total)


def test_the_lora_targets_are_molformers_modules(work):
    run = last_trial(work[0], "lora")
    p = run.data.params
    # molformer-tiny: 2 layers, every targeted Linear is 32 -> 32: LoRA adds r * (32 + 32) per
    # module (DoRA a magnitude of 32 more); the head (32 -> 32 -> 1) trains too.
    modules = {"qkv": 3, "attention": 4, "all": 6}[p["adapter.targets"]]
    per_module = int(p["adapter.r"]) * 64 + (32 if p.get("adapter.use_dora") == "True" else 0)
    head = 32 * 32 + 32 + 33
    assert run.data.metrics["trainable_params"] == head + 2 * modules * per_module


def test_final_and_predict_rebuild_the_run(work):
    cwd, env = work
    launch(cwd, "--study", "baseline", *BACKBONE, "--final", "--seeds", "0", **env)
    run = last_trial(cwd, "baseline", "final")
    assert "test/mse" in run.data.metrics
    client = MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")
    expected = pd.read_csv(
        client.download_artifacts(run.info.run_id, "predictions_test.csv", str(cwd))
    )
    info = client.download_artifacts(run.info.run_id, "checkpoint/backbone.json", str(cwd))
    assert '"implementation": "lipo.molformer/1"' in open(info).read()
    smiles = cwd / "molecules.csv"
    pd.DataFrame({"smiles": expected["smiles"]}).to_csv(smiles, index=False)
    out = launch(cwd, "predict", "--run", run.info.run_id, "--smiles", str(smiles), **env)
    got = pd.read_csv(io.StringIO(out.stdout))
    pd.testing.assert_series_equal(
        got["logd_pred"], expected["y_pred"].rename("logd_pred"), rtol=1e-4, atol=1e-5
    )


def test_report_has_the_molformer_rows(work):
    cwd, env = work
    launch(cwd, "--report", *BACKBONE, LIPO_REPORT_TREES="5", **env)
    table = (cwd / "reports" / "report.md").read_text()
    for study in ("baseline", "lora", "mlm", "influence_small"):
        assert study in table, table[:2000]
