import numpy as np
import pytest

from lipo.errors import ConfigError
from lipo.strategies.curriculum import schedule

POSITIONS = np.arange(100, 200)
LEVEL = np.arange(100, dtype=float)  # position 100 + i has difficulty i


@pytest.mark.parametrize("pacing", ["linear", "root", "step"])
def test_pool_grows_easiest_first_to_everything(pacing):
    pools = schedule(POSITIONS, LEVEL, 10, {"pacing": pacing, "frac": 0.5, "start": 0.2})
    sizes = [len(p) for p in pools]
    assert sizes == sorted(sizes) and sizes[-1] == 100
    assert sizes[4:] == [100] * 6  # full from epoch frac * epochs = 5 on
    for pool in pools:  # always a prefix of the easiest molecules
        assert sorted(pool.tolist()) == list(range(100, 100 + len(pool)))


def test_the_control_trains_on_every_molecule_from_the_first_epoch():
    pools = schedule(POSITIONS, LEVEL, 4, {"pacing": "none", "frac": 0.5, "start": 0.2})
    assert [sorted(p.tolist()) for p in pools] == [POSITIONS.tolist()] * 4


def test_linear_threshold_and_start_fraction():
    pools = schedule(POSITIONS, LEVEL, 10, {"pacing": "linear", "frac": 1.0, "start": 0.3})
    # epoch e: difficulty <= 99 * e / 10, but never fewer than 30 molecules
    assert [len(p) for p in pools] == [30, 30, 30, 40, 50, 60, 70, 80, 90, 100]


def test_root_grows_faster_than_linear():
    knobs = {"frac": 1.0, "start": 0.0}
    root = schedule(POSITIONS, LEVEL, 10, {**knobs, "pacing": "root"})
    linear = schedule(POSITIONS, LEVEL, 10, {**knobs, "pacing": "linear"})
    assert len(root[1]) > len(linear[1])


def test_unknown_pacing():
    with pytest.raises(ConfigError, match="pacing 'cubic'"):
        schedule(POSITIONS, LEVEL, 3, {"pacing": "cubic", "frac": 0.5, "start": 0.1})
