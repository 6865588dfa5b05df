"""Masked-LM plus descriptor regression: one encoder, two heads, one loss.

The descriptor head reads the same mean-pooled embedding the regression head of fine-tuning
reads, so what it learns is where the fine-tuned head will look. Only the masked-LM model is
saved as the backbone (``save_pretrained``); the descriptor head is saved beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PretrainingOutput:
    loss: torch.Tensor  # masked-LM loss + weight x descriptor loss
    logits: torch.Tensor
    mlm_loss: torch.Tensor
    descriptor_loss: torch.Tensor | None


def descriptor_head(width: int, n_targets: int) -> nn.Sequential:
    """The descriptor head of pre-training, also what fine-tuning's ``aux_descriptors`` loads
    from a shipped encoder (lipo/models/auxiliary.py): its layout is the saved file's."""
    return nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, n_targets))


def descriptor_mse(predicted: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the known standardised targets: a molecule RDKit could not
    parse has NaN targets, and no loss."""
    known = torch.isfinite(targets)
    error = (predicted - torch.nan_to_num(targets)) ** 2
    return (error * known).sum() / known.sum().clamp(min=1)


class DescriptorPretraining(nn.Module):
    def __init__(self, mlm: nn.Module, n_targets: int, weight: float):
        super().__init__()
        self.mlm = mlm
        width = mlm.config.hidden_size
        self.descriptor_head = descriptor_head(width, n_targets)
        self.weight = weight

    @property
    def config(self):
        return self.mlm.config

    def forward(self, input_ids, attention_mask, labels=None, targets=None) -> PretrainingOutput:
        out = self.mlm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,
            output_hidden_states=True,
        )
        hidden = out.hidden_states[-1]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        aux = None
        if targets is not None:
            aux = descriptor_mse(self.descriptor_head(pooled), targets)
        loss = out.loss if aux is None else out.loss + self.weight * aux
        return PretrainingOutput(loss, out.logits, out.loss, aux)
