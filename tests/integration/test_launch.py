"""End to end through launch.py: MLflow and Optuna are read back as a user would."""

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from lipo.search.claims import SeedClaims
from lipo.tracking import schema
from tests.integration.helpers import launch, metric_history, mlflow_runs, optuna_trials, trial_runs

TAGS = (
    "lipo.study",
    "lipo.strategy",
    "lipo.adapter",
    "lipo.backbone",
    "lipo.phase",
    "lipo.seed",
    "lipo.split",
    "optuna.trial_number",
)
TINY = ("--study", "baseline", "--backbone", "tiny", "--epochs", "2")

pytestmark = pytest.mark.slow


def test_search_resume_and_final(tmp_path):
    launch(tmp_path, *TINY, "--trials", "2")
    runs = trial_runs(tmp_path, "baseline")
    trials = optuna_trials(tmp_path)
    assert len(runs) == len(trials) == 2
    by_id = {r.info.run_id: r for r in runs}
    for trial in trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]  # each trial names its run
        assert all(tag in run.data.tags for tag in TAGS)
        assert run.data.tags["optuna.trial_number"] == str(trial.number)
        assert run.data.tags["lipo.phase"] == "search"
        assert not any(key.startswith("test/") for key in run.data.metrics)
        curve = metric_history(tmp_path, run.info.run_id, "val/mse")
        assert 1 <= len(curve) <= 2
        # full fine-tuning trains every parameter but the rotary position table (fixed
        # sinusoids: 512 positions x tiny's head width 16)
        metrics = run.data.metrics
        assert metrics["trainable_params"] == metrics["total_params"] - 512 * 16 > 0
        if trial.state == TrialState.COMPLETE:  # where its time went
            spent = [metrics[f"time/{k}_s"] for k in ("train", "eval", "save")]
            assert min(spent) >= 0 and spent[0] > 0
            assert sum(spent) <= metrics["wall_time_s"]
            # the UI's column for the epoch the run kept, not the last epoch's val/mse
            assert metrics["best/val_mse"] == pytest.approx(min(curve))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete and complete[0].value == pytest.approx(
        min(metric_history(tmp_path, complete[0].user_attrs["mlflow_run_id"], "val/mse"))
    )

    launch(tmp_path, *TINY, "--trials", "3")  # continues the same study
    assert len(optuna_trials(tmp_path)) == 3
    assert len(trial_runs(tmp_path, "baseline")) == 3

    launch(tmp_path, *TINY, "--final", "--seeds", "0,1")
    finals = trial_runs(tmp_path, "baseline", phase="final")
    assert sorted(r.data.tags["lipo.seed"] for r in finals) == ["0", "1"]
    for run in finals:
        assert {"test/mse", "test/rmse", "test/mae", "test/r2"} <= set(run.data.metrics)
        assert set(schema.BEST_METRICS) <= set(run.data.metrics)
        # its validation table is the best epoch's, the one its val/mse curve reached lowest
        table = pd.read_csv(
            MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db").download_artifacts(
                run.info.run_id, "predictions_val.csv", str(tmp_path)
            )
        )
        assert ((table.y_pred - table.y_true) ** 2).mean() == pytest.approx(
            min(metric_history(tmp_path, run.info.run_id, "val/mse")), rel=1e-5
        )
    assert not any(
        k.startswith("test/") for r in trial_runs(tmp_path, "baseline") for k in r.data.metrics
    )

    refits = check_refits(tmp_path, finals)

    again = launch(tmp_path, *TINY, "--final", "--seeds", "0,1")  # nothing to redo
    assert "already finished" in again.stdout + again.stderr
    assert "already refitted" in again.stdout + again.stderr
    assert len(trial_runs(tmp_path, "baseline", phase="final")) == 2
    assert {r.info.run_id for r in trial_runs(tmp_path, "baseline", phase="refit")} == refits

    # a seed another launch is training (it holds the seed's claim in the shared Optuna
    # storage) is left to that launch
    best = finals[0].data.tags["lipo.best_trial"]
    claims = SeedClaims(
        finals[0].data.tags["lipo.optuna_study"], str(tmp_path / "mlruns" / "optuna.journal")
    )
    with claims.hold(f"final-{best}-strategy-seed2") as held:
        assert held
        busy = launch(tmp_path, *TINY, "--final", "--seeds", "2")
    assert "another launch is training it" in busy.stdout + busy.stderr
    assert len(trial_runs(tmp_path, "baseline", phase="final")) == 2


