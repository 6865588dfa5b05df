"""The exact optimiser steps of fine-tuning and masked-LM training on ``tiny``, on the CPU.

The numbers were recorded from the training loops before they shared one step engine
(``lipo.training.steps``): a change that alters a loss, a learning rate, the batch order, the
clipping or what a resume restores moves them. The losses are read where Accelerate sees
them (``Accelerator.backward``), so the test does not depend on how the loops are written.
The tolerance covers CPU kernels that differ slightly between machines.
"""

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import RoFormerForMaskedLM

from lipo.config import RunConfig
from lipo.data.splits import Split
from lipo.errors import TrainingDiverged
from lipo.masked_lm.loop import MLMSettings, train_mlm
from lipo.models.backbones import load_backbone, roformer_config
from lipo.training.resume import Progress
from lipo.training.trial_run import TrialRun, Workspace

REL = 1e-5
FEW = np.arange(120)  # 96 to train on (6 batches of 16), 24 to validate on

# Per optimiser step, two epochs of 6 steps.
FIT_LOSSES = [
    1.117665410041809,
    1.188216209411621,
    0.8239924907684326,
    1.0382014513015747,
    1.2465291023254395,
    0.9460342526435852,
    1.1304240226745605,
    1.2552905082702637,
    0.9919026494026184,
    0.713703989982605,
    0.9514937400817871,
    0.8476951122283936,
]
FIT_HISTORY = [  # (train/loss, val/mse) per epoch
    (1.060106486082077, 1.9506290536070674),
    (0.9817516704400381, 1.9320334083822386),
]
# A curriculum: 48 molecules in epoch 1 (3 steps), all 96 in epoch 2 (6 steps).
POOLS_LOSSES = [
    1.1276555061340332,
    0.7265826463699341,
    1.554773211479187,
    1.1697889566421509,
    1.2021363973617554,
    0.9138813614845276,
    0.7248948812484741,
    0.9942805171012878,
    0.86627596616745,
]
# Masked-LM: 180 SMILES to train on (6 batches of 32) for two epochs, 20 held out.
MLM_LOSSES = [
    5.037291526794434,
    4.983605861663818,
    4.91249418258667,
    4.900190353393555,
    4.902803421020508,
    4.844881057739258,
    4.7859578132629395,
    4.793571949005127,
    4.706185340881348,
    4.759740352630615,
    4.726903438568115,
    4.7189178466796875,
]
MLM_HELDOUT = [  # (heldout/mlm_loss, heldout/accuracy) after each epoch
    (4.807022571563721, 0.29347826086956524),
    (4.718321323394775, 0.29347826086956524),
]
# Masked-LM cut at 4 steps (max_steps): the schedule ends there too.
MLM_SHORT_LOSSES = [5.037291526794434, 4.983605861663818, 4.921515464782715, 4.9229960441589355]
MLM_SHORT_HELDOUT = (4.91337251663208, 0.29347826086956524)


def flat(pairs) -> list[float]:
    """approx compares flat sequences only: nested tuples would be compared exactly."""
    return [float(v) for v in np.ravel(pairs)]


