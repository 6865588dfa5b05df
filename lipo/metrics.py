"""Regression metrics in logD units; the names are those of MLflow and the report."""

from __future__ import annotations

import numpy as np


def regression_metrics(y_true, y_pred, prefix: str) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    err = y_pred - y_true
    mse = float(np.mean(err**2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / total if total > 0 else float("nan")
    return {
        f"{prefix}/mse": mse,
        f"{prefix}/rmse": mse**0.5,
        f"{prefix}/mae": float(np.mean(np.abs(err))),
        f"{prefix}/r2": r2,
    }
