"""BitFit: train every bias term of the encoder and the whole heads (the regression head, and
the descriptor head of aux_descriptors), nothing else.

PEFT has no BitFit, so it is written here; freezing is by name, which is what makes the
trainable-parameter count exact.
"""

from torch import nn

from lipo.adapters import HEADS


def apply(model: nn.Module) -> nn.Module:
    for name, param in model.named_parameters():
        param.requires_grad_(name.split(".")[0] in HEADS or name.endswith(".bias"))
    return model
