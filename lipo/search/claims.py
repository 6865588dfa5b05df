"""Final seeds claimed through the study's own Optuna storage, so that two launchers on two
machines (two work folders, one PostgreSQL) never train the same seed.

Each seed has a small side study, ``<optuna study>:claims:final-<trial>-<control>-seed<S>``,
holding at most one live trial: WAITING while the seed is free, RUNNING while a launcher
holds it. Taking it is Optuna's own atomic step, the one that hands an enqueued trial to
exactly one worker: WAITING -> RUNNING (``set_trial_state_values`` returns False to every
other taker, on a journal file and on an RDB alike). Only one process ever enqueues the next
WAITING trial: the creator of the study (its name is unique), the holder when it lets go,
or the one launcher whose FAIL of a lapsed claim the storage accepted. The holder refreshes
a lease (``lipo.lease_until``, wall-clock seconds) while it trains; a claim whose lease ran
out, or whose worker is gone from this machine, is failed by the next launcher that wants the
seed. Whether a seed is finished is MLflow's answer, not the claim's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import optuna
from optuna.trial import TrialState

from lipo.runtime.liveness import gone_from_this_host, worker_id
from lipo.runtime.locks import store_lock
from lipo.search.storage import HEARTBEAT_S, local_store, storage

KEY = "lipo.claim"
LEASE = "lipo.lease_until"


class SeedClaims:
    """The claims of one Optuna study's final seeds. ``heartbeat``: seconds between lease
    refreshes; a claim lapses after two missed ones (as a search trial in an RDB does)."""

    def __init__(self, optuna_name: str, storage_url: str | None, heartbeat: int = HEARTBEAT_S):
        self.prefix, self.heartbeat = f"{optuna_name}:claims:", heartbeat
        # No heartbeat of Optuna's own: the lease below works on a journal file too.
        with store_lock(local_store(storage_url)):
            self.storage = storage(storage_url, heartbeat=None)

    def study(self, key: str) -> optuna.Study:
        """The seed's claim study; its creator (one launcher: the name is unique) queues the
        first claim. A launcher that looks between the two finds no claim to take and skips
        the seed, which its creator is about to train."""
        name = self.prefix + key
        try:
            study = optuna.create_study(study_name=name, storage=self.storage)
        except optuna.exceptions.DuplicatedStudyError:
            return optuna.load_study(study_name=name, storage=self.storage)
        self.queue(study, key)
        return study

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[bool]:
        """Hold the claim on ``key`` while the body runs: yields True; yields False at once
        when another launcher holds it."""
        taken = self.take(key)
        if taken is None:
            yield False
            return
        study, trial_id = taken
        state = TrialState.FAIL
        with self.lease(trial_id):
            try:
                yield True
                state = TrialState.COMPLETE
            finally:
                self.end(study, trial_id, state, key)

    def take(self, key: str) -> tuple[optuna.Study, int] | None:
        """(claim study, trial id) of the claim this process now holds; None if another
        launcher holds it."""
        study = self.study(key)
        self.recover(study, key)
        free = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        store = study._storage
        if not free or not store.set_trial_state_values(
            free[0]._trial_id, state=TrialState.RUNNING
        ):
            return None
        trial_id = free[0]._trial_id
        store.set_trial_user_attr(trial_id, "lipo.worker", worker_id())
        store.set_trial_user_attr(trial_id, LEASE, time.time() + 2 * self.heartbeat)
        return study, trial_id

    def holder(self, key: str) -> str | None:
        """The worker (host:pid:start) holding ``key``, if any."""
        held = self.study(key).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return held[0].user_attrs.get("lipo.worker", "") if held else None

    def recover(self, study: optuna.Study, key: str) -> None:
        """Fail a running claim whose holder is gone: its lease ran out (any machine), or its
        process is no longer running (this machine, at once)."""
        now = time.time()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = trial.user_attrs
            if attrs.get(LEASE, now) < now or gone_from_this_host(attrs.get("lipo.worker", "")):
                self.end(study, trial._trial_id, TrialState.FAIL, key)

    def end(self, study: optuna.Study, trial_id: int, state: TrialState, key: str) -> None:
        """End a claim and queue the next one, unless another launcher ended it first (the
        holder's lease lapsed): that launcher queued it."""
        try:
            study._storage.set_trial_state_values(
                trial_id, state=state, values=[0.0] if state == TrialState.COMPLETE else None
            )
        except optuna.exceptions.UpdateFinishedTrialError:
            return
        self.queue(study, key)

    @staticmethod
    def queue(study: optuna.Study, key: str) -> None:
        study.enqueue_trial({}, user_attrs={KEY: key}, skip_if_exists=False)

    @contextlib.contextmanager
    def lease(self, trial_id: int) -> Iterator[None]:
        """A thread that pushes the claim's lease forward every ``heartbeat`` seconds."""
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(self.heartbeat):
                try:
                    self.storage.set_trial_user_attr(
                        trial_id, LEASE, time.time() + 2 * self.heartbeat
                    )
                except optuna.exceptions.UpdateFinishedTrialError:
                    return

        thread = threading.Thread(target=refresh, name="lipo-claim-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
