"""Active learning sees only its labelled molecules' labels, their mean and spread included."""

import numpy as np
import pytest
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.splits import Split
from lipo.strategies import active
from lipo.training.trial_run import TrialRun, Workspace


def test_targets_are_standardised_with_the_labelled_molecules_only(molecules):
    split = Split("s", np.arange(80), np.arange(80, 96), np.arange(96, 112))
    cfg = RunConfig(
        backbone="tiny",
        strategy="active",
        epochs=1,
        strategy_args={"initial": 20, "acquire": 10, "rounds": 1, "passes": 2},
    )
    run = TrialRun(cfg, Workspace(molecules, split, "t"), Accelerator(cpu=True))
    seen = []
    fit = run.fit

    def recording_fit(model, positions, **kwargs):
        y = np.asarray(molecules.y)[positions]
        seen.append((float(model.y_mean), float(model.y_std), y.mean(), y.std()))
        return fit(model, positions, **kwargs)

    run.fit = recording_fit
    active.train(run)
    assert len(seen) == 2  # 20 labelled, then 30
    train_y = np.asarray(molecules.y)[split.train]
    for y_mean, y_std, labelled_mean, labelled_std in seen:
        assert (y_mean, y_std) == pytest.approx((labelled_mean, labelled_std), abs=1e-5)
        assert abs(y_mean - train_y.mean()) > 1e-3  # the whole split's statistics differ
