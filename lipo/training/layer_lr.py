"""``layer_lr_decay``: layer-wise learning-rate decay. The encoder's top layer trains at lr, the
one below at lr x decay, ... the embeddings at lr x decay^n_layers: the layers near the input
hold the most general features of pre-training and move least.

A parameter's layer is the index in its name (``encoder.layer.3.attention...``,
``...layers.3...``; PEFT's ``base_model.model.`` prefix and suffixes do not matter). A
parameter without one sits by its place in the model's parameter order (the order its modules
were registered in): before the first layer (embeddings, positions) below layer 0, after the
layers (MoLFormer's final LayerNorm) with the top layer.
"""

from __future__ import annotations

import re

import torch

from lipo.errors import ConfigError

LAYER_INDEX = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def layer_depths(model: torch.nn.Module, backbone: str) -> dict[str, int]:
    """Each parameter's distance below the top layer: 0 for the top layer (and what follows
    it), n_layers for the embeddings (and whatever precedes layer 0). Frozen parameters count
    too: they place the layers a LoRA model trains only parts of."""
    names = [n for n, _ in model.named_parameters()]
    indices = {n: int(m.group(1)) for n in names if (m := LAYER_INDEX.search(n))}
    if not indices:
        raise ConfigError(
            f"layer_lr_decay needs the encoder's layers, and backbone {backbone!r} names "
            "none of its parameters '...layer.N...' or '...layers.N...'; "
            "use layer_lr_decay 1 (off) with it"
        )
    top = max(indices.values())
    depths, past_first_layer = {}, False
    for name in names:
        if name in indices:
            past_first_layer = True
            depths[name] = top - indices[name]
        else:
            depths[name] = 0 if past_first_layer else top + 1
    return depths


def decayed_groups(
    named: list[tuple[str, torch.nn.Parameter]],
    depths: dict[str, int],
    lr: float,
    decay: float,
    head_lr: float,
    is_head,
) -> list[dict]:
    """One optimiser group per learning rate: the top layer's first (``train/lr`` follows the
    first group: lr itself), the head's last, or merged with the top's at the same rate."""

    def rank(item):
        name = item[0]
        return (1, 0) if is_head(name) else (0, depths[name])

    groups: dict[float, list] = {}
    for name, param in sorted(named, key=rank):
        rate = head_lr if is_head(name) else lr * decay ** depths[name]
        groups.setdefault(rate, []).append(param)
    return [{"params": params, "lr": rate} for rate, params in groups.items()]
