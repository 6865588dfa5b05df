"""LoRA (and its DoRA / rsLoRA variants) on the encoder's linear layers, through PEFT.

The heads (``HEADS``: regression, and aux_descriptors' descriptor head) sit in
``modules_to_save``, so they train and are saved with the adapter.
"""

from peft import LoraConfig, get_peft_model
from torch import nn

from lipo.adapters import heads
from lipo.adapters.targets import lora_targets


def apply(
    model: nn.Module,
    r: int = 8,
    alpha: float | None = None,
    dropout: float = 0.05,
    targets: str = "qkv",
    use_dora: bool = False,
    use_rslora: bool = False,
) -> nn.Module:
    config = LoraConfig(
        r=int(r),
        lora_alpha=float(alpha if alpha is not None else 2 * r),
        lora_dropout=float(dropout),
        target_modules=lora_targets(targets),
        use_dora=bool(use_dora),
        use_rslora=bool(use_rslora),
        modules_to_save=heads(model),
        bias="none",
    )
    return get_peft_model(model, config)
