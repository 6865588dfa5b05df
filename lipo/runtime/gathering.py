"""Gathering per-molecule results from every process, each molecule exactly once.

Accelerate's ``gather_for_metrics`` drops the padding of the last batch by a remainder it
computes from ``len(dataset)``; our dataset is the whole table (4200 rows) while a loader
serves a subset of positions (420 validation molecules), so the cut was wrong: under two
processes about 60 molecules (the longest, batched last) silently left ``val/mse``. Every
batch carries its table positions, so duplicates are dropped by position instead.
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator

PAD = -1  # position of a row added only to make the processes' tensors the same length


def gather_by_position(
    accelerator: Accelerator | None, positions: torch.Tensor, *columns: torch.Tensor
) -> tuple[np.ndarray, ...]:
    """(positions, *columns) from every process, each position once (its first occurrence,
    in gathered order: this process's loader order when there is one process).
    ``columns`` are 1-D, aligned with ``positions``."""
    if accelerator is not None and accelerator.num_processes > 1:
        # Processes may hold different counts (uneven_batches): pad to the longest, then gather.
        local = (positions.long(), *columns)
        padded = [accelerator.pad_across_processes(t, dim=0, pad_index=PAD) for t in local]
        positions, *columns = [accelerator.gather(t) for t in padded]
    pos = positions.cpu().numpy()
    cols = [c.cpu().numpy() for c in columns]
    real = np.flatnonzero(pos != PAD)
    _, first = np.unique(pos[real], return_index=True)
    keep = real[np.sort(first)]
    return (pos[keep], *(c[keep] for c in cols))
