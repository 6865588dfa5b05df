"""Encoder + regression head. Targets are standardised with train-split statistics inside
the model, so every prediction that leaves it is in logD units."""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.roformer.modeling_roformer import RoFormerSinusoidalPositionalEmbedding


class RegressionHead(nn.Module):
    """Dropout and dense layers on the pooled embedding, as in the original study."""

    def __init__(self, width: int, hidden: int, dropout: float, n_features: int = 0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(width + n_features, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled).squeeze(-1)


class LogDRegressor(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        head: RegressionHead,
        y_mean: float,
        y_std: float,
        feature_mean=None,
        feature_std=None,
        feature_clip: float | None = None,
        descriptor_head: nn.Module | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.head = head
        # aux_descriptors' training aid (lipo/models/auxiliary.py); None: none
        self.descriptor_head = descriptor_head
        # rdkit2d: undefined descriptors (NaN) become 0, the training median, and standardised
        # values are clipped to +-feature_clip. Set from the config, so a checkpoint rebuilds it.
        self.feature_clip = feature_clip
        # Buffers, so that they travel with the head's weights.
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))
        if feature_mean is not None:  # descriptors, standardised with train statistics
            self.register_buffer("feature_mean", torch.as_tensor(feature_mean, dtype=torch.float32))
            self.register_buffer("feature_std", torch.as_tensor(feature_std, dtype=torch.float32))

    def forward(self, input_ids, attention_mask, features=None, descriptors=None):
        """Standardised prediction; ``to_logd`` turns it into logD. With ``descriptors`` (raw
        auxiliary targets, aux_descriptors), the pair (prediction, auxiliary loss): computed
        in the forward pass, so Accelerate's and PEFT's wrappers see the descriptor head used."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # mean over real tokens
        head_input = pooled
        if hasattr(self, "feature_mean"):
            if features is None:
                raise ValueError("this model was trained with descriptor features; pass them")
            scaled = self.scale_features(features.to(pooled.dtype))
            head_input = torch.cat([pooled, scaled], dim=-1)
        prediction = self.head(head_input)
        if descriptors is None:
            return prediction
        if self.descriptor_head is None:
            raise ValueError("this model has no descriptor head (aux_descriptors is 0)")
        return prediction, self.descriptor_head(pooled, descriptors)  # the encoding alone

    def scale_features(self, features: torch.Tensor) -> torch.Tensor:
        """Descriptors as the head sees them: standardised with training statistics."""
        scaled = (features - self.feature_mean) / self.feature_std
        if self.feature_clip is None:
            return scaled
        return torch.nan_to_num(scaled, nan=0.0).clamp(-self.feature_clip, self.feature_clip)

    def set_target_statistics(self, y) -> None:
        """Standardise targets with the mean and (population) std of ``y``: the labels the
        model may see (active learning: its labelled molecules only)."""
        y = torch.as_tensor(y, dtype=torch.float64)
        self.y_mean.fill_(float(y.mean()))
        self.y_std.fill_(float(y.std(unbiased=False)))

    def standardise(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.y_mean) / self.y_std

    def to_logd(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.y_std + self.y_mean


def assemble(
    backbone, cfg, y_mean: float, y_std: float, feature_stats=None, descriptor_stats=None
) -> nn.Module:
    """Encoder + head (+ with ``cfg.aux_descriptors`` the descriptor head), then the adapter
    of ``cfg`` (which decides what trains).

    ``feature_stats``: (mean, std) of the head's descriptor features, or None for none.
    ``descriptor_stats``: (mean, std) of the auxiliary descriptors over the training split,
    for a new descriptor head (``lipo.models.auxiliary.build``)."""
    from lipo.adapters import ADAPTERS
    from lipo.data.features import feature_clip
    from lipo.models import auxiliary

    width = backbone.hidden_size
    n_features = 0 if feature_stats is None else len(feature_stats[0])
    head = RegressionHead(width, cfg.head_hidden or width, cfg.dropout, n_features)
    model = LogDRegressor(
        backbone.encoder,
        head,
        y_mean,
        y_std,
        *(feature_stats if feature_stats is not None else (None, None)),
        feature_clip=feature_clip(cfg.head_features),
        descriptor_head=(
            auxiliary.build(backbone, descriptor_stats) if cfg.aux_descriptors > 0 else None
        ),
    )
    return freeze_position_tables(ADAPTERS.get(cfg.adapter).apply(model, **cfg.adapter_args))


def freeze_position_tables(model: nn.Module) -> nn.Module:
    """RoFormer's sinusoidal position table is a fixed function of position (its rotary
    angles): it must not train, decay or count as trainable. Built fresh it is frozen, but a
    save_pretrained load and the `full` adapter (every parameter) turn it back on."""
    for module in model.modules():
        if isinstance(module, RoFormerSinusoidalPositionalEmbedding):
            module.weight.requires_grad_(False)
    return model
