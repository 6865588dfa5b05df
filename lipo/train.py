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

from lipo.config import RunConfig
from lipo.errors import TrainingDiverged
from lipo.metrics import regression_metrics

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
        on_epoch: EpochHook | None = None, pools: list[np.ndarray] | None = None) -> FitResult:
    """``pools``: the training positions of each epoch (a curriculum); default: all, always.
    Early stopping waits until the pool stops growing."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = train_loader.batch_sampler
    # Counted as one process would: Accelerate's scheduler steps once per process per step.
    steps = (sum(-(-len(pool) // sampler.batch_size) for pool in pools) if pools
             else cfg.epochs * len(train_loader))
    full_from = next(i for i, p in enumerate(pools, 1) if len(p) == len(pools[-1])) if pools else 1
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_frac * steps), steps)
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler)
    result, waited = FitResult(), 0
    for epoch in range(1, cfg.epochs + 1):
        if pools:
            sampler.positions = pools[epoch - 1]  # the same object inside Accelerate's wrapper
        loss = train_epoch(model, train_loader, optimizer, scheduler, cfg, accelerator, epoch)
        metrics = {"train/loss": loss, **evaluate(model, val_loader, accelerator, "val")[0]}
        result.history.append(metrics)
        if not result.best or metrics["val/mse"] < result.best["val/mse"]:
            result.best_epoch, result.best, waited = epoch, metrics, 0
            result.best_state = trainable_state(accelerator.unwrap_model(model))
        elif epoch >= full_from:
            waited += 1
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if waited >= cfg.patience:
            break
    result.model = accelerator.unwrap_model(model)
    result.model.load_state_dict(result.best_state, strict=False)
    return result


def train_epoch(model, loader, optimizer, scheduler, cfg, accelerator, epoch: int) -> float:
    model.train()
    unwrapped = accelerator.unwrap_model(model)
    total, count = torch.zeros((), dtype=torch.float64), 0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, unit="batch",
               disable=not accelerator.is_main_process)
    for batch in bar:
        pred = model(batch["input_ids"], batch["attention_mask"], batch.get("features"))
        loss = mse_loss(pred, unwrapped.standardise(batch["labels"]))
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"epoch {epoch}: training loss became {loss.item()} "
                                   f"(lr={cfg.lr:g}); the trial stops here")
        accelerator.backward(loss)
        if accelerator.sync_gradients and cfg.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        total += loss.detach().double() * len(pred)
        count += len(pred)
    # Mean over every process's examples, not only the main one's.
    sums = accelerator.reduce(torch.stack([total, torch.tensor(float(count), dtype=torch.float64)]),
                              reduction="sum")
    return float(sums[0] / sums[1])


@torch.no_grad()
def predict(model, loader, accelerator: Accelerator | None = None,
            keep_mode: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions (logD), labels and table positions, gathered from every process (or this
    process's alone without ``accelerator``). ``keep_mode``: leave the modules' train/eval
    modes as they are (MC dropout)."""
    if not keep_mode:
        model.eval()
    unwrapped = accelerator.unwrap_model(model) if accelerator else model
    preds, labels, positions = [], [], []
    for batch in loader:
        z = model(batch["input_ids"], batch["attention_mask"], batch.get("features"))
        gathered = (unwrapped.to_logd(z), batch["labels"], batch["positions"])
        if accelerator is not None:
            gathered = accelerator.gather_for_metrics(gathered)
        for store, value in zip((preds, labels, positions), gathered):
            store.append(value.cpu())
    return tuple(torch.cat(s).numpy() for s in (preds, labels, positions))


def evaluate(model, loader, accelerator: Accelerator, prefix: str):
    pred, y, positions = predict(model, loader, accelerator)
    return regression_metrics(y, pred, prefix), (pred, y, positions)


def trainable_state(model) -> dict[str, torch.Tensor]:
    """What training changed: trainable parameters plus buffers (target statistics)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    names |= {n for n, _ in model.named_buffers()}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names}