def check_refits(cwd, finals) -> set[str]:
    """Each final seed was refitted on training + validation for the epochs it kept, the last
    kept; the parent's ensemble serves the refits. Returns the refit runs' ids."""
    client = MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")
    refits = {r.data.tags["lipo.refit_of"]: r for r in trial_runs(cwd, "baseline", phase="refit")}
    assert set(refits) == {r.info.run_id for r in finals}
    for final in finals:
        refit, kept = refits[final.info.run_id], final.data.metrics["best_epoch"]
        assert refit.data.tags["lipo.seed"] == final.data.tags["lipo.seed"]
        assert refit.data.params["epochs"] == str(int(kept))
        assert refit.data.metrics["best_epoch"] == kept  # the last epoch, chosen by nothing
        assert len(metric_history(cwd, refit.info.run_id, "val/mse")) == kept
        assert "test/mse" in refit.data.metrics and "best/val_mse" not in refit.data.metrics
        sizes = {d.tags[0].value: d.dataset.profile for d in refit.inputs.dataset_inputs}
        trained = json.loads(sizes["train"])["num_rows"]
        validated = json.loads(sizes["val"])["num_rows"]
        final_sizes = {d.tags[0].value: d.dataset.profile for d in final.inputs.dataset_inputs}
        assert trained == json.loads(final_sizes["train"])["num_rows"] + validated
    (parent,) = {r.data.tags["mlflow.parentRunId"] for r in finals}
    bundle = client.download_artifacts(parent, "ensemble/artifacts/bundle", str(cwd))
    manifest = json.loads(Path(bundle, "ensemble.json").read_text())
    assert {m["run_id"]: m["refit_run_id"] for m in manifest["members"]} == {
        k: r.info.run_id for k, r in refits.items()
    }
    assert client.get_run(parent).data.metrics["served/refit_members"] == 2
    return {r.info.run_id for r in refits.values()}


FAILING_STUDY = '''"""Trial 0 cannot build its head; the study must go on."""
STRATEGY = "all"
ADAPTER = "full"
TRIALS = 2
EPOCHS = 1


def space(trial):
    lr = trial.suggest_float("lr", 1e-4, 1e-3, log=True)
    return {"lr": lr, "head_hidden": -1 if trial.number == 0 else 0}
'''


def test_failing_trial_is_recorded_and_the_study_goes_on(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "flaky.py").write_text(FAILING_STUDY)
    launch(tmp_path, "--study", "flaky", "--backbone", "tiny", LIPO_STUDIES=str(studies))
    trials = sorted(optuna_trials(tmp_path), key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert (
        "RuntimeError" in trials[0].user_attrs["error"]
        or "negative" in trials[0].user_attrs["error"]
    )
    runs = {r.data.tags["optuna.trial_number"]: r for r in trial_runs(tmp_path, "flaky")}
    assert runs["0"].info.status == "FAILED" and runs["0"].data.tags["lipo.error"]
    assert runs["1"].info.status == "FINISHED"


def test_torchrun_two_processes_make_exactly_the_trials(tmp_path):
    launch(
        tmp_path,
        *TINY,
        "--trials",
        "2",
        "--epochs",
        "1",
        prefix=("torchrun", "--nproc_per_node", "2", "--master_port", "29517"),
    )
    assert len(optuna_trials(tmp_path)) == 2
    runs = trial_runs(tmp_path, "baseline")
    assert len(runs) == 2
    parents = [
        r for r in mlflow_runs(tmp_path, "baseline") if "mlflow.parentRunId" not in r.data.tags
    ]
    assert len(parents) == 1  # rank 1 recorded nothing of its own
