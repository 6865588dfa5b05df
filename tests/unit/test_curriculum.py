import numpy as np
import pytest
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.errors import ConfigError
from lipo.strategies.curriculum import competence, difficulty, schedule

POSITIONS = np.arange(100, 200)
LEVEL = np.arange(100, dtype=float)  # position 100 + i has difficulty i


@pytest.mark.parametrize("pacing", ["linear", "root", "step"])
def test_pool_grows_easiest_first_to_everything(pacing):
    pools = schedule(POSITIONS, LEVEL, 10, {"pacing": pacing, "frac": 0.5, "start": 0.2})
    sizes = [len(p) for p in pools]
    assert sizes == sorted(sizes) and sizes[0] == 20
    assert sizes[3] < 100 and sizes[4:] == [100] * 6  # full from epoch frac * epochs = 5 on
    for pool in pools:  # always a prefix of the easiest molecules
        assert sorted(pool.tolist()) == list(range(100, 100 + len(pool)))


def test_the_control_trains_on_every_molecule_from_the_first_epoch():
    pools = schedule(POSITIONS, LEVEL, 4, {"pacing": "none", "frac": 0.5, "start": 0.2})
    assert [sorted(p.tolist()) for p in pools] == [POSITIONS.tolist()] * 4


def test_linear_competence_from_start_to_the_full_set():
    pools = schedule(POSITIONS, LEVEL, 10, {"pacing": "linear", "frac": 1.0, "start": 0.1})
    # epoch e: 10 + 90 (e - 1) / 9 molecules
    assert [len(p) for p in pools] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def test_skewed_difficulty_is_paced_in_quantiles_not_values():
    # one very hard molecule: a threshold linear in difficulty admitted 99% at once
    level = np.r_[np.ones(99), 1000.0]
    pools = schedule(POSITIONS, level, 4, {"pacing": "linear", "frac": 1.0, "start": 0.25})
    assert [len(p) for p in pools] == [25, 50, 75, 100]


def test_root_grows_faster_than_linear():
    knobs = {"frac": 1.0, "start": 0.1}
    root = schedule(POSITIONS, LEVEL, 10, {**knobs, "pacing": "root"})
    linear = schedule(POSITIONS, LEVEL, 10, {**knobs, "pacing": "linear"})
    assert len(root[0]) == len(linear[0]) == 10 and len(root[1]) > len(linear[1])


def test_two_epochs_still_start_at_start():
    for frac in (0.2, 0.5, 0.8):  # frac * 2 below 1 too: epoch 1 is never the full set
        assert competence(2, {"pacing": "linear", "frac": frac, "start": 0.3}) == [0.3, 1.0]


@pytest.mark.parametrize(
    "knobs, message",
    [
        ({"pacing": "cubic"}, "pacing 'cubic'"),
        ({"start": 0.0}, "strategy.start=0"),
        ({"frac": 1.5}, "strategy.frac=1.5"),
    ],
)
def test_bad_knobs_are_named(knobs, message):
    with pytest.raises(ConfigError, match=message):
        schedule(POSITIONS, LEVEL, 3, {"pacing": "linear", "frac": 0.5, "start": 0.1, **knobs})


@pytest.fixture(scope="module")
def seed0_run(molecules, data_dir):
    from lipo.data.splits import make_split
    from lipo.training.trial_run import TrialRun, Workspace

    split = make_split(str(data_dir / "splits" / "random_seed0.json"), molecules, 0)
    run = TrialRun(
        RunConfig(backbone="tiny", strategy="curriculum"),
        Workspace(molecules, split, "t"),
        Accelerator(cpu=True),
    )
    run.new_model()  # tokenizes the table
    train = np.asarray(split.train)
    return train, {kind: difficulty(run, train, kind) for kind in ("tokens", "heavy_atoms")}


@pytest.mark.parametrize("kind", ["tokens", "heavy_atoms"])
@pytest.mark.parametrize("pacing", ["linear", "root", "step"])
def test_epoch_one_sees_the_start_fraction_of_the_real_training_split(seed0_run, kind, pacing):
    # the study's range of start (0.1-0.5); before, every setting saw 86-99.9% in epoch 1
    train, level = seed0_run[0], seed0_run[1][kind]
    batch = RunConfig().batch_size
    for start in (0.1, 0.3, 0.5):
        pools = schedule(train, level, 6, {"pacing": pacing, "frac": 0.5, "start": start})
        assert abs(len(pools[0]) - start * len(train)) <= batch
        assert len(pools[1]) < len(train) <= len(pools[2])  # full at epoch 3 = 0.5 x 6
        assert level[np.isin(train, pools[0])].max() <= np.quantile(level, start)
