"""What the MLflow UI shows a user of a trial or final run, on a real SQLite store: system
metrics (CPU, memory; the GPU with nvidia-ml-py), training curves per optimiser step beside
the per-epoch ones, the data as dataset inputs (file digest, split, part as context), and the
address of the study's runs table."""

import time

import numpy as np
import pytest
from accelerate import Accelerator
from mlflow.exceptions import MlflowException

from lipo.config import RunConfig
from lipo.data.splits import Split
from lipo.invocation import Invocation
from lipo.study_files import load_study
from lipo.tracking.recorder import Recorder, best_val_metrics
from lipo.tracking.store import Tracker
from lipo.training.steps import STEP_CURVE_EVERY
from lipo.training.trial_run import TrialRun, Workspace

FEW = np.arange(120)  # 96 to train on (12 batches of 8 an epoch), 24 to validate on


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    """One store for the module: creating a SQLite store (MLflow's migrations) takes seconds."""
    folder = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # artifacts go under ./mlruns
        yield Tracker(f"sqlite:///{folder / 'mlflow.db'}", "baseline")


def test_a_run_records_system_metrics_until_it_ends(tracker, monkeypatch):
    monkeypatch.setenv("LIPO_SYSTEM_METRICS", "0.2")
    run_id = tracker.start_run("trial 0", {}, system_metrics=True)
    time.sleep(1.0)
    started = time.perf_counter()
    tracker.finish(run_id)
    assert time.perf_counter() - started < 1.0  # the thread stops at once
    metrics = tracker.client.get_run(run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(
        metrics
    )
    assert tracker.monitors == {}


def test_system_metrics_off_records_none(tracker, monkeypatch):
    monkeypatch.setenv("LIPO_SYSTEM_METRICS", "0")
    run_id = tracker.start_run("trial 0", {}, system_metrics=True)
    tracker.finish(run_id)
    assert not any(k.startswith("system/") for k in tracker.client.get_run(run_id).data.metrics)


def workspace(molecules) -> Workspace:
    return Workspace(molecules, Split("random", FEW[:96], FEW[96:108], FEW[108:]), "ab" * 32)


def invocation(tracker, cfg: RunConfig, molecules) -> Invocation:
    return Invocation(
        study="baseline",
        definition=load_study("baseline"),
        base=cfg,
        trials=1,
        storage=None,
        tracking_uri=tracker.uri,
        ws=workspace(molecules),
    )


def inputs_of(tracker, phase: str, molecules) -> dict:
    cfg = RunConfig(backbone="tiny", phase=phase)
    recorder = Recorder(invocation(tracker, cfg, molecules), tracker, None, cfg, "trial 0", {})
    tracker.finish(recorder.run_id)
    found = tracker.client.get_run(recorder.run_id).inputs.dataset_inputs
    return {i.tags[0].value: i.dataset for i in found}


def test_a_search_trial_lists_its_train_and_val_parts_as_dataset_inputs(tracker, molecules):
    found = inputs_of(tracker, "search", molecules)
    assert set(found) == {"train", "val"}  # a search trial never sees the test part
    name = molecules.source.rsplit("/", 1)[-1]
    assert found["train"].name == f"{name}:random:train"
    assert found["val"].digest == found["train"].digest == "ab" * 6
    assert '"num_rows": 96' in found["train"].profile
    assert '"num_rows": 12' in found["val"].profile


def test_a_final_run_lists_the_test_part_too(tracker, molecules):
    found = inputs_of(tracker, "final", molecules)
    assert set(found) == {"train", "val", "test"}
    assert found["test"].name.endswith(":random:test") and '"num_rows": 12' in found["test"].profile


def test_a_run_whose_data_the_store_refuses_ends_failed_not_running(
    tracker, molecules, monkeypatch
):
    def refuse(*args, **kwargs):
        raise MlflowException("the store refused the dataset inputs")

    monkeypatch.setattr(tracker, "log_data_inputs", refuse)
    cfg = RunConfig(backbone="tiny", phase="search")
    with pytest.raises(MlflowException):
        Recorder(invocation(tracker, cfg, molecules), tracker, None, cfg, "trial 7", {})
    [run] = tracker.client.search_runs([tracker.experiment_id], "attributes.run_name = 'trial 7'")
    assert run.info.status == "FAILED"
    assert "refused the dataset inputs" in run.data.tags["lipo.error"]
    assert tracker.monitors == {}  # its system-metrics thread stopped with it


def test_the_best_epochs_validation_is_one_column_per_metric():
    best = {"val/mse": 0.4, "val/rmse": 0.63, "val/mae": 0.5, "val/r2": 0.7, "train/loss": 0.2}
    assert best_val_metrics(best) == {
        "best/val_mse": 0.4,
        "best/val_rmse": 0.63,
        "best/val_mae": 0.5,
        "best/val_r2": 0.7,
    }


def test_training_curves_per_optimiser_step(molecules):
    """Rank 0's log gets the batch loss and learning rate every STEP_CURVE_EVERY steps, the
    step counted across epochs: 2 epochs x 12 steps give points at steps 10 and 20."""
    logged = []
    cfg = RunConfig(backbone="tiny", epochs=2, patience=5, batch_size=8, lr=1e-3, warmup_frac=0.25)
    run = TrialRun(
        cfg,
        workspace(molecules),
        Accelerator(cpu=True),
        log=lambda metrics, step: logged.append((step, metrics)),
    )
    run.fit(run.new_model(), run.split.train)
    curve = [(step, m) for step, m in logged if "train/step_loss" in m]
    assert STEP_CURVE_EVERY == 10 and [step for step, _ in curve] == [10, 20]
    # the linear schedule: up over 6 of the 24 steps, then down to 0 at step 24
    assert [m["train/lr"] for _, m in curve] == pytest.approx([1e-3 * 14 / 18, 1e-3 * 4 / 18])
    assert all(0 < m["train/step_loss"] < 10 for _, m in curve)


def test_an_intermediate_fit_draws_no_step_curve(molecules):
    logged = []
    cfg = RunConfig(backbone="tiny", epochs=1, batch_size=8)
    run = TrialRun(
        cfg,
        workspace(molecules),
        Accelerator(cpu=True),
        log=lambda metrics, step: logged.append(metrics),
    )
    run.fit(run.new_model(), run.split.train, report=False)
    assert not any("train/step_loss" in m for m in logged)


def test_the_runs_view_address(tracker, monkeypatch):
    view = tracker.runs_view()
    assert view == (
        f"runs: mlflow ui --backend-store-uri {tracker.uri}, then open "
        f"http://127.0.0.1:5000/#/experiments/{tracker.experiment_id}/runs"
    )
    monkeypatch.setattr(tracker, "uri", "http://mlflow.lab:5000/")  # a shared server
    assert tracker.runs_view() == (
        f"runs: http://mlflow.lab:5000/#/experiments/{tracker.experiment_id}/runs"
    )
