"""Optuna trials in a lipo search: which count towards --trials, drawing the next one, ending
one, re-queueing one, recovering those whose worker died. ``TrialBook`` wraps these; nothing
outside this package sees the Optuna objects they take."""

from __future__ import annotations

import warnings
from typing import Any, Callable

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import TrialState

from lipo.runtime.liveness import gone_from_this_host, worker_id
from lipo.search.storage import random_sampler, retry_callback, sampler

STATES = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED, "FAIL": TrialState.FAIL}
TRIED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # settings known or underway


def retried_numbers(trials) -> set[int]:
    """Trials whose worker died and that were queued again (Optuna's retry history)."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def counted(trial: optuna.trial.FrozenTrial, retried: set[int] = frozenset()) -> bool:
    """Every trial counts towards --trials, except one re-queued (interrupted by the user,
    lost with its worker, or stopped by a full disk), one asked for beyond the total and a
    redraw of earlier settings (never trained)."""
    if trial.state == TrialState.WAITING:
        return False
    if trial.state != TrialState.FAIL:
        return True
    attrs = trial.user_attrs
    return not (
        attrs.get("interrupted")
        or attrs.get("surplus")
        or trial.number in retried
        or "duplicate_of" in attrs
    )


def trials_counted(study: optuna.Study) -> int:
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    return sum(counted(t, retried) for t in trials)


def duplicate_of(study: optuna.Study, trial: optuna.Trial, overrides: dict) -> int | None:
    """The number of an earlier trial (complete, pruned or running) with the same settings:
    with a small categorical space (the influence study's k alone) TPE draws values again,
    which would spend a trial re-training what is known. A queued retry is never one."""
    if study._storage.get_trial(trial._trial_id).system_attrs.get("fixed_params"):
        return None
    earlier = study.get_trials(deepcopy=False, states=TRIED)
    return next(
        (
            t.number
            for t in earlier
            if t.number != trial.number and t.user_attrs.get("overrides") == overrides
        ),
        None,
    )


def untried_params(
    study: optuna.Study,
    seed: int,
    startup: int,
    settings_of: Callable[[optuna.Trial], dict],
    redraws: int,
) -> dict | None:
    """Knob values whose settings no trial has tried (complete, pruned or running), drawn on
    a throwaway in-memory copy of the study, or None when ``redraws`` draws in a row repeated
    earlier settings. The first draw is the one TPE would make as the next trial; a repeat is
    redrawn at random (TPE, out of its start-up trials, picks the best category known so far
    again and again). Drawing on the copy keeps repeats out of the study: the dashboard shows
    no failed trial for them, and the count of --trials is untouched."""
    copy = optuna.create_study(directions=study.directions)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    copy.add_trials(trials)
    tried = [t.user_attrs.get("overrides") for t in trials if t.state in TRIED]
    for redraw in range(redraws):
        trial = copy.ask()
        copy.sampler = (
            random_sampler(seed, trial.number) if redraw else sampler(seed, trial.number, startup)
        )  # as ``ask`` seeds it
        if settings_of(trial) not in tried:
            return dict(trial.params)
        copy.tell(trial, state=TrialState.FAIL)
    return None


def has_queued(study: optuna.Study) -> bool:
    """A trial waits in the queue (a retry, a warm start): the next ask runs its settings."""
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def ask(
    study: optuna.Study,
    seed: int,
    startup: int,
    total: int,
    at_random: bool = False,
    fixed: dict | None = None,
) -> optuna.Trial | None:
    """The next trial, or None when other workers took the last places between this
    worker's count and its ask (the surplus trial is closed, not counted, never run).
    ``at_random``: drawn uniformly, seeded the same way (a redraw: TPE, out of its start-up
    trials, picks the best category known so far again and again). ``fixed``: the knob
    values to draw (``untried_params``); a queued trial keeps its own."""
    trial = study.ask()
    origin = trial.user_attrs.get("lipo.origin", trial.number)  # set on re-queued trials
    trial.set_user_attr("lipo.origin", origin)
    trial.set_user_attr("lipo.worker", worker_id())
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    ahead = sum(counted(t, retried) for t in trials if t.number < trial.number)
    if ahead >= total:
        frozen = study._storage.get_trial(trial._trial_id)
        tell(study, trial, "FAIL", surplus=True)
        fixed = frozen.params or frozen.system_attrs.get("fixed_params")
        if fixed:  # a re-queued trial must not be lost to the race
            study.enqueue_trial(fixed, user_attrs={"lipo.origin": origin})
        return None
    study.sampler = (
        random_sampler(seed, trial.number) if at_random else sampler(seed, trial.number, startup)
    )  # before suggest_*
    if fixed:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.sampler = optuna.samplers.PartialFixedSampler(fixed, study.sampler)
    return trial


def tell(
    study: optuna.Study,
    trial: optuna.Trial,
    state: str,
    value: float | list[float] | None = None,
    **attrs: Any,
) -> None:
    for key, item in attrs.items():
        trial.set_user_attr(key, item)
    study.tell(trial, value if state == "COMPLETE" else None, state=STATES[state])


def requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """Run the same settings again on resume (after Ctrl-C or a full disk); the new trial
    keeps the origin, so it resumes the saved training state of the first attempt."""
    origin = trial.user_attrs.get("lipo.origin", trial.number)
    study.enqueue_trial(
        trial.params, user_attrs={"requeued_from": trial.number, "lipo.origin": origin}
    )


def recover_stale(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Fail the running trials whose worker died (on this machine: its process is gone;
    anywhere, with an RDB storage: no heartbeat for the grace period) and queue each again
    with the same settings. Returns the trials this call failed."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    store, failed = study._storage, []
    retry = retry_callback()
    for trial in running:
        if not gone_from_this_host(trial.user_attrs.get("lipo.worker", "")):
            continue
        try:
            if store.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial.number)
                retry(study, store.get_trial(trial._trial_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker got there first
    if is_heartbeat_enabled(store):
        ids = {t._trial_id for t in running}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # retried by the storage's callback
        failed += [
            t.number
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if t._trial_id in ids
        ]
    return [t for t in study.get_trials(deepcopy=False) if t.number in set(failed)]


def heartbeat(study: optuna.Study, trial: optuna.Trial):
    """Context manager: a thread records the trial's heartbeat (RDB storages only)."""
    return get_heartbeat_thread(trial._trial_id, study._storage)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The completed trial with the lowest validation MSE (the first objective); with two
    objectives that trial is always on the Pareto front."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min(done, key=lambda t: t.values[0]) if done else None


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return sorted(study.best_trials, key=lambda t: t.values[0]) if study.best_trials else []
