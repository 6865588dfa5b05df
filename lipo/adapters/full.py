"""Full fine-tuning: every weight of the encoder and the head trains."""

from torch import nn


def apply(model: nn.Module) -> nn.Module:
    for param in model.parameters():
        param.requires_grad_(True)
    return model
