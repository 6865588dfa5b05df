"""Optuna, and the only module that imports it: one study per strategy, resumable.

Under torchrun / accelerate launch, rank 0 alone asks the study, broadcasts the trial's
settings, reports each epoch and broadcasts the prune decision; every rank trains.
"""
from __future__ import annotations

import logging
import os
import socket
import warnings
from pathlib import Path
from typing import Any, Callable

import optuna
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from lipo.errors import ConfigError
from lipo.locks import sqlite_file, store_lock

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
TrialPruned = optuna.TrialPruned


HEARTBEAT_S = 60  # a worker on another machine is declared lost after 2 silent intervals
MAX_RETRY = 3  # a trial whose worker dies is re-run with the same settings at most this often


def storage(url: str | None, heartbeat: int = HEARTBEAT_S):
    """A journal file by default (safe for several workers on one machine); RDB URLs
    (postgresql://, mysql://, sqlite://) with a heartbeat per running trial, so that a trial
    whose worker died on any machine is failed and retried by the next worker that looks."""
    if url and "://" in url:
        return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                          heartbeat_stale_trial_callback=retry_callback())
    path = Path(url) if url else DEFAULT_STORAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def local_store(url: str | None) -> Path | None:
    """The file of a storage on this disk (a journal, a SQLite database), else None."""
    if url and "://" in url:
        return sqlite_file(url)
    return Path(url) if url else DEFAULT_STORAGE


OBJECTIVES = ("mse", "params")  # validation MSE; trainable parameters


def retry_callback() -> RetryHeartbeatStaleTrialCallback:
    """Queues a lost trial again with its settings (Optuna calls it experimental)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def make_pruner(name: str, startup: int, epochs: int) -> optuna.pruners.BasePruner:
    """Never on the first epoch: one epoch says little about where a trial ends up.
    hyperband: successive halving from 2 epochs up to the study's maximum, keeping a third
    at each rung, over several brackets of different aggressiveness."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2, max_resource=max(epochs, 2),
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


def open_study(name: str, storage_url: str | None, seed: int, startup: int,
               objectives: tuple[str, ...] = ("mse",),
               heartbeat: int = HEARTBEAT_S, pruner: str = "median",
               epochs: int = 6) -> optuna.Study:
    # Optuna prunes single-objective studies only.
    pruner = make_pruner(pruner if len(objectives) == 1 else "none", startup, epochs)
    with store_lock(local_store(storage_url)):  # launches started together: one creates it
        study = optuna.create_study(study_name=name, storage=storage(storage_url, heartbeat),
                                    directions=["minimize"] * len(objectives),
                                    load_if_exists=True, pruner=pruner)
    study.sampler = sampler(seed, 0, startup)  # re-seeded per trial by ``ask``
    return study


def sampler(seed: int, number: int, startup: int) -> optuna.samplers.BaseSampler:
    """Trial n draws from seed * 10000 + n, however many workers share the study and
    whichever of them asks: parallel workers never draw the same settings, and a resumed
    study never redraws its first trials' settings. constant_liar: TPE treats running
    trials as bad, so that parallel workers spread out."""
    return optuna.samplers.TPESampler(seed=seed * 10_000 + number, n_startup_trials=startup,
                                      constant_liar=True)


def load_existing(name: str, storage_url: str | None) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage(storage_url))


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
    return not (attrs.get("interrupted") or attrs.get("surplus") or trial.number in retried
                or "duplicate_of" in attrs)


def duplicate_of(study: optuna.Study, trial: optuna.Trial, overrides: dict) -> int | None:
    """The number of an earlier trial (complete, pruned or running) with the same settings:
    with a small categorical space (the influence study's k alone) TPE draws values again,
    which would spend a trial re-training what is known. A queued retry is never one."""
    if study._storage.get_trial(trial._trial_id).system_attrs.get("fixed_params"):
        return None
    earlier = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                       TrialState.RUNNING))
    return next((t.number for t in earlier if t.number != trial.number
                 and t.user_attrs.get("overrides") == overrides), None)


def trials_counted(study: optuna.Study) -> int:
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    return sum(counted(t, retried) for t in trials)


