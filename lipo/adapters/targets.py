"""Module names that adapters target, per backbone family.

``tiny`` and ``mini`` (RoFormer) and MoLFormer name their layers alike:
``encoder.layer.N.attention.self.{query,key,value}``, ``encoder.layer.N.attention.output.dense``,
``encoder.layer.N.intermediate.dense`` and ``encoder.layer.N.output.dense`` (feed-forward out).
Patterns are regular expressions over the full module name (PEFT matches them with fullmatch).
"""

from __future__ import annotations

from lipo.errors import ConfigError

LAYER = r".*encoder\.layer\.\d+\."
QKV = LAYER + r"attention\.self\.(query|key|value)"
ATTENTION_OUT = LAYER + r"attention\.output\.dense"
FFN_IN = LAYER + r"intermediate\.dense"
FFN_OUT = LAYER + r"output\.dense"

LORA_TARGETS = {
    "qkv": [QKV],
    "attention": [QKV, ATTENTION_OUT],
    "all": [QKV, ATTENTION_OUT, FFN_IN, FFN_OUT],
}
# (IA)^3 as in its paper: rescale keys, values and the feed-forward activation (the input of
# the feed-forward output layer).
IA3_KV = LAYER + r"attention\.self\.(key|value)"


def regex(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


def lora_targets(name: str) -> str:
    if name not in LORA_TARGETS:
        raise ConfigError(
            f"unknown LoRA targets {name!r}: expected one of {', '.join(LORA_TARGETS)}"
        )
    return regex(LORA_TARGETS[name])
