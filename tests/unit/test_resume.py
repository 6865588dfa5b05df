"""A saved training state is resumed only by the fit that saved it."""

import json
import logging

import numpy as np
import pytest
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.splits import Split
from lipo.training.trial_run import TrialRun, Workspace

FEW = np.arange(80)


def fit_on(molecules, train, root, strategy="all", phase=None):
    ws = Workspace(molecules, Split("few", FEW[:64], FEW[64:], FEW[64:]), "test")
    cfg = RunConfig(backbone="tiny", epochs=2, patience=5, batch_size=16, strategy=strategy)
    run = TrialRun(cfg, ws, Accelerator(cpu=True), state_root=root, save_every=2)
    return run.fit(run.new_model(), train, phase=phase)


def val_curve(result):
    return [h["val/mse"] for h in result.history]


def test_a_state_saved_by_another_fit_is_not_loaded(tmp_path, molecules, caplog):
    """The first fit of a retry (influence's retrain, its scores cached) finds the state the
    scoring fit left under the same number: it trains afresh, not from that state."""
    straight = fit_on(molecules, FEW[:64], None)
    fit_on(molecules, FEW[:48], tmp_path)  # leaves its finished state in fit-1
    saved = json.loads((tmp_path / "fit-1" / "current" / "progress.json").read_text())
    assert saved["fit"]["strategy"] == "all" and saved["fit"]["phase"] == "fit-1"
    with caplog.at_level(logging.WARNING):
        again = fit_on(molecules, FEW[:64], tmp_path)
    assert "training state of another fit" in caplog.text and "not loaded" in caplog.text
    assert val_curve(again) == pytest.approx(val_curve(straight), rel=1e-6)


def test_the_same_fit_resumes_its_own_state(tmp_path, molecules, caplog):
    first = fit_on(molecules, FEW[:64], tmp_path, phase="retrain")
    with caplog.at_level(logging.WARNING):
        again = fit_on(molecules, FEW[:64], tmp_path, phase="retrain")
    assert "resuming from" in caplog.text and "another fit" not in caplog.text
    assert val_curve(again) == val_curve(first)


@pytest.mark.parametrize("other", [{"strategy": "influence"}, {"phase": "score"}])
def test_strategy_and_phase_are_part_of_a_fits_identity(tmp_path, molecules, caplog, other):
    fit_on(molecules, FEW[:64], tmp_path, phase="retrain")
    kwargs = {"strategy": "all", "phase": "retrain", **other}
    if kwargs["phase"] != "retrain":  # the retrain's state where the scoring fit looks
        (tmp_path / "retrain").rename(tmp_path / kwargs["phase"])
    with caplog.at_level(logging.WARNING):
        fit_on(molecules, FEW[:64], tmp_path, **kwargs)
    assert "training state of another fit" in caplog.text


class Interrupted(Exception):
    """Stands for the kill: raised after the retrain's first epoch (its state saved)."""


def influence_like(molecules, root, skip_scoring=False, stop_after=None, ema=0.0):
    """A scoring fit (unless its scores are 'cached'), then the retrain on more molecules."""
    ws = Workspace(molecules, Split("few", FEW[:64], FEW[64:], FEW[64:]), "test")
    cfg = RunConfig(
        backbone="tiny", epochs=2, patience=5, batch_size=16, strategy="influence", ema=ema
    )

    def on_epoch(epoch, metrics):
        if epoch == stop_after:
            raise Interrupted

    run = TrialRun(cfg, ws, Accelerator(cpu=True), on_epoch, state_root=root, save_every=2)
    if not skip_scoring:
        run.fit(run.new_model(), FEW[:48], report=False, phase="score")
    return run.fit(run.new_model(), FEW[:64], phase="retrain")


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_a_retry_that_skips_the_scoring_fit_resumes_the_retrain_alone(tmp_path, molecules, ema):
    """With ema, the retrain's state holds its own weight average, not the scoring fit's too."""
    straight = influence_like(molecules, None, ema=ema)
    with pytest.raises(Interrupted):
        influence_like(molecules, tmp_path, stop_after=1, ema=ema)
    saved = json.loads((tmp_path / "retrain" / "current" / "progress.json").read_text())
    assert saved["epoch"] == 1
    assert not list((tmp_path / "retrain" / "current").glob("model_1*"))  # one model only
    averages = list((tmp_path / "retrain" / "current").glob("custom_checkpoint_*"))
    assert len(averages) == (1 if ema else 0)
    retried = influence_like(molecules, tmp_path, skip_scoring=True, ema=ema)
    assert val_curve(retried) == pytest.approx(val_curve(straight), rel=1e-6)
