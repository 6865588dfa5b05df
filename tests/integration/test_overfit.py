"""The ``tiny`` encoder must be able to memorise 32 molecules through the real fit()."""

import numpy as np
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.splits import Split
from lipo.training.trial_run import TrialRun, Workspace, train_trial


def test_tiny_overfits_32_molecules(molecules):
    few = np.arange(32)
    ws = Workspace(molecules, Split("tiny32", few, few, few), "test")
    cfg = RunConfig(
        backbone="tiny",
        epochs=80,
        patience=80,
        lr=3e-3,
        dropout=0.0,
        warmup_frac=0.0,
        weight_decay=0.0,
        batch_size=8,
    )
    result = train_trial(TrialRun(cfg, ws, Accelerator(cpu=True)))
    variance = float(np.var(molecules.y[few]))
    assert result.history[0]["val/mse"] > 0.5 * variance
    assert result.best["val/mse"] < 0.1 * variance, result.best
