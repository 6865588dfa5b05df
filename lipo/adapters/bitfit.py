"""BitFit: train every bias term of the encoder and the whole regression head, nothing else.

PEFT has no BitFit, so it is written here; freezing is by name, which is what makes the
trainable-parameter count exact.
"""

from torch import nn


def apply(model: nn.Module) -> nn.Module:
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("head.") or name.endswith(".bias"))
    return model
