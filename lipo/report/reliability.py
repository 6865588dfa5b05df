"""How far the served ensemble's uncertainty can be trusted, measured on test per final row:
the empirical coverage of its conformal interval (calibrated on the runs' validation
predictions, as the registered model is) and the error by similarity to the training set.

Built from the final runs' ``predictions_val.csv`` / ``predictions_test.csv``, or where the
report knows it the served prediction's (``lipo.report.served``: one table each); the training
molecules are rebuilt from the runs' data and split (``references.rebuild_split``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lipo.errors import LipoError
from lipo.inference import similarity
from lipo.inference.conformal import (
    DEFAULT_COVERAGE,
    conformal_quantile,
    ensemble_mean,
    ensemble_residuals,
)
from lipo.report import plots as report_plots
from lipo.report.references import rebuild_split

BANDS_CSV = "similarity_bands.csv"


def test_frame(tests: list[pd.DataFrame], half_width: float) -> pd.DataFrame:
    """Per test molecule every member predicted: SMILES, |error| of the mean, covered."""
    frame = ensemble_mean(tests).copy()
    frame["abs_error"] = (frame["mean"] - frame["y_true"]).abs()
    frame["covered"] = frame["abs_error"] <= half_width
    return frame


def attach_reliability(
    rows: list,
    runs: list,
    val_tables: dict,
    test_tables: dict,
    notes: list[str],
    coverage: float = DEFAULT_COVERAGE,
) -> pd.DataFrame:
    """Sets ``interval_coverage`` on each final row with tables in both (``build``'s
    ``reliability_tables``: every run's, or the served prediction's); returns the
    error-by-similarity table (one line per row and band) and adds a note per row."""
    by_id, train_bits, bands = {r.run_id: r for r in runs}, {}, []
    for row in (r for r in rows if r.kind == "final"):
        key = tuple(row.run_ids)
        vals, tests = val_tables.get(key, []), test_tables.get(key, [])
        if not vals or not tests:
            continue
        q = conformal_quantile(ensemble_residuals(vals), coverage)
        frame = test_frame(tests, q)
        row.interval_coverage = float(frame["covered"].mean())
        # a study's rows on two splits (or backbones) are two series of the figure
        name = " · ".join(part for part in (row.label, row.backbone, row.split) if part)
        notes.append(
            f"{coverage:.0%} conformal interval (served prediction ± {q:.3f}, calibrated on "
            f"validation), {name}: covers {row.interval_coverage:.1%} of "
            f"{len(frame)} test molecules"
        )
        try:
            bits = train_bits.get(row.split_sha256)
            if bits is None:
                bits = train_bits[row.split_sha256] = training_fingerprints(
                    by_id[row.run_ids[0]].params, row.split_sha256
                )
        except (LipoError, KeyError) as exc:
            notes.append(f"error by similarity skipped for {name}: {exc}")
            continue
        frame["similarity"] = similarity.max_tanimoto(
            similarity.fingerprints(list(frame["smiles"])), bits
        )
        bands.append(band_table(frame).assign(study=name))
    return pd.concat(bands, ignore_index=True) if bands else pd.DataFrame()


def training_fingerprints(params: dict, split_sha: str) -> np.ndarray:
    mols, split = rebuild_split(params, split_sha)
    return similarity.fingerprints([mols.smiles[i] for i in split.part("train")])


def band_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per similarity band: molecules, MAE and RMSE of the mean, interval coverage."""
    frame = frame.assign(band=similarity.band(frame["similarity"].to_numpy()))
    out = []
    for label in similarity.band_labels():
        part = frame[frame["band"] == label]
        errors = part["abs_error"]
        out.append(
            {
                "band": label,
                "molecules": len(part),
                "mae": float(errors.mean()) if len(part) else np.nan,
                "rmse": float(np.sqrt((errors**2).mean())) if len(part) else np.nan,
                "coverage": float(part["covered"].mean()) if len(part) else np.nan,
            }
        )
    return pd.DataFrame(out)


def band_notes(bands: pd.DataFrame) -> list[str]:
    if bands.empty:  # no final row has its test and validation predictions
        return []
    notes = []
    for name, part in bands.groupby("study", sort=False):
        cells = "; ".join(
            f"{b.band}: {b.molecules} mol, MAE {b.mae:.3f}, covered {b.coverage:.0%}"
            for b in part.itertuples()
            if b.molecules
        )
        notes.append(f"test error by max Tanimoto similarity to train, {name}: {cells}")
    return notes


def band_figure(bands: pd.DataFrame) -> list[tuple[str, str]]:
    if bands.empty:
        return []
    return [
        (
            "Test MAE of the served prediction by similarity to the training set (molecules "
            "per band above the bars)",
            report_plots.bands(bands),
        )
    ]
