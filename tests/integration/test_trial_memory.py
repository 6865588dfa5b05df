"""One invocation, several trials: each trial's model is gone before the next one starts
(Accelerate keeps everything ``prepare`` returned), and the run records its precision."""

import gc
import weakref

import pytest
import torch
from accelerate.state import AcceleratorState

from lipo.cli import main
from lipo.training import trial_run as experiment
from tests.conftest import DATA_DIR
from tests.integration.helpers import mlflow_runs

pytestmark = pytest.mark.slow


@pytest.fixture
def fresh_accelerate():
    """Accelerate's state is per process: a bf16 Accelerator would make every later one in
    this test process bf16 too."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def live_parameters() -> int:
    gc.collect()
    return sum(o.numel() for o in gc.get_objects() if isinstance(o, torch.nn.Parameter))


@pytest.fixture
def trial_models(monkeypatch):
    """At each model's construction: how many earlier models are still alive, and how many
    parameter values are (a weak reference keeps nothing alive)."""
    made, seen = [], []
    build = experiment.TrialRun.new_model

    def new_model(self, *args, **kwargs):
        params = live_parameters()  # collects garbage first: only what is referenced counts
        seen.append((sum(ref() is not None for ref in made), params))
        model = build(self, *args, **kwargs)
        made.append(weakref.ref(model))
        return model

    monkeypatch.setattr(experiment.TrialRun, "new_model", new_model)
    return seen


def stores(folder) -> list[str]:
    """An absolute tracking URI: MLflow caches its store per URI in a process, so a relative
    one would write a later test's runs into the first test's database."""
    return [
        "--data",
        str(small_table(folder)),
        "--tracking-uri",
        f"sqlite:///{folder}/mlruns/mlflow.db",
    ]


def small_table(folder):
    """The first 400 molecules: what is measured is the memory between trials, not the fit."""
    path = folder / "small.csv"
    path.write_text(
        "".join((DATA_DIR / "lipophilicity.csv").read_text().splitlines(keepends=True)[:401])
    )
    return path


def test_trials_free_their_models_and_record_precision(
    tmp_path, monkeypatch, data_dir, fresh_accelerate, trial_models
):
    monkeypatch.chdir(tmp_path)
    common = [
        "--study",
        "baseline",
        "--backbone",
        "tiny",
        "--epochs",
        "1",
        *stores(tmp_path),
        "--precision",
        "bf16",
    ]  # bf16 autocast runs on a CPU too
    assert main([*common, "--trials", "3"]) == 0
    assert main([*common, "--final", "--seeds", "0,1"]) == 0
    assert len(trial_models) == 7  # 3 trials, 2 final seeds, their 2 refits
    # Before the fix the earlier trials' models stayed alive: 0, 1, 2 of them (then the
    # final phase's own seed 0), and the live parameters grew by one model per trial.
    assert [alive for alive, _ in trial_models] == [0] * 7
    params = [count for _, count in trial_models]
    assert params[2] <= params[1] and params[4] <= params[3] and params[6] <= params[5]
    runs = mlflow_runs(tmp_path, "baseline")
    assert len(runs) == 3 + 1 + 2 + 2 + 1  # trials, search parent, seeds, refits, final parent
    assert {r.data.tags.get("lipo.precision") for r in runs} == {"bf16"}


def test_default_precision_on_cpu_is_fp32(tmp_path, monkeypatch, data_dir, fresh_accelerate):
    if torch.cuda.is_available():
        pytest.skip("the default is bf16 on a GPU that has it")
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "--study",
                "baseline",
                "--backbone",
                "tiny",
                "--epochs",
                "1",
                "--trials",
                "1",
                *stores(tmp_path),
            ]
        )
        == 0
    )
    runs = mlflow_runs(tmp_path, "baseline")
    assert len(runs) == 2 and {r.data.tags["lipo.precision"] for r in runs} == {"fp32"}
