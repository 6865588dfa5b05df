"""Masked-language-model training, one loop for pre-training a backbone on a SMILES corpus
and for domain adaptation on a task's training SMILES, on the optimiser steps of
``lipo.training.steps`` (those of fine-tuning too), under Accelerate.

Resumable: every ``save_every`` steps the Accelerate state (model, optimiser, scheduler, RNG)
and the position in the data are saved under ``state_dir`` by ``lipo.training.resume.TrainingState``
(written beside the last state and swapped in, checked against checksums before loading); a
restart continues from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from lipo.data.batching import EncodedMolecules, make_loader
from lipo.runtime.distributed import broadcast
from lipo.training.resume import Progress, TrainingState
from lipo.training.steps import start

IGNORE = -100  # label of unmasked positions: no loss there


@dataclass(frozen=True)
class MLMSettings:
    epochs: int = 1
    batch_size: int = 128
    lr: float = 1e-3
    mask_prob: float = 0.15
    warmup_frac: float = 0.05
    weight_decay: float = 0.01
    seed: int = 0
    log_every: int = 50  # optimiser steps between logged training metrics
    heldout_every: int = 0  # optimiser steps between held-out evaluations (0: epoch ends only)
    save_every: int = 300  # optimiser steps between resumable states (0: never)
    max_steps: int = 0  # stop (and end the schedule) after this many steps (0: epochs decide)
    max_minutes: float = 0  # stop after the step that passes this wall time (0: no limit);
    # a safety for a rented machine's lease: the schedule still runs to ``max_steps``


def mask_tokens(input_ids, attention_mask, tokenizer, mask_prob: float, generator=None):
    """BERT's recipe: of the chosen positions, 80% become <mask>, 10% a random token, 10% stay."""
    special = torch.tensor(tokenizer.all_special_ids)
    candidates = attention_mask.bool() & ~torch.isin(input_ids, special)
    chosen = candidates & (torch.rand(input_ids.shape, generator=generator) < mask_prob)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    roll = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = torch.randint(len(tokenizer), (int(swap.sum()),), generator=generator)
    return masked, labels


def mlm_step_metrics(model, batch, tokenizer, mask_prob, generator=None):
    """(loss, masked-token loss, correct, scored, descriptor loss (0 without a descriptor
    head), shown) for one batch: the loss covers the ``scored`` chosen positions, the
    accuracy (``correct``) only the ``shown`` ones, those the model saw as <mask>. A model
    with a descriptor head (``DescriptorPretraining``) takes the batch's labels as its
    standardised descriptor targets."""
    # BERT leaves 10% of the chosen positions unchanged: predicting those is reading the
    # input, so counting them inflated the reported masked-token accuracy.
    ids, labels = mask_tokens(
        batch["input_ids"].cpu(), batch["attention_mask"].cpu(), tokenizer, mask_prob, generator
    )
    device = batch["input_ids"].device
    ids, labels = ids.to(device), labels.to(device)  # one copy each to the model's device
    extra = {"targets": batch["labels"]} if batch["labels"].dim() == 2 else {}
    out = model(input_ids=ids, attention_mask=batch["attention_mask"], labels=labels, **extra)
    scored = labels != IGNORE
    shown = scored & (ids == tokenizer.mask_token_id)
    correct = (out.logits.argmax(-1) == labels) & shown
    mlm_loss = getattr(out, "mlm_loss", out.loss)
    aux = getattr(out, "descriptor_loss", None)
    aux = torch.zeros((), device=device) if aux is None else aux.detach()
    return out.loss, mlm_loss, correct.sum(), scored.sum(), aux, shown.sum()


@torch.no_grad()
def heldout_metrics(model, loader, tokenizer, mask_prob, accelerator) -> dict[str, float]:
    """Masked-token loss and accuracy with a fixed masking, comparable across evaluations."""
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    totals = torch.zeros(6, dtype=torch.float64, device=accelerator.device)
    for batch in loader:
        _, loss, correct, scored, aux, shown = mlm_step_metrics(
            model, batch, tokenizer, mask_prob, generator
        )
        rows = torch.tensor(len(batch["input_ids"]), device=totals.device)
        totals += torch.stack(
            [
                loss.double() * scored,
                correct.double(),
                scored.double(),
                aux.double() * rows,
                rows.double(),
                shown.double(),
            ]
        )
    totals = accelerator.reduce(totals, reduction="sum")
    model.train()
    metrics = {
        "heldout/mlm_loss": float(totals[0] / totals[2]),
        "heldout/accuracy": float(totals[1] / totals[5]),
    }
    if getattr(accelerator.unwrap_model(model), "descriptor_head", None) is not None:
        metrics["heldout/descriptor_mse"] = float(totals[3] / totals[4])  # standardised units
    return metrics


