"""Masked-language-model training, one loop for pre-training a backbone on a SMILES corpus
and for domain adaptation on a task's training SMILES, under Accelerate.

Resumable: every ``save_every`` steps the Accelerate state (model, optimiser, scheduler, RNG)
and the position in the data are saved under ``state_dir`` by ``lipo.resume.TrainingState``
(written beside the last state and swapped in, checked against checksums before loading); a
restart continues from there.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from lipo.batching import EncodedMolecules, make_loader
from lipo.errors import TrainingDiverged
from lipo.resume import TrainingState

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
    save_every: int = 300  # optimiser steps between resumable states (0: never)


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
    """(loss, correct, scored, shown) for one batch: the loss covers the ``scored`` chosen
    positions, the accuracy (``correct``) only the ``shown`` ones, those the model saw as
    <mask>."""
    # BERT leaves 10% of the chosen positions unchanged: predicting those is reading the
    # input, so counting them inflated the reported masked-token accuracy.
    ids, labels = mask_tokens(batch["input_ids"].cpu(), batch["attention_mask"].cpu(), tokenizer,
                              mask_prob, generator)
    device = batch["input_ids"].device
    out = model(input_ids=ids.to(device), attention_mask=batch["attention_mask"],
                labels=labels.to(device))
    scored = labels.to(device) != IGNORE
    shown = scored & (ids.to(device) == tokenizer.mask_token_id)
    correct = (out.logits.argmax(-1) == labels.to(device)) & shown
    return out.loss, correct.sum(), scored.sum(), shown.sum()


@torch.no_grad()
def heldout_metrics(model, loader, tokenizer, mask_prob, accelerator) -> dict[str, float]:
    """Masked-token loss and accuracy with a fixed masking, comparable across evaluations."""
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    totals = torch.zeros(4, dtype=torch.float64, device=accelerator.device)
    for batch in loader:
        loss, correct, scored, shown = mlm_step_metrics(model, batch, tokenizer, mask_prob,
                                                        generator)
        totals += torch.stack([loss.double() * scored, correct.double(), scored.double(),
                               shown.double()])
    totals = accelerator.reduce(totals, reduction="sum")
    model.train()
    return {"heldout/mlm_loss": float(totals[0] / totals[2]),
            "heldout/accuracy": float(totals[1] / totals[3])}


def train_mlm(model, tokenizer, train_ids: list[list[int]], heldout_ids: list[list[int]],
              settings: MLMSettings, accelerator: Accelerator,
              log: Callable[[dict, int], None] = lambda metrics, step: None,
              state_dir: Path | None = None, desc: str = "mlm") -> dict[str, float]:
    """Train ``model`` (a ...ForMaskedLM) in place; returns the final held-out metrics."""
    def loader(ids, shuffle):
        data = EncodedMolecules(ids, np.zeros(len(ids), dtype=np.float32))
        return make_loader(data, np.arange(len(ids)), settings.batch_size,
                           tokenizer.pad_token_id, shuffle, seed=settings.seed)
    train_loader, heldout_loader = loader(train_ids, True), loader(heldout_ids, False)
    sampler = train_loader.batch_sampler
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    steps = settings.epochs * len(train_loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_frac * steps), steps)
    model, optimizer, train_loader, heldout_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, heldout_loader, scheduler)
    state = None if state_dir is None else TrainingState(state_dir, accelerator,
                                                         settings.save_every)
    progress = (state and state.restore()) or {"epoch": 0, "batch": 0, "step": 0}
    bar = tqdm(total=steps, initial=progress["step"], desc=desc, unit="step",
               disable=not accelerator.is_main_process)
    model.train()
    for epoch in range(progress["epoch"], settings.epochs):
        sampler.passes = epoch  # the same order as an uninterrupted run
        skip = progress["batch"] if epoch == progress["epoch"] else 0
        batches = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
        sums = torch.zeros(4, dtype=torch.float64)
        for index, batch in enumerate(batches, start=skip):
            loss, correct, scored, shown = mlm_step_metrics(model, batch, tokenizer,
                                                            settings.mask_prob)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"{desc}: masked-LM loss became {loss.item()}")
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress = {"epoch": epoch, "batch": index + 1, "step": progress["step"] + 1}
            sums += torch.tensor([float(loss) * float(scored), float(correct), float(scored),
                                  float(shown)])
            bar.update(1)
            if progress["step"] % settings.log_every == 0:
                log({"mlm/loss": float(sums[0] / sums[2]), "mlm/accuracy": float(sums[1] / sums[3])},
                    progress["step"])
                bar.set_postfix(loss=f"{float(sums[0] / sums[2]):.3f}")
                sums.zero_()
            if state is not None and state.due(progress["step"]):
                state.save(progress, {})
        progress = {"epoch": epoch + 1, "batch": 0, "step": progress["step"]}
        log(heldout_metrics(model, heldout_loader, tokenizer, settings.mask_prob, accelerator),
            progress["step"])
    bar.close()
    return heldout_metrics(model, heldout_loader, tokenizer, settings.mask_prob, accelerator)
