"""Where Optuna studies live and how they are opened: a journal file by default, an RDB URL
with heartbeats for workers on several machines; the sampler and the pruner."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from lipo.runtime.locks import sqlite_file, store_lock

optuna.logging.set_verbosity(optuna.logging.WARNING)

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
HEARTBEAT_S = 60  # a worker on another machine is declared lost after 2 silent intervals
MAX_RETRY = 3  # a trial whose worker dies is re-run with the same settings at most this often
# The objectives under the names MLflow and the report use: optuna-dashboard shows them.
METRIC_NAMES = {"mse": "val/mse", "params": "trainable_params"}


def storage(url: str | None, heartbeat: int | None = HEARTBEAT_S):
    """A journal file by default (safe for several workers on one machine); RDB URLs
    (postgresql://, mysql://, sqlite://) with a heartbeat per running trial, so that a trial
    whose worker died on any machine is failed and retried by the next worker that looks.
    ``heartbeat=None``: none (a side study that keeps its own lease: ``claims``)."""
    if url and "://" in url and heartbeat is None:
        return RDBStorage(url)
    if url and "://" in url:
        return RDBStorage(
            url,
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            heartbeat_stale_trial_callback=retry_callback(),
        )
    path = Path(url) if url else DEFAULT_STORAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def local_store(url: str | None) -> Path | None:
    """The file of a storage on this disk (a journal, a SQLite database), else None."""
    if url and "://" in url:
        return sqlite_file(url)
    return Path(url) if url else DEFAULT_STORAGE


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
        return optuna.pruners.HyperbandPruner(
            min_resource=2, max_resource=max(epochs, 2), reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def open_study(
    name: str,
    storage_url: str | None,
    seed: int,
    startup: int,
    objectives: tuple[str, ...] = ("mse",),
    heartbeat: int = HEARTBEAT_S,
    pruner: str = "median",
    epochs: int = 6,
    first: dict | None = None,
) -> optuna.Study:
    """``first``: settings queued as trial 0 of a new study (a study file's FIRST_TRIAL),
    under the same lock as the creation, so that launches started together queue it once."""
    # Optuna prunes single-objective studies only.
    pruner = make_pruner(pruner if len(objectives) == 1 else "none", startup, epochs)
    with store_lock(local_store(storage_url)):  # launches started together: one creates it
        study = optuna.create_study(
            study_name=name,
            storage=storage(storage_url, heartbeat),
            directions=["minimize"] * len(objectives),
            load_if_exists=True,
            pruner=pruner,
        )
        name_metrics(study, objectives)
        if first and not study.get_trials(deepcopy=False):
            study.enqueue_trial(first, user_attrs={"lipo.first_trial": True})
    study.sampler = sampler(seed, 0, startup)  # re-seeded per trial by ``ask``
    return study


def name_metrics(study: optuna.Study, objectives: tuple[str, ...]) -> None:
    """Once per study (each write is a journal line): later launches find the names set."""
    names = [METRIC_NAMES[o] for o in objectives]
    if study.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


def sampler(seed: int, number: int, startup: int) -> optuna.samplers.BaseSampler:
    """Trial n draws from seed * 10000 + n, however many workers share the study and
    whichever of them asks: parallel workers never draw the same settings, and a resumed
    study never redraws its first trials' settings. constant_liar: TPE treats running
    trials as bad, so that parallel workers spread out."""
    return optuna.samplers.TPESampler(
        seed=seed * 10_000 + number, n_startup_trials=startup, constant_liar=True
    )


def random_sampler(seed: int, number: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed * 10_000 + number)


def load_existing(name: str, storage_url: str | None) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage(storage_url))