@pytest.fixture(autouse=True)
def one_thread():
    """The recorded numbers come from one thread: several sum in another order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Interrupted(Exception):
    """Stands for a kill in the middle of a step."""


class Recording(Accelerator):
    """Records every loss it back-propagates; raises before back-propagating the
    ``stop_at``-th one (its step never completes)."""

    def __init__(self, stop_at: int = 0):
        super().__init__(cpu=True)
        self.losses: list[float] = []
        self.stop_at = stop_at

    def backward(self, loss, **kwargs):
        if len(self.losses) + 1 == self.stop_at:
            raise Interrupted
        self.losses.append(loss.item())
        super().backward(loss, **kwargs)


def fine_tune(molecules, accelerator, root=None, pools=None, **changes):
    ws = Workspace(molecules, Split("few", FEW[:96], FEW[96:], FEW[96:]), "test")
    cfg = RunConfig(
        **{"backbone": "tiny", "epochs": 2, "patience": 5, "batch_size": 16, "lr": 1e-3, **changes}
    )
    run = TrialRun(cfg, ws, accelerator, state_root=root, save_every=4)
    return run.fit(run.new_model(), ws.split.train, pools=pools)


def masked_lm(molecules, accelerator, state_dir=None, **changes):
    smiles = list(molecules.smiles[:200])
    set_seed(0)
    tokenizer = load_backbone("tiny", smiles).tokenizer
    model = RoFormerForMaskedLM(roformer_config("tiny", tokenizer))
    ids = tokenizer(smiles)["input_ids"]
    settings = MLMSettings(
        **{"epochs": 2, "batch_size": 32, "lr": 1e-3, "save_every": 4, **changes}
    )
    heldout = []

    def log(metrics, step):
        return heldout.append(metrics) if "heldout/mlm_loss" in metrics else None

    final = train_mlm(
        model, tokenizer, ids[20:], ids[:20], settings, accelerator, log, state_dir=state_dir
    )
    return final, [(m["heldout/mlm_loss"], m["heldout/accuracy"]) for m in heldout]


def test_two_epochs_of_fine_tuning(molecules):
    accelerator = Recording()
    result = fine_tune(molecules, accelerator)
    assert accelerator.losses == pytest.approx(FIT_LOSSES, rel=REL)
    history = [(h["train/loss"], h["val/mse"]) for h in result.history]
    assert flat(history) == pytest.approx(flat(FIT_HISTORY), rel=REL)
    assert result.best_epoch == int(np.argmin([v for _, v in FIT_HISTORY])) + 1


def fine_tune_run(molecules, root=None):
    ws = Workspace(molecules, Split("few", FEW[:96], FEW[96:], FEW[96:]), "test")
    cfg = RunConfig(backbone="tiny", epochs=2, patience=5, batch_size=16, lr=1e-3)
    return TrialRun(cfg, ws, Accelerator(cpu=True), state_root=root, save_every=4)


def test_the_best_epochs_val_predictions_are_kept_and_equal_a_fresh_evaluation(molecules):
    run = fine_tune_run(molecules)
    result = run.fit(run.new_model(), run.split.train)
    kept = run.val_table(result)
    assert result.val_predictions is not None
    fresh = run.evaluate(result.model, "val")[1]
    assert len(kept) == 24 and kept["row"].tolist() == fresh["row"].tolist()
    assert kept["y_pred"].tolist() == pytest.approx(fresh["y_pred"].tolist(), rel=1e-6)
    seconds = result.seconds
    assert seconds["time/train_s"] > 0 and seconds["time/eval_s"] > 0
    assert seconds["time/save_s"] == 0  # no state folder: nothing saved


def test_a_resumed_fit_whose_best_epoch_ran_before_evaluates_again(molecules, tmp_path):
    run = fine_tune_run(molecules, tmp_path)
    run.fit(run.new_model(), run.split.train)  # finished: its last state is epoch 2's end
    again = fine_tune_run(molecules, tmp_path)
    result = again.fit(again.new_model(), again.split.train)
    assert result.val_predictions is None and result.seconds["time/train_s"] == 0
    table = again.val_table(result)
    assert len(table) == 24
    assert ((table.y_true - table.y_pred) ** 2).mean() == pytest.approx(
        result.best["val/mse"], rel=1e-5
    )


def test_a_curriculum_counts_its_pools_steps(molecules):
    accelerator = Recording()
    fine_tune(molecules, accelerator, pools=[FEW[:48], FEW[:96]])
    assert accelerator.losses == pytest.approx(POOLS_LOSSES, rel=REL)


def test_a_fit_killed_mid_epoch_resumes_with_the_same_steps(molecules, tmp_path):
    with pytest.raises(Interrupted):  # during step 10; the last state saved is step 8's
        fine_tune(molecules, Recording(stop_at=10), tmp_path)
    accelerator = Recording()
    result = fine_tune(molecules, accelerator, tmp_path)
    assert accelerator.losses == pytest.approx(FIT_LOSSES[8:], rel=REL)
    history = [(h["train/loss"], h["val/mse"]) for h in result.history]
    assert flat(history) == pytest.approx(flat(FIT_HISTORY), rel=REL)


def test_ema_scores_and_keeps_the_average_while_the_steps_stay_the_same(molecules):
    accelerator = Recording()
    result = fine_tune(molecules, accelerator, ema=0.9)
    assert accelerator.losses == pytest.approx(FIT_LOSSES, rel=REL)  # the raw weights train
    train_loss = [h["train/loss"] for h in result.history]
    assert train_loss == pytest.approx([loss for loss, _ in FIT_HISTORY], rel=REL)
    val_mse = [h["val/mse"] for h in result.history]
    assert all(abs(v - ref) > 1e-4 for v, (_, ref) in zip(val_mse, FIT_HISTORY, strict=True))
    run = fine_tune_run(molecules)  # the returned model holds the average: it scores the same
    run.new_model()  # the run's tokens
    assert run.evaluate(result.model, "val")[0]["val/mse"] == pytest.approx(
        result.best["val/mse"], rel=1e-6
    )


def test_a_fit_with_ema_killed_mid_epoch_ends_with_the_same_average(molecules, tmp_path):
    straight = fine_tune(molecules, Recording(), ema=0.9)
    with pytest.raises(Interrupted):
        fine_tune(molecules, Recording(stop_at=10), tmp_path, ema=0.9)
    accelerator = Recording()
    resumed = fine_tune(molecules, accelerator, tmp_path, ema=0.9)
    assert accelerator.losses == pytest.approx(FIT_LOSSES[8:], rel=REL)
    assert flat([h["val/mse"] for h in resumed.history]) == pytest.approx(
        flat([h["val/mse"] for h in straight.history]), rel=REL
    )
    assert resumed.best_state.keys() == straight.best_state.keys()
    for name, weights in straight.best_state.items():
        assert torch.allclose(resumed.best_state[name], weights, rtol=1e-5, atol=1e-7), name


def test_a_few_steps_of_masked_lm(molecules):
    accelerator = Recording()
    final, heldout = masked_lm(molecules, accelerator)
    assert accelerator.losses == pytest.approx(MLM_LOSSES, rel=REL)
    assert flat(heldout) == pytest.approx(flat(MLM_HELDOUT), rel=REL)
    assert final["steps"] == len(MLM_LOSSES)
    assert (final["heldout/mlm_loss"], final["heldout/accuracy"]) == pytest.approx(
        MLM_HELDOUT[-1], rel=REL
    )


def test_masked_lm_killed_mid_epoch_resumes_with_the_same_steps(molecules, tmp_path):
    with pytest.raises(Interrupted):  # during step 11 (epoch 2); the last state is step 8's
        masked_lm(molecules, Recording(stop_at=11), tmp_path)
    accelerator = Recording()
    final, _ = masked_lm(molecules, accelerator, tmp_path)
    assert accelerator.losses == pytest.approx(MLM_LOSSES[8:], rel=REL)
    assert final["steps"] == len(MLM_LOSSES)
    assert final["heldout/mlm_loss"] == pytest.approx(MLM_HELDOUT[-1][0], rel=REL)


def test_masked_lm_max_steps_ends_the_schedule_early(molecules):
    accelerator = Recording()
    final, heldout = masked_lm(molecules, accelerator, max_steps=4)
    assert final["steps"] == 4 and len(heldout) == 1  # stopped inside epoch 1
    assert accelerator.losses == pytest.approx(MLM_SHORT_LOSSES, rel=REL)
    assert flat(heldout) == pytest.approx(flat([MLM_SHORT_HELDOUT]), rel=REL)


@pytest.mark.parametrize(
    "train, message",
    [(fine_tune, "training loss became nan"), (masked_lm, "masked-LM loss became nan")],
)
def test_an_infinite_learning_rate_diverges(molecules, train, message):
    with pytest.raises(TrainingDiverged, match=message):
        train(molecules, Recording(), lr=float("inf"))


def test_progress_reads_the_dicts_saved_before_it_was_a_class():
    """A long pre-training run may have saved its state with the masked-LM loop's old dict."""
    old_mlm = '{"epoch": 0, "batch": 40, "step": 40, "fit": null}'
    assert Progress.from_json(old_mlm) == Progress(epoch=0, batch=40, step=40)
    best = {"val/mse": 1.5}
    progress = Progress(1, 2, 8, 38.25, 32, 0, [best], 1, best)
    identity = {"strategy": "all", "phase": "fit-1", "data": "0123"}
    assert Progress.from_json(progress.to_json(identity)) == progress
