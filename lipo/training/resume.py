"""A fit that survives its process: Accelerate's state (weights, optimiser, scheduler, RNG)
plus the loop's bookkeeping, saved every few optimiser steps and at every epoch's end.

Layout of ``folder`` (one per fit of one trial):

    current/            accelerator.save_state(), progress.json, best.safetensors,
                        checksums.json (written last: a state without it is incomplete)
    next/               the state being written; renamed to current/ once complete

A process killed while writing leaves ``next/`` behind and ``current/`` intact. A state whose
files do not match their checksums is skipped with a warning before anything is loaded, so
a damaged state never half-restores a model: the fit starts afresh instead. So is a state
saved by another fit: each state carries its fit's identity (strategy, phase of the strategy,
digest of the data it trains on), and only the same fit loads it (influence's retry reads
cached scores and skips the scoring fit: its retrain must not resume the scoring fit's state).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)
PROGRESS = "progress.json"
BEST = "best.safetensors"
CHECKSUMS = "checksums.json"


@dataclass
class Progress:
    """Where a training stands, saved beside its state as progress.json. Masked-LM training
    keeps the first three; fine-tuning also the epoch's loss so far and its early-stopping
    record. The keys are those of the dicts saved before this class: their states resume."""

    epoch: int = 0  # epochs finished: the one under way, counted from 0
    batch: int = 0  # its batches trained on
    step: int = 0  # optimiser steps taken
    loss_sum: float = 0.0  # the epoch's training loss so far, summed over its examples
    count: int = 0  # those examples
    aux_sum: float = 0.0  # the epoch's auxiliary loss so far (aux_descriptors), summed alike
    waited: int = 0  # epochs without a better val/mse (early stopping)
    history: list[dict[str, float]] = field(default_factory=list)  # metrics of each epoch
    best_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)  # metrics of the best epoch

    def to_json(self, identity: dict | None) -> str:
        return json.dumps({**asdict(self), "fit": identity})

    @classmethod
    def from_json(cls, text: str) -> "Progress":
        saved = json.loads(text)
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})


def data_digest(data, groups) -> str:
    """What a fit trains on: each group's positions (the training set, each epoch's pool) with
    their token ids and targets, so a fit on other molecules (the scoring fit and the retrain
    on train + selected) has another digest."""
    h = hashlib.sha256()
    for group in groups:
        group = np.asarray(group, dtype=np.int64)
        h.update(group.tobytes())
        h.update(json.dumps([list(data.ids[p]) for p in group]).encode())
        h.update(data.targets[torch.as_tensor(group)].numpy().tobytes())
    return h.hexdigest()[:16]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS
    }


class TrainingState:
    """``every``: optimiser steps between saves (0: at epoch ends only). Only this process's
    rank 0 writes the bookkeeping; every rank takes part in Accelerate's save and load."""

    def __init__(self, folder: Path, accelerator, every: int, identity: dict | None = None):
        self.folder, self.accelerator, self.every = Path(folder), accelerator, every
        self.identity = identity  # which fit this is; None: any state in the folder is its own

    @property
    def current(self) -> Path:
        return self.folder / "current"

    def usable(self) -> Path | None:
        """current/, or next/ when a kill fell between the two renames of ``save``."""
        for folder in (self.current, self.folder / "next"):
            sums = folder / CHECKSUMS
            if not sums.is_file():
                continue
            try:
                expected = json.loads(sums.read_text())
            except (OSError, ValueError):
                expected = None
            if expected != digest(folder):
                log.warning(
                    "%s: training state damaged (its files differ from %s); skipped",
                    folder,
                    CHECKSUMS,
                )
            elif self.belongs(folder):
                return folder
        return None

    def belongs(self, folder: Path) -> bool:
        """Whether the (complete) state in ``folder`` was saved by this fit."""
        saved = json.loads((folder / PROGRESS).read_text()).get("fit")
        if self.identity is None or saved == self.identity:
            return True
        log.warning(
            "%s: training state of another fit (%s), not of this one (%s); not loaded",
            folder,
            saved,
            self.identity,
        )
        return False

    def restore(self) -> tuple[Progress, dict[str, torch.Tensor]] | None:
        """The saved progress and the weights saved beside it (fine-tuning's best epoch), with
        the model, optimiser, scheduler and RNG loaded; None when there is nothing usable."""
        folder = self.usable()
        if folder is None:
            return None
        self.accelerator.load_state(str(folder))
        progress = Progress.from_json((folder / PROGRESS).read_text())
        best = folder / BEST
        log.warning(
            "resuming from %s: epoch %d, batch %d", folder, progress.epoch + 1, progress.batch
        )
        return progress, (load_file(best) if best.is_file() else {})

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, progress: Progress, best_state: dict[str, torch.Tensor]) -> None:
        staging = self.folder / "next"
        if self.accelerator.is_main_process and staging.exists():
            shutil.rmtree(staging)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(staging))
        if self.accelerator.is_main_process:
            if best_state:
                save_file({k: v.contiguous() for k, v in best_state.items()}, staging / BEST)
            (staging / PROGRESS).write_text(progress.to_json(self.identity))
            (staging / CHECKSUMS).write_text(json.dumps(digest(staging)))
            # Swap: between the two renames only next/ is complete, and usable() finds none
            # in current/; the fit then starts afresh rather than from a half state.
            if self.current.exists():
                shutil.rmtree(self.current)
            staging.rename(self.current)
        self.accelerator.wait_for_everyone()

    def discard(self) -> None:
        if self.accelerator.is_main_process:
            shutil.rmtree(self.folder, ignore_errors=True)
