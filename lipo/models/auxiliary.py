"""Descriptor regression as an auxiliary fine-tuning target (``aux_descriptors``).

The shipped encoders were pre-trained to predict 11 RDKit descriptors from the pooled
embedding beside the masked-LM loss (lipo/masked_lm/). With ``aux_descriptors`` = w > 0,
fine-tuning's loss is the logD MSE + w x the MSE of the same standardised descriptors, so the
encoder keeps the representation it learnt there while it learns logD. A training aid only:
the regression head's output, predictions, metrics and served models are as without it.

Which head, and in which units:

- a backbone whose folder ships the pre-trained descriptor head and, in its card, the
  statistics pre-training standardised with (``mini``, ``small``, a ``pretrain`` output):
  that head, and those statistics. The head predicts in pre-training's units, so its loss
  starts where pre-training left it; the training split's statistics would shift every target;
- any other (``tiny``, MoLFormer, an ``mlm`` adaptation, which saves no descriptor head): a new
  linear head on the pooled embedding, the targets standardised with the training split's
  mean and std (``lipo.masked_lm.descriptor_targets.standardise``: the descriptors need no
  label, so every training molecule counts, also under active learning).

The head trains with every adapter (``lipo.adapters.HEADS``) and is saved with the model;
the standardisation travels with it as buffers.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from lipo.masked_lm.continued import read_card, saved_descriptor_head
from lipo.masked_lm.descriptor_targets import NAMES, standardise
from lipo.masked_lm.model import descriptor_head, descriptor_mse

log = logging.getLogger(__name__)


class DescriptorHead(nn.Module):
    """Standardised descriptors from the pooled embedding; its forward is the auxiliary loss."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        # Buffers, so that the units travel with the weights.
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, pooled: torch.Tensor, descriptors: torch.Tensor) -> torch.Tensor:
        """MSE between the predicted and the actual standardised descriptors (``descriptors``:
        raw, as ``lipo.data.features.pretraining_descriptors`` computes them), over the known
        ones."""
        return descriptor_mse(self.net(pooled), (descriptors - self.mean) / self.std)


def training_statistics(table: np.ndarray, train) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the descriptors over the training positions, as pre-training
    standardises its corpus."""
    _, mean, std = standardise(np.asarray(table)[train])
    return mean, std


def build(backbone, train_stats=None) -> DescriptorHead:
    """The descriptor head for ``backbone`` (see the module's text). ``train_stats``: the
    training split's (mean, std), used by a new head; None when rebuilding a checkpoint,
    whose saved buffers replace the placeholders."""
    width = backbone.hidden_size
    shipped = pretrained_head(backbone.folder, width)
    if shipped is not None:
        net, mean, std = shipped
        return DescriptorHead(net, mean, std)
    placeholders = (np.zeros(len(NAMES)), np.ones(len(NAMES)))
    mean, std = train_stats if train_stats is not None else placeholders
    return DescriptorHead(nn.Linear(width, len(NAMES)), mean, std)


def pretrained_head(folder, width: int):
    """(head with pre-training's weights, mean, std) from an encoder folder, or None where it
    has no descriptor head, or one that does not predict this version's descriptors."""
    weights = saved_descriptor_head(folder) if folder is not None else None
    if weights is None:
        return None
    stats = read_card(folder).get("descriptors") or {}
    net = descriptor_head(width, len(NAMES))
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    if stats.get("names") != list(NAMES) or {k: v.shape for k, v in weights.items()} != shapes:
        log.warning(
            "%s: its descriptor head predicts other descriptors than %s (or its card lacks "
            "their statistics); aux_descriptors trains a new head",
            folder,
            ", ".join(NAMES),
        )
        return None
    net.load_state_dict(weights)
    return net, np.asarray(stats["mean"]), np.asarray(stats["std"])
