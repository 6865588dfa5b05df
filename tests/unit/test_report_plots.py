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
    "curriculum_schedule": pd.DataFrame({"epoch": [1, 2, 3], "pool_size": [1000, 2000, 3360],
                                         "max_difficulty": [30.0, 60.0, 207.0]}),
    "influence_scores": pd.DataFrame({"smiles": ["C"] * 50, "label": rng.normal(size=50),
                                      "score": rng.normal(size=50),
                                      "selected": [True] * 5 + [False] * 45}),
    "active_acquired": pd.DataFrame({"round": [1] * 20, "row": range(20), "smiles": ["C"] * 20,
                                     "uncertainty": rng.random(20)}),
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
    assert decoded(report_plots.curves({"a": [(0, 1.0), (1, 0.8), (2, 0.9)]}, "trial",
                                       "best val/mse", running_best=True)).ndim == 3
    assert decoded(report_plots.mse_vs_params([("a", 1e3, 0.5, 0.01),
                                               ("b", 1e5, 0.4, 0.0)])).ndim == 3
