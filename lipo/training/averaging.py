"""``ema``: an exponential moving average of the trainable weights, updated after every
optimiser step, that evaluation scores in place of the weights the optimiser steps.

The decay warms up, min(ema, (1 + n) / (10 + n)) at the n-th update (0.1, 0.18, 0.25, ...,
0.9 at n = 80): a fit of a few hundred steps at ema = 0.999 would otherwise still hold
mostly the initial weights (0.999^300 = 74%).

Only parameters that require gradients are averaged (a PEFT model's adapters and head, a
BitFit's biases): the rest never change. The average is part of the resumable state
(``state_dict``/``load_state_dict``, registered with Accelerate by ``lipo.training.steps``),
so a resumed fit continues the same average. Under several processes the weights are the same
on every rank after each step, so each rank keeps its own average and they stay equal.
"""

from __future__ import annotations

import contextlib

import torch

# The warm-up's (1 + n) / (WARMUP + n): the first update keeps 1/WARMUP of the initial weights.
WARMUP = 10


class WeightAverage:
    """The average of ``model``'s trainable parameters (an unwrapped model: its parameters
    are those Accelerate's wrapper trains), ``decay`` per optimiser step."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.shadow = {n: p.detach().clone() for n, p in self.params.items()}
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (WARMUP + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """After an optimiser step: the average moves towards the weights just stepped."""
        weight = 1.0 - self.current_decay()
        for name, param in self.params.items():
            self.shadow[name].lerp_(param.detach(), weight)
        self.updates += 1

    @contextlib.contextmanager
    def applied(self):
        """The model holds the average inside the block, its own weights again after it."""
        raw = {n: p.detach().clone() for n, p in self.params.items()}
        self.copy_into_params(self.shadow)
        try:
            yield
        finally:
            self.copy_into_params(raw)

    @torch.no_grad()
    def copy_into_params(self, weights: dict[str, torch.Tensor]) -> None:
        for name, param in self.params.items():
            param.copy_(weights[name])

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": {n: t.cpu() for n, t in self.shadow.items()}}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError("the saved weight average is of other parameters than this model's")
        for name, saved in state["shadow"].items():
            self.shadow[name].copy_(saved)
        self.updates = int(state["updates"])
