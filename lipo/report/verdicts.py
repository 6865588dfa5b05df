"""One word per comparison, paired over the seeds two rows share on one split: the mean
difference of test MSE, its 95% t-interval, the paired t-test's p, and helps / within noise /
hurts. A strategy is judged against the plain ``baseline`` and against each of its controls
(the comparison it must win: curriculum against the same examples in random order, influence
against as many random external molecules)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy.stats import t as student_t
from scipy.stats import ttest_rel

NOISE_P = 0.05
HELPS, NOISE, HURTS = "helps", "within noise", "hurts"


@dataclass(frozen=True)
class Verdict:
    against: str  # the other row's label: baseline, random-k
    seeds: int  # paired seeds
    delta: float | None  # mean over paired seeds of (this row's test MSE - the other's)
    low: float | None = None  # 95% t-interval of that mean (2 seeds or more)
    high: float | None = None
    p: float | None = None  # paired t-test
    word: str = NOISE

    def text(self) -> str:
        """'helps −0.031 [−0.052, −0.010] p=0.01, 5 seeds' (negative: lower MSE)."""
        parts = [self.word]
        if self.delta is not None:
            parts.append(f"{self.delta:+.3f}")
        if self.low is not None:
            parts.append(f"[{self.low:+.3f}, {self.high:+.3f}]")
        if self.p is not None:
            parts.append(f"p={self.p:.2g}")
        return " ".join(parts) + f", {self.seeds} seed{'s' * (self.seeds != 1)}"


def judge(ours: dict, theirs: dict, against: str) -> Verdict:
    """``ours``, ``theirs``: seed -> test MSE. Fewer than two paired seeds, or p ≥ 0.05:
    within noise."""
    common = sorted(set(ours) & set(theirs))
    diffs = [ours[s] - theirs[s] for s in common]
    if not diffs:
        return Verdict(against, 0, None)
    delta = statistics.mean(diffs)
    if len(diffs) < 2:
        return Verdict(against, 1, delta)
    low, high = interval(diffs)
    p = float(ttest_rel([ours[s] for s in common], [theirs[s] for s in common]).pvalue)
    if math.isnan(p):  # identical differences: no spread, nothing to test
        return Verdict(against, len(diffs), delta, low, high, None)
    word = NOISE if p >= NOISE_P else HELPS if delta < 0 else HURTS
    return Verdict(against, len(diffs), delta, low, high, p, word)


def interval(diffs: list[float]) -> tuple[float, float]:
    mean, n = statistics.mean(diffs), len(diffs)
    half = student_t.ppf(0.975, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return float(mean - half), float(mean + half)
