"""Split-conformal prediction intervals for the ensemble mean.

The absolute residuals |y - mean| of the calibration molecules (the validation split: the test
split chooses nothing) give one half-width ``q`` for every molecule: for a new molecule
exchangeable with them, ``mean ± q`` holds its true logD with probability at least the
coverage asked for (Vovk et al.; Lei et al. 2018, "Distribution-free predictive inference").
The guarantee is marginal (over molecules, not for each one) and assumes the new molecules are
drawn like the calibration ones; the report measures it on the test split. The validation
split also chose the best epoch and the settings, so its residuals are slightly optimistic and
the coverage on test may fall a little short of the one asked for.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DEFAULT_COVERAGE = 0.9


def check_coverage(coverage: float) -> float:
    if not 0.0 < coverage < 1.0:
        raise ValueError(
            f"coverage {coverage}: give a probability strictly between 0 and 1 "
            "(0.9 for a 90% interval)"
        )
    return float(coverage)


def conformal_quantile(residuals, coverage: float = DEFAULT_COVERAGE) -> float:
    """The ceil((n + 1) * coverage)-th smallest absolute residual; infinite when n is too
    small for the coverage (fewer than coverage / (1 - coverage) calibration molecules)."""
    check_coverage(coverage)
    scores = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    if scores.size == 0 or not np.isfinite(scores).all():
        raise ValueError("conformal calibration needs finite residuals of one or more molecules")
    rank = math.ceil((scores.size + 1) * coverage)
    return float("inf") if rank > scores.size else float(scores[rank - 1])


def interval(mean, half_width: float) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(mean, dtype=np.float64)
    return mean - half_width, mean + half_width


def empirical_coverage(y_true, lo, hi) -> float:
    """Share of the molecules whose true value lies in [lo, hi]."""
    y_true = np.asarray(y_true, dtype=np.float64)
    return float(np.mean((y_true >= lo) & (y_true <= hi)))


def ensemble_residuals(tables: list[pd.DataFrame]) -> np.ndarray:
    """|y_true - mean over members| per molecule that every member predicted, from the
    members' ``predictions_*.csv`` tables (columns row, y_true, y_pred)."""
    frame = ensemble_mean(tables)
    return (frame["y_true"] - frame["mean"]).abs().to_numpy()


def ensemble_mean(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per molecule that every member predicted (indexed by row): ``y_true``, ``mean`` over
    members and, where the tables have it, ``smiles``."""
    if not tables:
        raise ValueError("conformal calibration needs the predictions of one or more members")
    grouped = pd.concat(tables).groupby("row")
    columns = {
        "y_true": grouped["y_true"].first(),
        "mean": grouped["y_pred"].mean(),
        "members": grouped["y_pred"].count(),
    }
    if "smiles" in tables[0].columns:
        columns["smiles"] = grouped["smiles"].first()
    frame = pd.DataFrame(columns)
    return frame[frame["members"] == len(tables)]
