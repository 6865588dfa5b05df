"""MC dropout switches only the dropout modules on: with dropout 0 the spread is zero."""

import numpy as np
import torch
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.splits import Split
from lipo.strategies.active import mc_dropout_std
from lipo.training.trial_run import TrialRun, Workspace


def spread(molecules, dropout):
    few = np.arange(16)
    ws = Workspace(molecules, Split("s", few, few, few), "t")
    run = TrialRun(RunConfig(backbone="tiny", dropout=dropout), ws, Accelerator(cpu=True))
    model = run.new_model()
    if dropout == 0.0:  # the encoder's own dropout too
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    values = mc_dropout_std(run, model, few[::-1].copy(), passes=5)
    assert not model.training and all(not m.training for m in model.modules())
    return values


def test_spread_comes_from_dropout_only(molecules):
    assert np.allclose(spread(molecules, 0.0), 0.0, atol=1e-6)
    assert (spread(molecules, 0.3) > 0).all()
