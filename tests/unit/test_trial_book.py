"""Counting and recovery on a real journal storage: exactly --trials trials however workers
interleave, and a trial whose worker process is gone is failed and queued again."""

import subprocess
from pathlib import Path

import pytest
from optuna.trial import TrialState

from lipo.runtime.liveness import worker_id
from lipo.search import trials as optuna_trials
from lipo.search.book import TrialBook
from lipo.search.storage import open_study


@pytest.fixture
def study(tmp_path):
    return open_study("s", str(tmp_path / "optuna.journal"), seed=0, startup=1)


def draw(trial) -> dict:
    return {"lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True)}


def test_a_worker_asking_past_the_total_gets_no_trial(study):
    # Two workers both counted 0 of 1 trials, then both asked: the later one must not run.
    first = optuna_trials.ask(study, seed=0, startup=1, total=1)
    assert first is not None and optuna_trials.ask(study, seed=0, startup=1, total=1) is None
    draw(first)
    optuna_trials.tell(study, first, "COMPLETE", 1.0)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]  # the surplus one, closed
    assert optuna_trials.trials_counted(study) == 1


def test_each_trial_number_draws_from_its_own_seed(tmp_path):
    values = []
    for name in ("a", "b"):
        one = open_study(name, str(tmp_path / f"{name}.journal"), seed=3, startup=5)
        if name == "b":  # a trial someone else asked first shifts nothing but the number
            optuna_trials.tell(one, optuna_trials.ask(one, 3, 5, 9), "FAIL")
        values.append(draw(optuna_trials.ask(one, 3, 5, 9))["lr"])
    first = open_study("c", str(tmp_path / "c.journal"), seed=3, startup=5)
    optuna_trials.tell(first, optuna_trials.ask(first, 3, 5, 9), "FAIL")
    assert values[1] == draw(optuna_trials.ask(first, 3, 5, 9))["lr"]  # trial 1: the same draw
    assert values[0] != values[1]  # trials 0 and 1: different draws


def test_trial_of_a_dead_worker_is_failed_and_retried_with_its_settings(study):
    trial = optuna_trials.ask(study, seed=0, startup=1, total=2)
    params = draw(trial)
    worker = subprocess.Popen(["sleep", "30"])
    trial.set_user_attr("lipo.worker", worker_id(worker.pid))  # as if it ran the trial
    assert optuna_trials.recover_stale(study) == []  # alive
    worker.kill()
    worker.wait()
    assert optuna_trials.recover_stale(study)[0].number == 0
    assert optuna_trials.recover_stale(study) == []  # once only
    retry = optuna_trials.ask(study, seed=0, startup=1, total=2)
    assert retry.number == 1 and draw(retry) == params
    assert retry.user_attrs["lipo.origin"] == 0  # resumes trial 0's training state
    optuna_trials.tell(study, retry, "COMPLETE", 1.0)
    assert optuna_trials.trials_counted(study) == 1  # the lost attempt does not count


def test_live_worker_trial_is_left_alone(study):
    trial = optuna_trials.ask(study, seed=0, startup=1, total=1)  # this process: alive
    draw(trial)
    assert optuna_trials.recover_stale(study) == []
    assert study.get_trials()[0].state == TrialState.RUNNING


def k_only(trial) -> dict:
    return {"strategy.k": trial.suggest_categorical("strategy.k", [16, 32])}


def finish(book, record):
    book.complete(record, [1.0])


def test_settings_drawn_again_are_not_trained_again(study):
    book = TrialBook(study)
    seen = []
    for _ in range(2):
        record = book.draw(k_only, {}, total=5)
        seen.append(record.settings["strategy.k"])
        finish(book, record)
    assert sorted(seen) == [16, 32]  # the second draw differs from the first, whatever TPE drew
    # redraws happen before the trial is asked for: none is in the study (the dashboard shows
    # no failed trial for them), and none counts
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2
    assert book.counted() == 2
    # both values tried: the space is exhausted and the search ends short of its 5 trials
    assert book.draw(k_only, {}, total=5) is None
    assert book.counted() == 2 and len(study.get_trials()) == 2


def test_a_redraw_is_the_next_trials_own_draw_when_it_is_new(tmp_path):
    """Drawing on the study's copy first changes nothing when the draw is new: trial n keeps
    the settings its seed gives it (as before, and as on another worker)."""
    drawn = []
    for name in ("a", "b"):
        one = open_study(name, str(tmp_path / f"{name}.journal"), seed=3, startup=1)
        book = TrialBook(one, seed=3, startup=1)
        for _ in range(3):
            record = book.draw(draw, {}, total=5) if name == "a" else record_of_plain_ask(one)
            finish(book, record) if name == "a" else None
        drawn.append([t.params["lr"] for t in one.get_trials()])
    assert drawn[0] == drawn[1]


def record_of_plain_ask(study):
    trial = optuna_trials.ask(study, seed=3, startup=1, total=5)
    draw(trial)
    optuna_trials.tell(study, trial, "COMPLETE", 1.0)


def test_settings_another_worker_started_meanwhile_are_closed_uncounted(study):
    """Between this worker's draw and its ask, another worker starts the same settings: the
    trial is closed as a duplicate (uncounted) and the draw made again."""
    book, rival = TrialBook(study), []

    def racing(trial):
        settings = k_only(trial)
        if not rival:  # the first draw, made on the study's copy
            other = optuna_trials.ask(study, seed=9, startup=1, total=5, fixed=settings)
            other.set_user_attr("overrides", k_only(other))
            rival.append(other)
        return settings

    record = book.draw(racing, {}, total=5)
    states = {t.number: (t.state, t.user_attrs.get("duplicate_of")) for t in study.get_trials()}
    assert states[1] == (TrialState.FAIL, 0)  # this worker's first ask, the rival's settings
    assert record.number == 2 and record.settings != rival[0].user_attrs["overrides"]
    assert book.counted() == 2  # the rival's running trial and this one


def test_the_dashboard_names_the_objectives(tmp_path):
    path = str(tmp_path / "optuna.journal")
    assert open_study("one", path, seed=0, startup=1).metric_names == ["val/mse"]
    two = open_study("two", path, seed=0, startup=1, objectives=("mse", "params"))
    assert two.metric_names == ["val/mse", "trainable_params"]
    open_study("two", path, seed=0, startup=1, objectives=("mse", "params"))
    # a resumed study is not renamed again: one journal line per study
    assert Path(path).read_text().count("metric_names") == 2


def test_a_queued_retry_runs_its_settings_again(study):
    book = TrialBook(study)
    record = book.draw(k_only, {}, total=5)
    book.interrupt(record)  # Ctrl-C: queued again with the same settings
    again = book.draw(k_only, {}, total=5)
    assert again.settings == record.settings and again.origin == record.number
    assert "duplicate_of" not in study.get_trials()[again.number].user_attrs
    assert book.counted() == 1  # the interrupted attempt does not count


def test_the_book_hands_out_plain_records_and_takes_back_their_ends(study):
    book = TrialBook(study)
    first = book.draw(k_only, {"patience": 3}, total=3)
    assert first.settings["patience"] == 3 and set(first.params) == {"strategy.k"}
    book.link_run(first, "run-1")
    assert book.report(first, 1, 0.9) is False  # the median pruner waits for epoch 2
    book.complete(first, [0.9])
    second = book.draw(k_only, {}, total=3)
    book.prune(second)
    best = book.best()
    assert (best.number, best.values, best.run_id, best.state) == (0, (0.9,), "run-1", "COMPLETE")
    assert book.states() == ["COMPLETE", "PRUNED"] and book.counted() == 2
