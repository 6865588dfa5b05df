"""Counting and recovery on a real journal storage: exactly --trials trials however workers
interleave, and a trial whose worker process is gone is failed and queued again."""
import subprocess

import pytest
from optuna.trial import TrialState

from lipo import sweep


@pytest.fixture
def study(tmp_path):
    return sweep.open_study("s", str(tmp_path / "optuna.journal"), seed=0, startup=1)


def draw(trial) -> dict:
    return {"lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True)}


def test_a_worker_asking_past_the_total_gets_no_trial(study):
    # Two workers both counted 0 of 1 trials, then both asked: the later one must not run.
    first = sweep.ask(study, seed=0, startup=1, total=1)
    assert first is not None and sweep.ask(study, seed=0, startup=1, total=1) is None
    draw(first)
    sweep.tell(study, first, "COMPLETE", 1.0)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]  # the surplus one, closed
    assert sweep.trials_counted(study) == 1


def test_each_trial_number_draws_from_its_own_seed(tmp_path):
    values = []
    for name in ("a", "b"):
        one = sweep.open_study(name, str(tmp_path / f"{name}.journal"), seed=3, startup=5)
        if name == "b":  # a trial someone else asked first shifts nothing but the number
            sweep.tell(one, sweep.ask(one, 3, 5, 9), "FAIL")
        values.append(draw(sweep.ask(one, 3, 5, 9))["lr"])
    first = sweep.open_study("c", str(tmp_path / "c.journal"), seed=3, startup=5)
    sweep.tell(first, sweep.ask(first, 3, 5, 9), "FAIL")
    assert values[1] == draw(sweep.ask(first, 3, 5, 9))["lr"]  # trial 1: the same draw
    assert values[0] != values[1]  # trials 0 and 1: different draws


def test_trial_of_a_dead_worker_is_failed_and_retried_with_its_settings(study):
    trial = sweep.ask(study, seed=0, startup=1, total=2)
    params = draw(trial)
    worker = subprocess.Popen(["sleep", "30"])
    trial.set_user_attr("lipo.worker", sweep.worker_id(worker.pid))  # as if it ran the trial
    assert sweep.recover_stale(study) == []  # alive
    worker.kill()
    worker.wait()
    assert sweep.recover_stale(study)[0].number == 0
    assert sweep.recover_stale(study) == []  # once only
    retry = sweep.ask(study, seed=0, startup=1, total=2)
    assert retry.number == 1 and draw(retry) == params
    assert retry.user_attrs["lipo.origin"] == 0  # resumes trial 0's training state
    sweep.tell(study, retry, "COMPLETE", 1.0)
    assert sweep.trials_counted(study) == 1  # the lost attempt does not count


def test_live_worker_trial_is_left_alone(study):
    trial = sweep.ask(study, seed=0, startup=1, total=1)  # this process: alive
    draw(trial)
    assert sweep.recover_stale(study) == []
    assert study.get_trials()[0].state == TrialState.RUNNING


def k_only(trial) -> dict:
    return {"strategy.k": trial.suggest_categorical("strategy.k", [16, 32])}


def searching(trials: int):
    from types import SimpleNamespace
    return SimpleNamespace(trials=trials, base=SimpleNamespace(seed=0),
                           definition=SimpleNamespace(space=k_only, DEFAULTS={}))


def finish(study, trial):
    sweep.tell(study, trial, "COMPLETE", 1.0)


def test_settings_drawn_again_are_not_trained_again(study):
    from lipo.runner import next_trial
    seen = []
    for _ in range(2):
        trial, overrides = next_trial(searching(5), study, startup=1)
        seen.append(overrides["strategy.k"])
        finish(study, trial)
    assert sorted(seen) == [16, 32]  # the second draw differs from the first, whatever TPE drew
    redraws = [t for t in study.get_trials() if "duplicate_of" in t.user_attrs]
    assert all(t.state == TrialState.FAIL for t in redraws)
    assert sweep.trials_counted(study) == 2  # redraws are not counted
    # both values tried: the space is exhausted and the search ends short of its 5 trials
    assert next_trial(searching(5), study, startup=1) == (None, None)
    assert sweep.trials_counted(study) == 2


def test_a_queued_retry_runs_its_settings_again(study):
    from lipo.runner import next_trial
    trial, overrides = next_trial(searching(5), study, startup=1)
    finish(study, trial)
    study.enqueue_trial(trial.params, user_attrs={"lipo.origin": trial.number})
    again, same = next_trial(searching(5), study, startup=1)
    assert same == overrides and "duplicate_of" not in again.user_attrs
