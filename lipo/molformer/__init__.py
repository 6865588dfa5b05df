"""MoLFormer (Ross et al. 2022, IBM's MoLFormer-XL) as our own code: config, model, tokenizer
and the loader of the published weights. Importing this registers the ``molformer`` model type
with transformers' Auto classes, so that folders we save (a run's checkpoint, a masked-LM
adapted encoder) load back without any remote code.
"""

from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

from lipo.molformer.config import MoLFormerConfig
from lipo.molformer.model import MoLFormerForMaskedLM, MoLFormerModel

# Recorded with every run on a MoLFormer backbone: bump it when the computation changes.
IMPLEMENTATION = "lipo.molformer/1"

AutoConfig.register("molformer", MoLFormerConfig, exist_ok=True)
AutoModel.register(MoLFormerConfig, MoLFormerModel, exist_ok=True)
AutoModelForMaskedLM.register(MoLFormerConfig, MoLFormerForMaskedLM, exist_ok=True)

__all__ = ["IMPLEMENTATION", "MoLFormerConfig", "MoLFormerForMaskedLM", "MoLFormerModel"]
