"""Optimiser steps under Accelerate: the one engine of fine-tuning (``lipo.training.fit``) and of
masked-LM training (``lipo.masked_lm.loop``).

``start`` builds the linear warm-up schedule and prepares model, optimiser, loaders and
schedule under Accelerate. ``Steps`` resumes the last saved state, then trains an epoch's
batches (a resumed epoch skips those already done), one optimiser step each: the loss checked
finite, the gradients clipped, optimiser and schedule stepped, the state saved every few
steps. What differs between the two trainings comes from an ``Objective``. Fine-tuning's
``ema`` keeps a moving average of the weights beside them (``lipo.training.averaging``), saved
and restored with the rest of the state.
"""

from __future__ import annotations

import time
from typing import Protocol

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from lipo.errors import TrainingDiverged
from lipo.training.averaging import WeightAverage
from lipo.training.resume import Progress, TrainingState

# Optimiser steps between two points of the per-step curves (train/step_loss, train/lr): ~10
# an epoch on Lipophilicity's 3,360 training molecules in batches of 32, one MLflow write each.
STEP_CURVE_EVERY = 10


class Objective(Protocol):
    """What one kind of training computes; the engine does the rest. An objective with an
    auxiliary term (fine-tuning's aux_descriptors) also sets ``aux_loss`` in ``loss``: that
    batch's auxiliary loss, detached, unweighted; the engine sums it per epoch as it sums the
    loss, and saves the sum with the progress."""

    def loss(self, batch: dict) -> torch.Tensor:
        """The loss to step on, from the model in training mode."""

    def diverged(self, value: float, progress: Progress) -> str:
        """Why the run stops when the loss became ``value`` (NaN or infinite)."""

    def after_step(self, progress: Progress) -> bool:
        """After each optimiser step (logging); True stops the epoch there."""


def linear_warmup(optimizer, warmup_frac: float, total_steps: int):
    """Up from zero over the first ``warmup_frac`` of the steps, then down to zero at the last."""
    return get_linear_schedule_with_warmup(optimizer, int(warmup_frac * total_steps), total_steps)


def start(
    accelerator: Accelerator,
    model,
    optimizer,
    loaders: list,
    total_steps: int,
    warmup_frac: float,
    **options,
) -> tuple[Steps, list]:
    """The engine on Accelerate's copies, and the prepared loaders (the first trains).
    ``options``: those of ``Steps``."""
    sampler = loaders[0].batch_sampler  # the same object inside Accelerate's wrapper
    scheduler = linear_warmup(optimizer, warmup_frac, total_steps)
    # Accelerate saves and loads every object prepared so far, in order: a trial's second fit
    # (influence's retrain) saved the first fit's model as model.safetensors, and a retry that
    # skips the first fit (cached scores) loaded those weights into the retrain. One
    # training's state holds that training alone.
    accelerator.free_memory()
    # free_memory keeps the objects registered for checkpointing (an earlier fit's weight
    # average): Accelerate has no call that forgets them.
    accelerator._custom_objects.clear()
    model, optimizer, *loaders, scheduler = accelerator.prepare(
        model, optimizer, *loaders, scheduler
    )
    return Steps(accelerator, model, optimizer, scheduler, sampler=sampler, **options), loaders


