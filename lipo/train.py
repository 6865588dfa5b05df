"""fit(): the training loop under Accelerate, the same on a CPU, one GPU or several processes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from accelerate import Accelerator
from torch.nn.functional import mse_loss
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from lipo.augment import average_by_molecule
from lipo.config import RunConfig
from lipo.errors import TrainingDiverged
from lipo.gathering import gather_by_position
from lipo.metrics import regression_metrics
from lipo.resume import TrainingState

# on_epoch(epoch, metrics) runs on every rank after each epoch's evaluation; it may raise
# (Optuna's TrialPruned) to stop the run.
EpochHook = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    best_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)  # val metrics of the best epoch
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)  # trainable weights, CPU
    model: torch.nn.Module | None = None  # unwrapped, holding the best epoch's weights


def fit(model, train_loader, val_loader, cfg: RunConfig, accelerator: Accelerator,
        on_epoch: EpochHook | None = None, pools: list[np.ndarray] | None = None,
        state: TrainingState | None = None) -> FitResult:
    """``pools``: the training positions of each epoch (a curriculum); default: all, always.
    Early stopping waits until the pool stops growing. ``state``: save and resume (a killed
    trial's retry continues from its last saved step and ends where an uninterrupted run ends).
    """
    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    sampler = train_loader.batch_sampler
    # Counted as one process would: Accelerate's scheduler steps once per process per step.
    steps = (sum(-(-len(pool) // sampler.batch_size) for pool in pools) if pools
             else cfg.epochs * len(train_loader))
    full_from = next(i for i, p in enumerate(pools, 1) if len(p) == len(pools[-1])) if pools else 1
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_frac * steps), steps)
    # Accelerate saves and loads every object prepared so far, in order: a trial's second fit
    # (influence's retrain) saved the first fit's model as model.safetensors, and a retry that
    # skips the first fit (cached scores) loaded those weights into the retrain. One fit's
    # state holds that fit alone.
    accelerator.free_memory()
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler)
    loop = Loop(model, optimizer, scheduler, cfg, accelerator, state)
    result, progress = loop.start()
    for epoch, metrics in enumerate(result.history, 1):  # a resumed fit's finished epochs
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    for epoch in range(progress["epoch"] + 1, cfg.epochs + 1):
        if progress["waited"] >= cfg.patience:  # early stop (also of a resumed, finished fit)
            break
        if pools:
            sampler.positions = pools[epoch - 1]  # the same object inside Accelerate's wrapper
        sampler.passes = epoch - 1  # this epoch's order, resumed or not
        loss = loop.train_epoch(train_loader, epoch, progress)
        metrics = {"train/loss": loss, **evaluate(model, val_loader, accelerator, "val")[0]}
        result.history.append(metrics)
        if not result.best or metrics["val/mse"] < result.best["val/mse"]:
            result.best_epoch, result.best, progress["waited"] = epoch, metrics, 0
            result.best_state = trainable_state(accelerator.unwrap_model(model))
        elif epoch >= full_from:
            progress["waited"] += 1
        loop.end_epoch(epoch, progress, result)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    result.model = accelerator.unwrap_model(model)
    result.model.load_state_dict(result.best_state, strict=False)
    return result


class Loop:
    """One fit's optimiser steps, and the saving and restoring of its progress."""

    def __init__(self, model, optimizer, scheduler, cfg, accelerator, state):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.cfg, self.accelerator, self.state = cfg, accelerator, state

    def start(self) -> tuple[FitResult, dict]:
        """A fresh start, or the saved progress (its finished epochs are then replayed to
        the hook: the retried trial's new MLflow run and Optuna trial see every epoch)."""
        progress = {"epoch": 0, "batch": 0, "step": 0, "loss_sum": 0.0, "count": 0,
                    "waited": 0, "history": [], "best_epoch": 0, "best": {}}
        saved = self.state.restore() if self.state is not None else None
        self.result = result = FitResult()
        if saved:
            result.best_state = saved.pop("best_state")
            progress.update(saved)
            result.history = progress["history"]
            result.best_epoch, result.best = progress["best_epoch"], progress["best"]
        return result, progress

    def end_epoch(self, epoch: int, progress: dict, result: FitResult) -> None:
        progress.update(epoch=epoch, batch=0, loss_sum=0.0, count=0, history=result.history,
                        best_epoch=result.best_epoch, best=result.best)
        if self.state is not None:
            self.state.save(progress, result.best_state)

    def train_epoch(self, loader, epoch: int, progress: dict) -> float:
        model, cfg, accelerator = self.model, self.cfg, self.accelerator
        model.train()
        unwrapped = accelerator.unwrap_model(model)
        skip = progress["batch"]
        # on the model's device: adding a GPU loss into a CPU tensor fails
        total = torch.tensor(progress["loss_sum"], dtype=torch.float64, device=accelerator.device)
        count = progress["count"]
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, unit="batch", initial=skip,
                   total=len(loader), disable=not accelerator.is_main_process)
        for index, batch in enumerate(bar, start=skip + 1):
            pred = model(batch["input_ids"], batch["attention_mask"], batch.get("features"))
            loss = mse_loss(pred, unwrapped.standardise(batch["labels"]))
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"epoch {epoch}: training loss became {loss.item()} "
                                       f"(lr={cfg.lr:g}); the trial stops here")
            accelerator.backward(loss)
            if accelerator.sync_gradients and cfg.grad_clip > 0:
                accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            total += loss.detach().double() * len(pred)
            count += len(pred)
            progress.update(batch=index, step=progress["step"] + 1, loss_sum=float(total),
                            count=count)
            if self.state is not None and self.state.due(progress["step"]) and index < len(loader):
                self.state.save(progress, self.result.best_state)
        # Mean over every process's examples, not only the main one's.
        counted = torch.tensor(float(count), dtype=torch.float64, device=total.device)
        sums = accelerator.reduce(torch.stack([total, counted]), reduction="sum")
        return float(sums[0] / sums[1])


@torch.no_grad()
def predict(model, loader, accelerator: Accelerator | None = None,
            keep_mode: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions (logD), labels and table positions, gathered from every process (or this
    process's alone without ``accelerator``), each position exactly once: the copies
    Accelerate pads the last batches with are dropped by position (``lipo.gathering``).
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
    pos, pred, y, origin = gather_by_position(accelerator, torch.cat(positions),
                                              torch.cat(preds), torch.cat(labels),
                                              torch.cat(origins))
    # One prediction per molecule: the mean over its rows (canonical and tta spellings).
    return average_by_molecule(pos, origin, pred, y)


def evaluate(model, loader, accelerator: Accelerator, prefix: str):
    pred, y, positions = predict(model, loader, accelerator)
    return regression_metrics(y, pred, prefix), (pred, y, positions)


def param_groups(model, cfg: RunConfig) -> list[dict]:
    """What trains; with ``head_lr_mult`` other than 1 the regression head is a group of its
    own at lr x head_lr_mult (a head initialised at random on a pretrained encoder)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if cfg.head_lr_mult == 1:
        return [{"params": [p for _, p in named]}]
    head = [p for n, p in named if "head" in n.split(".")]  # PEFT: ...head.modules_to_save...
    rest = [p for n, p in named if "head" not in n.split(".")]
    return [{"params": rest}, {"params": head, "lr": cfg.lr * cfg.head_lr_mult}]


def trainable_state(model) -> dict[str, torch.Tensor]:
    """What training changed: trainable parameters plus buffers (target statistics)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    names |= {n for n, _ in model.named_buffers()}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names}
