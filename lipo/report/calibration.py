"""Calibration of the seed ensemble on test: does the spread across a final row's seeds say
where its mean prediction is wrong? Absolute error of the mean against the standard deviation
across seeds, per molecule, with Spearman's rank correlation between them.

Built from the final runs' ``predictions_test.csv`` artifacts, as the parity plot is."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from lipo.report import plots as report_plots


def spread_and_error(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per test molecule (``row``): the mean prediction over seeds, the standard deviation
    across seeds (n-1) and the absolute error of the mean; molecules every seed predicted."""
    stacked = pd.concat(tables)
    grouped = stacked.groupby("row")
    out = pd.DataFrame(
        {
            "y_true": grouped["y_true"].first(),
            "mean": grouped["y_pred"].mean(),
            "spread": grouped["y_pred"].std(ddof=1),
            "members": grouped["y_pred"].count(),
        }
    )
    out = out[out["members"] == len(tables)]
    out["abs_error"] = (out["mean"] - out["y_true"]).abs()
    return out


def ensemble_mse(tables: list[pd.DataFrame]) -> float:
    """Test MSE of the seeds' mean prediction (the model ``predict --study NAME --final``
    serves), over the molecules every seed predicted."""
    frame = spread_and_error(tables)
    return float(((frame["mean"] - frame["y_true"]) ** 2).mean())


def final_tables(store, rows: list, name: str = "predictions_test.csv") -> dict[tuple, list]:
    """Per final row (keyed by its run ids): the ``name`` table of each of its runs that has
    one. The test tables are read once here for the ensemble column, the parity and
    calibration plots; the validation ones for the interval's calibration."""
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for row in (r for r in rows if r.kind == "final"):
            paths = [store.download(run_id, name, Path(tmp) / run_id) for run_id in row.run_ids]
            tables[tuple(row.run_ids)] = [pd.read_csv(p) for p in paths if p is not None]
    return tables


def attach_ensembles(rows: list, tables: dict) -> None:
    """Sets ``ensemble_mse`` on each final row of two or more seeds, all with predictions."""
    # seeds on their own splits share few test molecules: no ensemble to score
    for row in (
        r for r in rows if r.kind == "final" and len(r.run_ids) > 1 and len(r.split_shas) <= 1
    ):
        mine = tables.get(tuple(row.run_ids), [])
        if len(mine) == len(row.run_ids):
            row.ensemble_mse = ensemble_mse(mine)


def spearman(frame: pd.DataFrame) -> float:
    rho = spearmanr(frame["spread"], frame["abs_error"]).statistic
    return float(rho)


def calibration_figures(rows: list, tables: dict, notes: list[str]) -> list[tuple[str, str]]:
    """One panel per final row with two or more seeds; Spearman per row also in ``notes``.
    ``tables``: ``final_tables``."""
    panels = []
    # seeds on their own splits share few test molecules: no ensemble to score
    for row in (
        r for r in rows if r.kind == "final" and len(r.run_ids) > 1 and len(r.split_shas) <= 1
    ):
        mine = tables.get(tuple(row.run_ids), [])
        if len(mine) < 2:
            continue
        frame = spread_and_error(mine)
        rho = spearman(frame)
        label = f"{row.label} · {row.backbone}"
        notes.append(
            f"calibration on test, {label}: Spearman(|error|, spread across "
            f"{len(mine)} seeds) = {rho:.3f} over {len(frame)} molecules"
        )
        panels.append(
            (
                f"{label}: Spearman {rho:.2f}",
                frame["spread"].to_numpy(),
                frame["abs_error"].to_numpy(),
            )
        )
    if not panels:
        return []
    return [
        (
            "Calibration on test: absolute error of the mean prediction against the spread "
            "across seeds",
            calibration_plot(panels),
        )
    ]


def calibration_plot(panels: list[tuple[str, np.ndarray, np.ndarray]]) -> str:
    fig, axes = report_plots.grid(len(panels))
    for ax, (title, spread, error) in zip(axes, panels):
        ax.scatter(spread, error, s=6, alpha=0.5)
        ax.set(title=title, xlabel="std across seeds (logD)", ylabel="|mean − true| (logD)")
    return report_plots.png(fig)
