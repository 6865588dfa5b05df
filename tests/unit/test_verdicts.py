"""Paired verdicts: difference, 95% t-interval, p, one word."""

import math
import statistics

import pytest
from scipy.stats import t, ttest_rel

from lipo.report.verdicts import judge


def test_lower_mse_on_every_seed_helps_and_the_interval_is_a_t_interval():
    ours, theirs = {0: 0.40, 1: 0.42, 2: 0.41, 3: 0.43}, {0: 0.50, 1: 0.51, 2: 0.53, 3: 0.52}
    verdict = judge(ours, theirs, "baseline")
    diffs = [ours[s] - theirs[s] for s in ours]
    half = t.ppf(0.975, 3) * statistics.stdev(diffs) / math.sqrt(4)
    assert verdict.word == "helps" and verdict.seeds == 4
    assert verdict.delta == pytest.approx(statistics.mean(diffs))
    assert (verdict.low, verdict.high) == pytest.approx(
        (verdict.delta - half, verdict.delta + half)
    )
    assert verdict.p == pytest.approx(ttest_rel(list(ours.values()), list(theirs.values())).pvalue)
    assert verdict.high < 0 and verdict.text().startswith("helps -0.100 [-0.")


def test_higher_mse_hurts_and_a_mixed_difference_is_within_noise():
    assert judge({0: 0.6, 1: 0.62, 2: 0.61}, {0: 0.5, 1: 0.51, 2: 0.52}, "b").word == "hurts"
    mixed = judge({0: 0.50, 1: 0.45, 2: 0.55}, {0: 0.49, 1: 0.50, 2: 0.50}, "b")
    assert mixed.word == "within noise" and mixed.low < 0 < mixed.high and mixed.p > 0.05


def test_only_shared_seeds_are_paired_and_one_seed_is_not_a_test():
    one = judge({0: 0.4, 5: 0.1}, {0: 0.5, 1: 0.5}, "baseline")
    assert one.seeds == 1 and one.delta == pytest.approx(-0.1)
    assert one.word == "within noise" and one.p is None and one.low is None
    assert one.text() == "within noise -0.100, 1 seed"
    assert judge({0: 0.4}, {1: 0.5}, "b").seeds == 0