def train_mlm(
    model,
    tokenizer,
    train_ids: list[list[int]],
    heldout_ids: list[list[int]],
    settings: MLMSettings,
    accelerator: Accelerator,
    log: Callable[[dict, int], None] = lambda metrics, step: None,
    state_dir: Path | None = None,
    desc: str = "mlm",
    train_targets: np.ndarray | None = None,
    heldout_targets: np.ndarray | None = None,
) -> dict[str, float]:
    """Train ``model`` (a ...ForMaskedLM, or a ``DescriptorPretraining`` with its descriptor
    targets per molecule) in place; returns the final held-out metrics and ``steps``, the
    optimiser steps taken."""

    def loader(ids, targets, shuffle):
        targets = np.zeros(len(ids), dtype=np.float32) if targets is None else targets
        return make_loader(
            EncodedMolecules(ids, targets),
            np.arange(len(ids)),
            settings.batch_size,
            tokenizer.pad_token_id,
            shuffle,
            seed=settings.seed,
        )

    train_loader = loader(train_ids, train_targets, True)
    total = settings.epochs * len(train_loader)
    total = min(total, settings.max_steps) if settings.max_steps else total
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    state = (
        None if state_dir is None else TrainingState(state_dir, accelerator, settings.save_every)
    )
    # No epoch-end saves: here save_every 0 means never (to fine-tuning, epoch ends only).
    steps, (train_loader, heldout_loader) = start(
        accelerator,
        model,
        optimizer,
        [train_loader, loader(heldout_ids, heldout_targets, False)],
        total,
        settings.warmup_frac,
        clip=1.0,
        state=state,
        epoch_end_saves=False,
    )
    progress = steps.resume()

    def heldout():
        return heldout_metrics(
            steps.model, heldout_loader, tokenizer, settings.mask_prob, accelerator
        )

    objective = MaskedLM(
        steps.model, tokenizer, settings, log, desc, total, progress.step, accelerator, heldout
    )

    while progress.epoch < settings.epochs and not objective.finished(progress):
        steps.train_epoch(train_loader, progress, objective)
        if objective.out_of_time:
            steps.save(progress)  # where it stopped, mid-epoch: the re-run continues there
        steps.end_epoch(progress)
        log(heldout(), progress.step)
    objective.bar.close()
    return {**heldout(), "steps": progress.step}


class MaskedLM:
    """The masked-LM objective: the loss of a fresh masking of each batch, the running
    training metrics logged every ``log_every`` steps, and the end at ``total_steps`` or at
    the first multiple of ``log_every`` steps past ``max_minutes``."""

    def __init__(
        self,
        model,
        tokenizer,
        settings: MLMSettings,
        log,
        desc: str,
        total_steps: int,
        done_steps: int,
        accelerator: Accelerator,
        heldout: Callable[[], dict] | None = None,
    ):
        self.model, self.tokenizer, self.settings, self.log = model, tokenizer, settings, log
        self.desc, self.total_steps, self.out_of_time = desc, total_steps, False
        self.accelerator, self.heldout = accelerator, heldout
        minutes = settings.max_minutes
        self.deadline = time.monotonic() + 60 * minutes if minutes else None
        self.bar = tqdm(
            total=total_steps,
            initial=done_steps,
            desc=desc,
            unit="step",
            disable=not accelerator.is_main_process,
        )
        # loss, correct, scored, aux, batches, shown; kept on the device, so a step does
        # not wait for the GPU (one sync per step, the finite-loss check)
        self.sums = torch.zeros(6, dtype=torch.float64, device=accelerator.device)

    def loss(self, batch: dict) -> torch.Tensor:
        loss, mlm_loss, correct, scored, aux, shown = mlm_step_metrics(
            self.model, batch, self.tokenizer, self.settings.mask_prob
        )
        self.sums += torch.stack(
            [
                mlm_loss.detach().double() * scored,
                correct.double(),
                scored.double(),
                aux.double(),
                torch.ones_like(aux).double(),
                shown.double(),
            ]
        )
        return loss

    def diverged(self, value: float, progress: Progress) -> str:
        return f"{self.desc}: masked-LM loss became {value}"

    def after_step(self, progress: Progress) -> bool:
        self.bar.update(1)
        if progress.step % self.settings.log_every == 0:
            self.flush(progress.step)
        if progress.step >= self.total_steps:
            return True  # the end is evaluated by the caller
        every = self.settings.heldout_every
        if every and self.heldout and progress.step % every == 0:
            # a fixed masking under its own generator and no dropout: the training's random
            # streams are untouched, so a resumed run still matches an uninterrupted one
            self.log(self.heldout(), progress.step)
        # a safety for a rented machine's lease: the schedule still runs to its last step
        if self.deadline and progress.step % self.settings.log_every == 0:
            # every rank must stop after the same step, or the others wait in the next one's
            # gradient sync forever: rank 0's clock decides, once every log_every steps
            late = time.monotonic() > self.deadline
            self.out_of_time = bool(broadcast(self.accelerator, late))
        return self.out_of_time

    def finished(self, progress: Progress) -> bool:
        return progress.step >= self.total_steps or self.out_of_time

    def flush(self, step: int) -> None:
        loss, correct, scored, aux, batches, shown = self.sums.tolist()
        metrics = {"mlm/loss": loss / scored, "mlm/accuracy": correct / shown}
        if aux:
            metrics["mlm/descriptor_loss"] = aux / batches
        self.log(metrics, step)
        self.bar.set_postfix(loss=f"{loss / scored:.3f}")
        self.sums.zero_()
