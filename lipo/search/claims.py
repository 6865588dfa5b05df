"""Final seeds claimed through the study's own Optuna storage, so that two launchers on two
machines (two work folders, one PostgreSQL) never train the same seed.

A claim is a trial of a side study ``<optuna study>:claims`` whose user attribute
``lipo.claim`` names the seed (``final-<trial>-<control>-seed<S>``). Taking it is Optuna's own
atomic step, the one that hands an enqueued trial to exactly one worker: WAITING -> RUNNING
(``set_trial_state_values`` returns False to every other taker, on a journal file and on an
RDB alike). The claimant refreshes a lease (``lipo.lease_until``, wall-clock seconds) while it
trains; a claim whose lease ran out, or whose worker is gone from this machine, is failed by
the next launcher that wants the seed, which then claims it anew. The claim ends (COMPLETE, or
FAIL when training raised) with the seed: whether a seed is finished is MLflow's answer.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import optuna
from optuna.trial import TrialState

from lipo.locks import store_lock
from lipo.search.storage import HEARTBEAT_S, local_store, storage
from lipo.workers import gone_from_this_host, worker_id

KEY = "lipo.claim"
LEASE = "lipo.lease_until"
LIVE = (TrialState.WAITING, TrialState.RUNNING)


class SeedClaims:
    """The claims of one Optuna study's final seeds. ``heartbeat``: seconds between lease
    refreshes; a claim lapses after two missed ones (as a search trial in an RDB does)."""

    def __init__(self, optuna_name: str, storage_url: str | None, heartbeat: int = HEARTBEAT_S):
        self.heartbeat = heartbeat
        # The claims study needs no heartbeat of Optuna's own: the lease below works on a
        # journal file too.
        with store_lock(local_store(storage_url)):
            self.study = optuna.create_study(study_name=f"{optuna_name}:claims",
                                             storage=storage(storage_url, heartbeat=None),
                                             load_if_exists=True)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[bool]:
        """Hold the claim on ``key`` while the body runs: yields True; yields False at once
        when another launcher holds it."""
        trial_id = self.take(key)
        if trial_id is None:
            yield False
            return
        state = TrialState.FAIL
        with self.lease(trial_id):
            try:
                yield True
                state = TrialState.COMPLETE
            finally:
                self.end(trial_id, state)

    def take(self, key: str) -> int | None:
        """The id of the claim trial this process now holds, or None if another holds it."""
        self.recover(key)
        if not self.live(key):
            self.study.enqueue_trial({}, user_attrs={KEY: key}, skip_if_exists=False)
        # Every launcher turns to the oldest live claim: of two enqueued at the same moment,
        # both pick the same one, and Optuna hands it to one of them.
        oldest = min(self.live(key), key=lambda t: t.number)
        store = self.study._storage
        if not store.set_trial_state_values(oldest._trial_id, state=TrialState.RUNNING):
            return None
        store.set_trial_user_attr(oldest._trial_id, "lipo.worker", worker_id())
        store.set_trial_user_attr(oldest._trial_id, LEASE, time.time() + 2 * self.heartbeat)
        return oldest._trial_id

    def live(self, key: str) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self.study.get_trials(deepcopy=False, states=LIVE)
                if t.user_attrs.get(KEY) == key]

    def holder(self, key: str) -> str | None:
        """The worker (host:pid:start) holding ``key``, if any."""
        held = [t for t in self.live(key) if t.state == TrialState.RUNNING]
        return held[0].user_attrs.get("lipo.worker", "") if held else None

    def recover(self, key: str) -> None:
        """Fail the running claims on ``key`` whose holder is gone: its lease ran out (any
        machine), or its process is no longer running (this machine, at once)."""
        now = time.time()
        for trial in self.live(key):
            attrs = trial.user_attrs
            lapsed = attrs.get(LEASE, now) < now
            if trial.state == TrialState.RUNNING and (
                    lapsed or gone_from_this_host(attrs.get("lipo.worker", ""))):
                self.end(trial._trial_id, TrialState.FAIL)

    def end(self, trial_id: int, state: TrialState) -> None:
        try:
            self.study._storage.set_trial_state_values(
                trial_id, state=state, values=[0.0] if state == TrialState.COMPLETE else None)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # failed by another launcher after this one's lease lapsed

    @contextlib.contextmanager
    def lease(self, trial_id: int) -> Iterator[None]:
        """A thread that pushes the claim's lease forward every ``heartbeat`` seconds."""
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(self.heartbeat):
                try:
                    self.study._storage.set_trial_user_attr(
                        trial_id, LEASE, time.time() + 2 * self.heartbeat)
                except optuna.exceptions.UpdateFinishedTrialError:
                    return
        thread = threading.Thread(target=refresh, name="lipo-claim-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
