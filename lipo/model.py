"""Encoder + regression head. Targets are standardised with train-split statistics inside
the model, so every prediction that leaves it is in logD units."""
from __future__ import annotations

import torch
from torch import nn


class RegressionHead(nn.Module):
    """Dropout and dense layers on the pooled embedding, as in the original study."""

    def __init__(self, width: int, hidden: int, dropout: float, n_features: int = 0):
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(width + n_features, hidden),
                                 nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled).squeeze(-1)


class LogDRegressor(nn.Module):
    def __init__(self, encoder: nn.Module, head: RegressionHead, y_mean: float, y_std: float):
        super().__init__()
        self.encoder = encoder
        self.head = head
        # Buffers, so that they travel with the head's weights.
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))

    def forward(self, input_ids, attention_mask, features=None) -> torch.Tensor:
        """Standardised prediction; ``to_logd`` turns it into logD."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # mean over real tokens
        if features is not None:
            pooled = torch.cat([pooled, features.to(pooled.dtype)], dim=-1)
        return self.head(pooled)

    def standardise(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.y_mean) / self.y_std

    def to_logd(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.y_std + self.y_mean
