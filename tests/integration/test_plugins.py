"""An adapter and a strategy written outside lipo (tests/plugins.py: one file and one
registration line each) train through the launcher's own path, on `tiny`. In this process:
a registration lives in the process that made it; `--workers` hands it on to the processes it
starts."""

import pytest
from accelerate.state import AcceleratorState
from mlflow import MlflowClient

from lipo.cli import main
from tests import plugins
from tests.conftest import DATA_DIR
from tests.integration.helpers import metric_history, optuna_trials

pytestmark = pytest.mark.slow

STUDY = '''"""The shorter half of the molecules, head and LayerNorms trained: plugins only."""
STRATEGY = "short_half"
ADAPTER = "full"
TRIALS = 1
EPOCHS = 1


def space(trial):
    return {"lr": trial.suggest_float("lr", 1e-3, 2e-3)}
'''


@pytest.fixture
def plugged(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    plugins.install(folder, monkeypatch)
    (folder / "plugin_study.py").write_text(STUDY)
    monkeypatch.setenv("LIPO_STUDIES", str(folder))
    monkeypatch.chdir(tmp_path)
    AcceleratorState._reset_state(reset_partial_state=True)  # per process: start and end clean
    yield folder
    AcceleratorState._reset_state(reset_partial_state=True)
    plugins.forget()


def small_table(folder):
    """The first 400 molecules: enough to train on, quick to tokenise."""
    path = folder / "small.csv"
    path.write_text(
        "".join((DATA_DIR / "lipophilicity.csv").read_text().splitlines(keepends=True)[:401])
    )
    return path


def test_a_plugin_adapter_and_strategy_train_through_the_launcher(plugged, tmp_path):
    # An absolute URI: MLflow caches its store per URI within a process.
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert (
        main(
            [
                "--study",
                "plugin_study",
                "--adapter",
                "head_norms",
                "--backbone",
                "tiny",
                "--data",
                str(small_table(tmp_path)),
                "--tracking-uri",
                uri,
                "--precision",
                "fp32",
            ]
        )
        == 0
    )
    (trial,) = optuna_trials(tmp_path)
    run = MlflowClient(uri).get_run(trial.user_attrs["mlflow_run_id"])
    tags, metrics = run.data.tags, run.data.metrics
    assert (tags["lipo.strategy"], tags["lipo.adapter"]) == ("short_half", "head_norms")
    # the head and the LayerNorms only: a sliver of the encoder
    assert 0 < metrics["trainable_params"] < metrics["total_params"] / 10
    assert "val/mse" in metrics
    (kept,) = metric_history(tmp_path, run.info.run_id, "short_half/kept")
    assert 100 < kept <= 200  # half of the ~80% of 400 molecules in the training split
    artifacts = [a.path for a in MlflowClient(uri).list_artifacts(run.info.run_id)]
    assert "short_half_kept.csv" in artifacts


def test_workers_started_by_the_launcher_see_its_plugins(plugged, tmp_path):
    """--workers starts fresh processes: the registrations made here are handed on to them."""
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert (
        main(
            [
                "--study",
                "plugin_study",
                "--adapter",
                "head_norms",
                "--backbone",
                "tiny-again",
                "--data",
                str(small_table(tmp_path)),
                "--tracking-uri",
                uri,
                "--precision",
                "fp32",
                "--trials",
                "2",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    trials = optuna_trials(tmp_path)
    assert len(trials) == 2 and all(t.state.name == "COMPLETE" for t in trials)
    for trial in trials:
        tags = MlflowClient(uri).get_run(trial.user_attrs["mlflow_run_id"]).data.tags
        assert (tags["lipo.strategy"], tags["lipo.adapter"], tags["lipo.backbone"]) == (
            "short_half",
            "head_norms",
            "tiny-again",
        )
