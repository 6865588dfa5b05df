"""The report's figures decode as PNG images, for every kind of strategy output."""

import base64
import io

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from lipo.report import plots as report_plots


def decoded(data: str) -> np.ndarray:
    return matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png")


rng = np.random.default_rng(0)
TABLES = {
    "curriculum_schedule": pd.DataFrame(
        {"epoch": [1, 2, 3], "pool_size": [1000, 2000, 3360], "max_difficulty": [30.0, 60.0, 207.0]}
    ),
    "influence_scores": pd.DataFrame(
        {
            "smiles": ["C"] * 50,
            "label": rng.normal(size=50),
            "score": rng.normal(size=50),
            "selected": [True] * 5 + [False] * 45,
        }
    ),
    "active_acquired": pd.DataFrame(
        {"round": [1] * 20, "row": range(20), "smiles": ["C"] * 20, "uncertainty": rng.random(20)}
    ),
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_strategy_outputs_plot(name):
    image = decoded(report_plots.strategy_output(name, TABLES[name]))
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_table_without_numbers_gives_no_figure():
    assert report_plots.strategy_output("x", pd.DataFrame({"smiles": ["C", "CC"]})) is None


def test_parity_and_curves():
    y = rng.normal(size=30)
    assert decoded(report_plots.parity([("a", y, y + 0.1), ("b", y, y)])).ndim == 3
    assert (
        decoded(
            report_plots.curves(
                {"a": [(0, 1.0), (1, 0.8), (2, 0.9)]}, "trial", "best val/mse", running_best=True
            )
        ).ndim
        == 3
    )
    assert (
        decoded(report_plots.mse_vs_params([("a", 1e3, 0.5, 0.01), ("b", 1e5, 0.4, 0.0)])).ndim == 3
    )


def test_error_by_similarity_band_table_and_plot():
    from lipo.report.reliability import band_notes, band_table, test_frame

    truth = pd.DataFrame(
        {
            "row": [0, 1, 2, 3],
            "smiles": ["CCO", "CCN", "CCC", "CCCl"],
            "y_true": [0.0, 0.0, 0.0, 0.0],
        }
    )
    frame = test_frame(
        [truth.assign(y_pred=[0.1, -0.3, 0.5, 2.0]), truth.assign(y_pred=[0.1, -0.1, 0.5, 2.0])],
        half_width=0.4,
    )
    assert frame["covered"].tolist() == [True, True, False, False]
    frame["similarity"] = [0.1, 0.3, 0.7, 0.95]
    bands = band_table(frame)
    assert bands["band"].tolist() == ["<0.4", "0.4-0.6", "0.6-0.8", ">=0.8"]
    assert bands["molecules"].tolist() == [2, 0, 1, 1]
    np.testing.assert_allclose(bands["mae"], [0.15, np.nan, 0.5, 2.0])
    np.testing.assert_allclose(bands["coverage"], [1.0, np.nan, 0.0, 0.0])
    bands = bands.assign(study="lora · mini")
    assert band_notes(bands) == [
        "test error by max Tanimoto similarity to train, lora · mini: "
        "<0.4: 2 mol, MAE 0.150, covered 100%; 0.6-0.8: 1 mol, MAE "
        "0.500, covered 0%; >=0.8: 1 mol, MAE 2.000, covered 0%"
    ]
    two = pd.concat([bands, bands.assign(study="ia3 · mini")])
    assert decoded(report_plots.bands(two)).shape[2] in (3, 4)


def test_no_final_row_with_predictions_gives_no_band_notes_or_figure():
    from lipo.report.reliability import band_figure, band_notes

    assert band_notes(pd.DataFrame()) == [] and band_figure(pd.DataFrame()) == []
