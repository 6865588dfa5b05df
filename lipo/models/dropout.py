"""Monte Carlo dropout, the one way lipo does it: active learning's acquisition and the
ensemble's ``--mc-dropout`` spread both draw predictions through here."""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def dropout_only(model: nn.Module):
    """Only the ``nn.Dropout`` modules in train mode for the block, eval mode after it.
    ``model.train()`` would change more than dropout: MoLFormer redraws its attention's random
    features on every pass, which inflates the spread (DESIGN.md, known traps)."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    try:
        yield model
    finally:
        model.eval()


@torch.no_grad()
def mc_dropout(model: nn.Module, predict_once: Callable[[], np.ndarray], passes: int) -> np.ndarray:
    """(passes, molecules): ``predict_once()`` repeated with only dropout on."""
    with dropout_only(model):
        return np.stack([predict_once() for _ in range(passes)])