class Steps:
    """One training's optimiser steps, and the saving and restoring of its progress.

    ``clip``: the largest gradient norm (0: none). ``state``: where the progress is saved
    every ``state.every`` steps (None: nowhere). ``epoch_end_saves``: every epoch's end is
    saved too (by ``end_epoch``); a due save at an epoch's last batch then waits for it.
    ``sampler``: the training batches' sampler, told each epoch's number. ``on_step``:
    ``(metrics, step)`` every STEP_CURVE_EVERY optimiser steps, with this process's batch loss
    and the learning rate at the global step (rank 0's MLflow logger; None: no curve).
    ``ema``: the decay of ``average``, the weights' moving average updated after each optimiser
    step and saved with the state (0: none)."""

    def __init__(
        self,
        accelerator: Accelerator,
        model,
        optimizer,
        scheduler,
        clip: float = 0.0,
        state: TrainingState | None = None,
        sampler=None,
        epoch_end_saves: bool = True,
        on_step=None,
        ema: float = 0.0,
    ):
        self.accelerator, self.model, self.optimizer = accelerator, model, optimizer
        self.scheduler, self.clip, self.state, self.sampler = scheduler, clip, state, sampler
        self.epoch_end_saves, self.on_step = epoch_end_saves, on_step
        # Weights saved beside each state: fine-tuning's best epoch so far.
        self.best_state: dict[str, torch.Tensor] = {}
        self.saving_s = 0.0  # spent writing states: bookkeeping, not training
        self.average = None
        if ema:  # registered before resume(): load_state restores it with the model
            self.average = WeightAverage(accelerator.unwrap_model(model), ema)
            accelerator.register_for_checkpointing(self.average)

    def resume(self) -> Progress:
        """Where the last saved state stopped, its model, optimiser, schedule and RNG loaded;
        a fresh start when there is none."""
        saved = self.state.restore() if self.state is not None else None
        if saved is None:
            return Progress()
        progress, self.best_state = saved
        return progress

    def train_epoch(
        self, loader, progress: Progress, objective: Objective, bar: str | None = None
    ) -> None:
        """Epoch ``progress.epoch``'s batches not yet trained on, one step each, until the
        objective stops it. ``bar``: the title of a progress bar over its batches."""
        if self.sampler is not None:
            self.sampler.passes = progress.epoch  # the order of an uninterrupted run
        self.model.train()
        skip = progress.batch
        batches = self.accelerator.skip_first_batches(loader, skip) if skip else loader
        if bar is not None:
            batches = tqdm(
                batches,
                desc=bar,
                leave=False,
                unit="batch",
                initial=skip,
                total=len(loader),
                disable=not self.accelerator.is_main_process,
            )
        # On the model's device (a GPU loss added to a CPU tensor fails), read back only for a
        # save and at the end: a step need not wait for the GPU.
        device = self.accelerator.device
        total = torch.tensor(progress.loss_sum, dtype=torch.float64, device=device)
        aux_total = torch.tensor(progress.aux_sum, dtype=torch.float64, device=device)
        for index, batch in enumerate(batches, start=skip + 1):
            loss, rows = objective.loss(batch), len(batch["input_ids"])
            self.step(loss, objective, progress)
            total += loss.detach().double() * rows
            aux = getattr(objective, "aux_loss", None)
            if aux is not None:
                aux_total += aux.double() * rows
            progress.batch, progress.step = index, progress.step + 1
            progress.count += rows
            if self.on_step is not None and progress.step % STEP_CURVE_EVERY == 0:
                self.on_step(
                    {
                        "train/step_loss": loss.item(),  # waits for the GPU: 1 step in 10
                        "train/lr": self.scheduler.get_last_lr()[0],
                    },
                    progress.step,
                )
            if self.due(progress, len(loader)):
                progress.loss_sum, progress.aux_sum = float(total), float(aux_total)
                self.save(progress)
            if objective.after_step(progress):
                break
        progress.loss_sum, progress.aux_sum = float(total), float(aux_total)

    def step(self, loss: torch.Tensor, objective: Objective, progress: Progress) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(objective.diverged(loss.item(), progress))
        self.accelerator.backward(loss)
        if self.clip > 0 and self.accelerator.sync_gradients:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.average is not None and self.accelerator.sync_gradients:
            self.average.update()

    def due(self, progress: Progress, epoch_length: int) -> bool:
        if self.state is None or not self.state.due(progress.step):
            return False
        return progress.batch < epoch_length or not self.epoch_end_saves

    def epoch_loss(self, progress: Progress) -> float:
        """The epoch's mean training loss over every process's examples, not only this one's."""
        return self.epoch_mean(progress.loss_sum, progress)

    def epoch_aux_loss(self, progress: Progress) -> float:
        """The epoch's mean auxiliary loss (``Objective.aux_loss``), over every process's."""
        return self.epoch_mean(progress.aux_sum, progress)

    def epoch_mean(self, total: float, progress: Progress) -> float:
        sums = torch.tensor(
            [total, float(progress.count)],
            dtype=torch.float64,
            device=self.accelerator.device,
        )
        sums = self.accelerator.reduce(sums, reduction="sum")
        return float(sums[0] / sums[1])

    def end_epoch(self, progress: Progress) -> None:
        """The next epoch starts at its first batch (saved, where epoch ends are)."""
        progress.epoch, progress.batch, progress.loss_sum, progress.count = (
            progress.epoch + 1,
            0,
            0.0,
            0,
        )
        progress.aux_sum = 0.0
        if self.epoch_end_saves:
            self.save(progress)

    def save(self, progress: Progress) -> None:
        if self.state is not None:
            started = time.perf_counter()
            self.state.save(progress, self.best_state)
            self.saving_s += time.perf_counter() - started
