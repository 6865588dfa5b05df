"""fit(): the training loop under Accelerate, the same on a CPU, one GPU or several processes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from accelerate import Accelerator
from torch.nn.functional import mse_loss

from lipo.adapters import HEADS
from lipo.config import RunConfig
from lipo.data.augment import average_by_molecule
from lipo.metrics import regression_metrics
from lipo.runtime.gathering import gather_by_position
from lipo.training.layer_lr import decayed_groups, layer_depths
from lipo.training.resume import Progress, TrainingState
from lipo.training.steps import start

# on_epoch(epoch, metrics) runs on every rank after each epoch's evaluation; it may raise
# (Optuna's TrialPruned) to stop the run.
EpochHook = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    best_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)  # val metrics of the best epoch
    history: list[dict[str, float]] = field(default_factory=list)
    # The best epoch's trainable weights (CPU); with ema, their average at that epoch.
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    model: torch.nn.Module | None = None  # unwrapped, holding best_state
    # Seconds in optimiser steps and in evaluation (this process's run of the fit, not a
    # resumed run's earlier ones), and in saving resumable states: what a trial's wall time
    # spends on training, the rest being the platform's bookkeeping.
    seconds: dict[str, float] = field(default_factory=dict)
    # (predictions, labels, positions) of the best epoch's evaluation, when that epoch ran in
    # this process: the trial's predictions_val table without evaluating once more.
    val_predictions: tuple | None = None


def fit(
    model,
    train_loader,
    val_loader,
    cfg: RunConfig,
    accelerator: Accelerator,
    on_epoch: EpochHook | None = None,
    pools: list[np.ndarray] | None = None,
    state: TrainingState | None = None,
    on_step=None,
) -> FitResult:
    """``pools``: the training positions of each epoch (a curriculum); default: all, always.
    Early stopping waits until the pool stops growing. ``state``: save and resume (a killed
    trial's retry continues from its last saved step and ends where an uninterrupted run ends).
    ``on_step(metrics, step)``: the per-step curves (``lipo.training.steps.Steps``), rank 0 only.
    ``cfg.ema``: each epoch evaluates, and the best keeps, the weights' moving average; the
    optimiser steps the weights themselves.
    """
    optimizer = torch.optim.AdamW(
        param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    steps, (train_loader, val_loader) = start(
        accelerator,
        model,
        optimizer,
        [train_loader, val_loader],
        schedule_length(cfg, train_loader, pools),
        cfg.warmup_frac,
        clip=cfg.grad_clip,
        state=state,
        on_step=on_step,
        ema=cfg.ema,
    )
    progress = steps.resume()
    # A resumed fit's finished epochs are replayed to the hook: the retried trial's new
    # MLflow run and Optuna trial see every epoch.
    for epoch, metrics in enumerate(progress.history, 1):
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    objective = Regression(steps.model, accelerator, cfg.lr, cfg.aux_descriptors)
    full_from = next(i for i, p in enumerate(pools, 1) if len(p) == len(pools[-1])) if pools else 1
    clock, best_predictions = Clock(), None
    for epoch in range(progress.epoch + 1, cfg.epochs + 1):
        if progress.waited >= cfg.patience:  # early stop (also of a resumed, finished fit)
            break
        if pools:
            steps.sampler.positions = pools[epoch - 1]
        saved = steps.saving_s
        with clock("train"):
            steps.train_epoch(train_loader, progress, objective, bar=f"epoch {epoch}")
        clock.seconds["train"] -= steps.saving_s - saved  # its periodic saves: bookkeeping
        with evaluated_weights(steps):
            with clock("eval"):
                val_metrics, predictions = evaluate(steps.model, val_loader, accelerator, "val")
                metrics = {"train/loss": steps.epoch_loss(progress), **val_metrics}
                if cfg.aux_descriptors > 0:
                    metrics["train/aux_loss"] = steps.epoch_aux_loss(progress)
            if record_epoch(progress, epoch, metrics, epoch >= full_from, keeps_last(cfg)):
                steps.best_state = trainable_state(accelerator.unwrap_model(steps.model))
                best_predictions = predictions
        steps.end_epoch(progress)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    best = accelerator.unwrap_model(steps.model)
    best.load_state_dict(steps.best_state, strict=False)
    seconds = {
        "time/train_s": clock.seconds["train"],
        "time/eval_s": clock.seconds["eval"],
        "time/save_s": steps.saving_s,
    }
    return FitResult(
        progress.best_epoch,
        progress.best,
        progress.history,
        steps.best_state,
        best,
        seconds,
        best_predictions,
    )


class Clock:
    """Seconds spent inside ``with clock(name)`` blocks, summed per name."""

    def __init__(self):
        self.seconds = {"train": 0.0, "eval": 0.0}

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def evaluated_weights(steps):
    """The weights an epoch is scored and kept with: their average with ``ema``, else
    themselves."""
    return steps.average.applied() if steps.average is not None else contextlib.nullcontext()


def schedule_length(cfg: RunConfig, train_loader, pools) -> int:
    """Optimiser steps of the whole fit, counted as one process would: Accelerate's
    scheduler steps once per process per step."""
    if not pools:
        return cfg.epochs * len(train_loader)
    size = train_loader.batch_sampler.batch_size
    return sum(-(-len(pool) // size) for pool in pools)


def keeps_last(cfg: RunConfig) -> bool:
    """A refit (``lipo.final.refit``) trains on its validation molecules, so their score
    cannot choose an epoch: it runs the epochs it was given and keeps the last."""
    return cfg.phase == "refit"


def record_epoch(
    progress: Progress, epoch: int, metrics: dict[str, float], counts: bool, last: bool = False
) -> bool:
    """Whether ``epoch`` is the best so far (with ``last``: always); ``counts``: a worse epoch
    counts towards early stopping (not while a curriculum's pool still grows)."""
    progress.history.append(metrics)
    if last or not progress.best or metrics["val/mse"] < progress.best["val/mse"]:
        progress.best_epoch, progress.best, progress.waited = epoch, metrics, 0
        return True
    if counts:
        progress.waited += 1
    return False


class Regression:
    """Fine-tuning's loss: the mean squared error of the standardised logD; with
    ``aux_weight`` w > 0 (aux_descriptors) plus w x the descriptor head's loss
    (lipo/models/auxiliary.py), which it keeps as ``aux_loss`` for the epoch's metric."""

    def __init__(self, model, accelerator: Accelerator, lr: float, aux_weight: float = 0.0):
        self.model, self.lr, self.aux_weight = model, lr, aux_weight
        self.unwrapped = accelerator.unwrap_model(model)
        self.aux_loss: torch.Tensor | None = None

    def loss(self, batch: dict) -> torch.Tensor:
        inputs = (batch["input_ids"], batch["attention_mask"], batch.get("features"))
        if self.aux_weight <= 0:
            return mse_loss(self.model(*inputs), self.unwrapped.standardise(batch["labels"]))
        pred, aux = self.model(*inputs, batch["descriptors"])
        self.aux_loss = aux.detach()
        return mse_loss(pred, self.unwrapped.standardise(batch["labels"])) + self.aux_weight * aux

    def diverged(self, value: float, progress: Progress) -> str:
        return (
            f"epoch {progress.epoch + 1}: training loss became {value} "
            f"(lr={self.lr:g}); the trial stops here"
        )

    def after_step(self, progress: Progress) -> bool:
        return False


@torch.no_grad()
def predict(
    model, loader, accelerator: Accelerator | None = None, keep_mode: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions (logD), labels and table positions, gathered from every process (or this
    process's alone without ``accelerator``), each position exactly once: the copies
    Accelerate pads the last batches with are dropped by position (``lipo.runtime.gathering``).
    ``keep_mode``: leave the modules' train/eval modes as they are (MC dropout)."""
    if not keep_mode:
        model.eval()
    unwrapped = accelerator.unwrap_model(model) if accelerator else model
    device = next(unwrapped.parameters()).device  # a loader Accelerate did not prepare
    preds, labels, positions, origins = [], [], [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        z = model(batch["input_ids"], batch["attention_mask"], batch.get("features"))
        preds.append(unwrapped.to_logd(z).float())
        labels.append(batch["labels"].float())
        positions.append(batch["positions"].long())
        origins.append(batch["origin"].long())
    if not positions:  # this process was given no batch
        preds = labels = [torch.zeros(0, device=device)]
        positions = origins = [torch.zeros(0, dtype=torch.long, device=device)]
    pos, pred, y, origin = gather_by_position(
        accelerator, torch.cat(positions), torch.cat(preds), torch.cat(labels), torch.cat(origins)
    )
    # One prediction per molecule: the mean over its rows (canonical and tta spellings).
    return average_by_molecule(pos, origin, pred, y)


def evaluate(model, loader, accelerator: Accelerator, prefix: str):
    pred, y, positions = predict(model, loader, accelerator)
    return regression_metrics(y, pred, prefix), (pred, y, positions)


def param_groups(model, cfg: RunConfig) -> list[dict]:
    """What trains; with ``head_lr_mult`` other than 1 the heads (the regression head, and
    aux_descriptors' descriptor head) are a group of their own at lr x head_lr_mult (heads
    initialised at random on a pretrained encoder). With ``layer_lr_decay`` below 1, one group
    per learning rate down the encoder's layers (``lipo.training.layer_lr``), the heads still
    at lr x head_lr_mult."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if cfg.layer_lr_decay != 1:
        depths = layer_depths(model, cfg.backbone)
        head_lr = cfg.lr * cfg.head_lr_mult
        return decayed_groups(named, depths, cfg.lr, cfg.layer_lr_decay, head_lr, is_head)
    if cfg.head_lr_mult == 1:
        return [{"params": [p for _, p in named]}]
    head = [p for n, p in named if is_head(n)]
    rest = [p for n, p in named if not is_head(n)]
    return [{"params": rest}, {"params": head, "lr": cfg.lr * cfg.head_lr_mult}]


def is_head(name: str) -> bool:
    """The regression head or the descriptor head (PEFT: ...head.modules_to_save...)."""
    return not set(HEADS).isdisjoint(name.split("."))


def trainable_state(model) -> dict[str, torch.Tensor]:
    """What training changed: trainable parameters plus buffers (target statistics)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    names |= {n for n, _ in model.named_buffers()}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names}
