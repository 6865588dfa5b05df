"""One frozen ``RunConfig`` per trial; flattened into MLflow params as it is."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from lipo.errors import ConfigError


@dataclass(frozen=True)
class RunConfig:
    study: str = "baseline"
    strategy: str = "all"  # which examples, in what order
    adapter: str = "full"  # how the weights change
    backbone: str = "mini"
    data: str = ""  # resolved path of the data file
    split: str = "random"  # random | scaffold | FILE.json
    split_seed: int = 0  # seeds the random split; the same in search and final phases
    seed: int = 0  # seeds initialisation, dropout and batch order
    phase: str = "search"  # search | final | refit (a final seed on training + validation)
    epochs: int = 10  # at most; early stopping may end sooner
    patience: int = 3  # epochs without a better val/mse before stopping
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 3e-4
    head_lr_mult: float = 1.0  # the regression head's learning rate is lr x this
    # Layer-wise learning-rate decay: the encoder's top layer at lr, each layer below x this
    # once more, the embeddings at lr x this^n_layers (1: every layer at lr).
    layer_lr_decay: float = 1.0
    # Decay per optimiser step of the weights' moving average that evaluation scores and the
    # best epoch keeps (0: none; warmed up, lipo.training.averaging).
    ema: float = 0.0
    weight_decay: float = 0.01
    warmup_frac: float = 0.1  # of all optimiser steps; then linear decay to zero
    grad_clip: float = 1.0
    dropout: float = 0.1  # in the regression head
    head_hidden: int = 0  # 0: the encoder's width
    head_features: str = ""  # "" | "rdkit" | "rdkit2d": descriptors concatenated before the head
    augment: int = 0  # randomised SMILES per training molecule per epoch, beside the canonical
    tta: int = 0  # randomised SMILES averaged with the canonical one in evaluation and predict
    # Weight of an auxiliary loss in fine-tuning: the MSE of the 11 standardised RDKit
    # descriptors the shipped encoders were pre-trained to predict (lipo/models/descriptor_head.py),
    # added to the logD MSE; a training aid only (predictions and metrics stay logD's). 0: off.
    aux_descriptors: float = 0.0
    strict: bool = False  # reject a data file with any invalid row
    adapter_args: dict[str, Any] = field(default_factory=dict)
    strategy_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for knob in ("augment", "tta"):  # randomised SMILES per molecule
            if not isinstance(getattr(self, knob), int) or getattr(self, knob) < 0:
                raise ConfigError(
                    f"{knob} must be a whole number >= 0, got {getattr(self, knob)!r}"
                )
        if not is_number(self.ema) or not 0 <= self.ema < 1:
            raise ConfigError(f"ema must be a decay in [0, 1) (0: off), got {self.ema!r}")
        if not is_number(self.layer_lr_decay) or not 0 < self.layer_lr_decay <= 1:
            raise ConfigError(
                f"layer_lr_decay must be in (0, 1] (1: off), got {self.layer_lr_decay!r}"
            )
        weight = self.aux_descriptors
        if not is_number(weight) or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"aux_descriptors must be a finite number >= 0, got {weight!r}")

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def with_overrides(self, overrides: dict[str, Any]) -> "RunConfig":
        """Apply a search space's values: plain field names, or 'adapter.r', 'strategy.k'."""
        plain, nested = (
            {},
            {"adapter": dict(self.adapter_args), "strategy": dict(self.strategy_args)},
        )
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in overrides.items():
            group, _, knob = key.partition(".")
            if knob and group in nested:
                nested[group][knob] = value
            elif key == "epochs":  # a knob of the space, never above --epochs (the most per trial)
                plain[key] = min(int(value), self.epochs)
            elif key in names:
                plain[key] = value
            else:
                raise ConfigError(f"unknown setting {key!r} in a search space")
        return self.replace(
            **plain, adapter_args=nested["adapter"], strategy_args=nested["strategy"]
        )

    def flat(self) -> dict[str, Any]:
        """MLflow params: one key per knob, 'adapter.r' style for nested ones."""
        out = {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if k not in ("adapter_args", "strategy_args")
        }
        out.update({f"adapter.{k}": v for k, v in self.adapter_args.items()})
        out.update({f"strategy.{k}": v for k, v in self.strategy_args.items()})
        return out

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls(**json.loads(text))


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
