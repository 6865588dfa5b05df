"""(IA)^3: learned per-dimension scaling of keys, values and the feed-forward activation.

Unlike the original study (one scaling vector on the pooled output), this is the method of the
(IA)^3 paper, applied in every layer through PEFT; the heads (``lipo.adapters.HEADS``) train
and are saved alongside.
"""

from peft import IA3Config, get_peft_model
from torch import nn

from lipo.adapters import heads
from lipo.adapters.targets import FFN_OUT, IA3_KV, regex


def apply(model: nn.Module) -> nn.Module:
    config = IA3Config(
        target_modules=regex([IA3_KV, FFN_OUT]),
        feedforward_modules=FFN_OUT,
        modules_to_save=heads(model),
    )
    return get_peft_model(model, config)
