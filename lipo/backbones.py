"""Encoders by name: ``tiny`` and ``mini`` (our own RoFormer-style encoders, built from a
config), ``molformer`` (the hub model, pinned), or any folder saved with ``save_pretrained``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import (AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase,
                          RoFormerConfig, RoFormerModel)

from lipo.errors import ConfigError
from lipo.tokenizer import build_tokenizer

MOLFORMER_ID = "ibm/MoLFormer-XL-both-10pct"
MOLFORMER_REVISION = "7b12d946c181a37f6012b9dc3b002275de070314"


@dataclass
class Backbone:
    encoder: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str  # registry name, hub id or folder
    revision: str | None = None

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size


def roformer(corpus: Sequence[str], layers: int, width: int, heads: int) -> Backbone:
    """MoLFormer-style encoder: rotary position embeddings, GELU feed-forward 4x wide."""
    tokenizer = build_tokenizer(corpus)
    config = RoFormerConfig(vocab_size=len(tokenizer), embedding_size=width, hidden_size=width,
                            num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * width, max_position_embeddings=512,
                            pad_token_id=tokenizer.pad_token_id, hidden_dropout_prob=0.1,
                            attention_probs_dropout_prob=0.1)
    return Backbone(RoFormerModel(config), tokenizer, "")


def tiny(corpus: Sequence[str]) -> Backbone:
    return roformer(corpus, layers=2, width=32, heads=2)


def mini(corpus: Sequence[str]) -> Backbone:
    return roformer(corpus, layers=4, width=128, heads=4)


def molformer(corpus: Sequence[str]) -> Backbone:
    # deterministic_eval: otherwise evaluation redraws the random attention features each pass.
    try:
        tokenizer = AutoTokenizer.from_pretrained(MOLFORMER_ID, revision=MOLFORMER_REVISION,
                                                  trust_remote_code=True)
        encoder = AutoModel.from_pretrained(MOLFORMER_ID, revision=MOLFORMER_REVISION,
                                            trust_remote_code=True, deterministic_eval=True,
                                            add_pooling_layer=False)
    except OSError as exc:
        raise ConfigError(
            f"cannot load {MOLFORMER_ID}@{MOLFORMER_REVISION[:7]} ({str(exc).splitlines()[0]}). "
            "Offline: download it once where there is internet (huggingface-cli download "
            f"{MOLFORMER_ID} --revision {MOLFORMER_REVISION}) into the HF cache, or pass "
            "--backbone PATH to a folder saved with save_pretrained") from None
    return Backbone(encoder, tokenizer, MOLFORMER_ID, MOLFORMER_REVISION)


BACKBONES: dict[str, Callable[[Sequence[str]], Backbone]] = {
    "tiny": tiny, "mini": mini, "molformer": molformer,
}


def from_folder(path: Path) -> Backbone:
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--backbone {path}: not a save_pretrained folder "
                          f"({str(exc).splitlines()[0]})") from None
    return Backbone(encoder, tokenizer, str(path))


def load_backbone(name: str, corpus: Sequence[str]) -> Backbone:
    """``corpus``: SMILES whose pieces extend the vocabulary of freshly built encoders."""
    if name in BACKBONES:
        backbone = BACKBONES[name](corpus)
        backbone.source = backbone.source or name
        return backbone
    if Path(name).expanduser().is_dir():
        return from_folder(Path(name).expanduser())
    raise ConfigError(f"unknown backbone {name!r}: expected one of {', '.join(BACKBONES)} "
                      "or a folder saved with save_pretrained")
