"""--warm-start and --pruner from the command line: the source study's best settings are the
new search's first trial, and both choices are recorded on the search's parent run; so is the
study file's FIRST_TRIAL, which trial 0 of a new study trains."""

import pytest

from tests.integration.helpers import launch, mlflow_runs, trial_runs

TINY = ("--backbone", "tiny", "--epochs", "1", "--trials", "1")


def test_a_search_warm_started_from_a_finished_study(tmp_path):
    first = launch(tmp_path, "--study", "baseline", *TINY)
    assert "trial 0 trains the study file's FIRST_TRIAL: lr=0.000413" in first.stdout
    done = launch(
        tmp_path, "--study", "lora", *TINY, "--warm-start", "baseline", "--pruner", "hyperband"
    )
    assert "warm start: the best settings of baseline queued first" in done.stdout
    assert "FIRST_TRIAL" not in done.stdout  # the warm start takes lora's FIRST_TRIAL's place
    [source] = trial_runs(tmp_path, "baseline")
    [trial] = trial_runs(tmp_path, "lora")
    assert float(source.data.params["lr"]) == 4.13e-4  # baseline's FIRST_TRIAL
    # lr: both spaces draw it, and baseline's draw is inside lora's range
    assert trial.data.params["lr"] == source.data.params["lr"]
    [parent] = [r for r in mlflow_runs(tmp_path, "lora") if r.info.run_name == "lora search"]
    assert parent.data.params["pruner"] == "hyperband"
    assert parent.data.params["warm_start"] == "baseline"
    assert parent.data.params["first_trial"] == "none"
    [first_parent] = [
        r for r in mlflow_runs(tmp_path, "baseline") if r.info.run_name == "baseline search"
    ]
    assert first_parent.data.params["first_trial"].startswith("lr=0.000413, weight_decay=")


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--warm-start", "nosuch"), "nosuch"),
        (("--final", "--pruner", "none"), "--pruner and --warm-start shape a search"),
    ],
)
def test_bad_search_flags_fail_before_any_trial(tmp_path, flags, message):
    done = launch(tmp_path, "--study", "lora", "--backbone", "tiny", *flags, ok=False)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