def worker_id(pid: int | None = None) -> str:
    """host:pid:start, the start time telling a live process from a later one with its pid."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{process_start(pid)}"


def process_start(pid: int) -> str:
    try:  # field 22 of /proc/PID/stat, after the parenthesised command name
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def died_here(trial: optuna.trial.FrozenTrial) -> bool:
    """The trial's worker ran on this machine and is gone: no need to wait for heartbeats."""
    host, _, rest = trial.user_attrs.get("lipo.worker", "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return worker_id(int(pid)) != trial.user_attrs["lipo.worker"]


def recover_stale(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Fail the running trials whose worker died (on this machine: its process is gone;
    anywhere, with an RDB storage: no heartbeat for the grace period) and queue each again
    with the same settings. Returns the trials this call failed."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    store, failed = study._storage, []
    retry = retry_callback()
    for trial in (t for t in running if died_here(t)):
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
        failed += [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                   if t._trial_id in ids]
    return [t for t in study.get_trials(deepcopy=False) if t.number in set(failed)]


def ask(study: optuna.Study, seed: int, startup: int, total: int,
        at_random: bool = False) -> optuna.Trial | None:
    """The next trial, or None when other workers took the last places between this
    worker's count and its ask (the surplus trial is closed, not counted, never run).
    ``at_random``: drawn uniformly, seeded the same way (a redraw: TPE, out of its start-up
    trials, picks the best category known so far again and again)."""
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
    study.sampler = (optuna.samplers.RandomSampler(seed=seed * 10_000 + trial.number)
                     if at_random else sampler(seed, trial.number, startup))  # before suggest_*
    return trial


def heartbeat(study: optuna.Study, trial: optuna.Trial):
    """Context manager: a thread records the trial's heartbeat (RDB storages only)."""
    return get_heartbeat_thread(trial._trial_id, study._storage)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The completed trial with the lowest validation MSE (the first objective); with two
    objectives that trial is always on the Pareto front."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min(done, key=lambda t: t.values[0]) if done else None


def warm_start(study: optuna.Study, source_name: str, storage_url: str | None,
               space: Callable[[Any], dict], source: str) -> dict:
    """Queue the best settings of the finished study ``source_name`` as this study's next
    trial, once: only the knobs this study's space also has, with values inside its ranges.
    Returns the settings queued ({} when an earlier run of this study queued them)."""
    if any(t.user_attrs.get("lipo.warm_start") == source
           for t in study.get_trials(deepcopy=False)):
        return {}
    try:
        best = best_trial(load_existing(source_name, storage_url))
    except KeyError:
        best = None
    if best is None:
        raise ConfigError(f"--warm-start {source}: no completed trial in Optuna study "
                          f"{source_name} (same backbone, split and data): run that study first")
    knobs = space_of(space)
    params = {k: v for k, v in best.params.items() if k in knobs and knobs[k](v)}
    if not params:
        raise ConfigError(f"--warm-start {source}: none of its best settings "
                          f"({', '.join(best.params)}) is a knob of this study "
                          f"({', '.join(knobs)})")
    study.enqueue_trial(params, user_attrs={"lipo.warm_start": source})
    return params


class SpaceProbe:
    """Stands in for an Optuna trial to learn a study's knobs: each suggest_* call records
    which values the knob accepts and returns its first or lowest one."""

    def __init__(self):
        self.accepts: dict[str, Callable[[Any], bool]] = {}

    def suggest_categorical(self, name: str, choices):
        self.accepts[name] = lambda v, choices=tuple(choices): v in choices
        return choices[0]

    def suggest_float(self, name: str, low: float, high: float, **_):
        self.accepts[name] = lambda v: isinstance(v, (int, float)) and low <= v <= high
        return low

    def suggest_int(self, name: str, low: int, high: int, **_):
        self.accepts[name] = lambda v: isinstance(v, int) and low <= v <= high
        return low


def space_of(space: Callable[[Any], dict]) -> dict[str, Callable[[Any], bool]]:
    probe = SpaceProbe()
    space(probe)
    return probe.accepts


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return sorted(study.best_trials, key=lambda t: t.values[0]) if study.best_trials else []


def tell(study: optuna.Study, trial: optuna.Trial, state: str,
         value: float | list[float] | None = None, **attrs: Any) -> None:
    for key, item in attrs.items():
        trial.set_user_attr(key, item)
    states = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED,
              "FAIL": TrialState.FAIL}
    study.tell(trial, value if state == "COMPLETE" else None, state=states[state])


def requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """Run the same settings again on resume (after Ctrl-C or a full disk); the new trial
    keeps the origin, so it resumes the saved training state of the first attempt."""
    origin = trial.user_attrs.get("lipo.origin", trial.number)
    study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number,
                                                 "lipo.origin": origin})


def broadcast(accelerator: Accelerator, value: Any) -> Any:
    """rank 0's ``value`` on every rank (a no-op in one process)."""
    if accelerator.num_processes == 1:
        return value
    return broadcast_object_list([value], from_process=0)[0]


class EpochReporter:
    """Per-epoch hook: rank 0 logs and asks the pruner, every rank learns the decision."""

    def __init__(self, accelerator: Accelerator, trial: optuna.Trial | None, log,
                 prune: bool = True):
        """``log(metrics, step)``: rank 0's MLflow logger (None on other ranks)."""
        self.accelerator, self.trial, self.log, self.prune = accelerator, trial, log, prune

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        stop = False
        if self.accelerator.is_main_process:
            self.log(metrics, epoch)
            if self.trial is not None and self.prune:
                self.trial.report(metrics["val/mse"], epoch)
                stop = self.trial.should_prune()
        if broadcast(self.accelerator, stop):
            raise TrialPruned(f"pruned after epoch {epoch}")


def param_importances(observations: list[tuple[dict, float]]) -> dict[str, float]:
    """fANOVA importance of each knob for one study, rebuilt from what MLflow recorded of its
    completed trials: (params, best val/mse) pairs. Numbers become a float range over the
    values seen (log-scaled when they span more than a decade), anything else a category;
    knobs that never varied are left out. Empty with fewer than 3 trials."""
    distributions = observed_distributions([params for params, _ in observations])
    if len(observations) < 3 or not distributions:
        return {}
    study = optuna.create_study()
    for params, value in observations:
        values = {k: as_value(params[k], d) for k, d in distributions.items()}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=distributions,
                                                  value=value))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)  # a seeded random forest
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {k: float(v) for k, v in found.items()}


def as_value(text, distribution):
    if isinstance(distribution, optuna.distributions.FloatDistribution):
        return float(text)
    return str(text)


def observed_distributions(records: list[dict]) -> dict:
    found = {}
    for key in set().union(*records) if records else ():
        if any(key not in r for r in records):
            continue
        seen = sorted({str(r[key]) for r in records})
        if len(seen) < 2:
            continue
        try:
            low, high = min(map(float, seen)), max(map(float, seen))
            found[key] = optuna.distributions.FloatDistribution(
                low, high, log=low > 0 and high / low > 10)
        except ValueError:
            found[key] = optuna.distributions.CategoricalDistribution(seen)
    return found
