"""Final-seed claims in the shared Optuna storage (``lipo.search.claims``): two launchers
(two ``SeedClaims`` on one storage, as on two machines) never hold the same seed; a claim
whose holder died is taken over, after its lease on another machine, at once on this one."""

import subprocess
import sys
import time

import pytest
from optuna.trial import TrialState

from lipo.runtime.liveness import worker_id
from lipo.search.claims import LEASE, SeedClaims

KEY = "final-3-strategy-seed0"
RUNNING, WAITING = TrialState.RUNNING, TrialState.WAITING


@pytest.fixture(params=["sqlite", "journal"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/optuna.db"
    return str(tmp_path / "optuna.journal")


def states(claims: SeedClaims, key: str = KEY) -> list[str]:
    return [t.state.name for t in claims.study(key).get_trials(deepcopy=False)]


def test_a_held_seed_is_skipped_by_the_other_launcher_and_free_after(store):
    first, second = SeedClaims("s", store, heartbeat=60), SeedClaims("s", store, heartbeat=60)
    with first.hold(KEY) as mine:
        assert mine
        with second.hold(KEY) as theirs:
            assert not theirs
        with second.hold("final-3-strategy-seed1") as other_seed:
            assert other_seed  # a claim is per seed
        assert second.holder(KEY) == worker_id()
    with second.hold(KEY) as theirs:  # released with the seed
        assert theirs
    # one live claim at a time: each one ended queues the next
    assert states(first) == ["COMPLETE", "COMPLETE", "WAITING"]


def test_a_seed_whose_training_raised_can_be_claimed_again(store):
    claims = SeedClaims("s", store)
    with pytest.raises(RuntimeError), claims.hold(KEY):
        raise RuntimeError("training failed")
    assert states(claims) == ["FAIL", "WAITING"]
    with claims.hold(KEY) as mine:
        assert mine


def test_a_claim_on_another_machine_is_taken_over_once_its_lease_lapses(store):
    dead = SeedClaims("s", store, heartbeat=1)
    study, trial_id = dead.take(KEY)  # taken, then never refreshed: its launcher died
    study._storage.set_trial_user_attr(trial_id, "lipo.worker", "elsewhere:42:7")
    other = SeedClaims("s", store, heartbeat=60)
    assert other.take(KEY) is None  # the lease (2 heartbeats) still runs
    time.sleep(2.2)
    assert other.take(KEY) is not None
    assert states(other) == ["FAIL", "RUNNING"]


def test_a_claim_of_a_dead_process_on_this_machine_is_taken_over_at_once(store):
    dead = SeedClaims("s", store, heartbeat=60)
    study, trial_id = dead.take(KEY)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = worker_id().split(":")[0]
    study._storage.set_trial_user_attr(trial_id, "lipo.worker", f"{host}:{gone.pid}:1")
    assert SeedClaims("s", store).take(KEY) is not None


def test_the_lease_is_pushed_forward_while_the_seed_trains(store):
    claims = SeedClaims("s", store, heartbeat=1)

    def lease() -> float:
        [held] = claims.study(KEY).get_trials(deepcopy=False, states=(RUNNING,))
        return held.user_attrs[LEASE]

    with claims.hold(KEY):
        first = lease()
        time.sleep(1.5)
        assert lease() > first
