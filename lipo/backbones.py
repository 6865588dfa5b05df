"""Encoders by name: ``tiny`` and ``mini`` (our own RoFormer-style encoders, built from a
config), ``molformer`` (the hub model, pinned), or any folder saved with ``save_pretrained``.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import (AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase,
                          RoFormerConfig, RoFormerModel)

from lipo.errors import ConfigError
from lipo.tokenizer import build_tokenizer

log = logging.getLogger(__name__)
SHIPPED = Path(__file__).parent / "pretrained"  # encoders made by `launch.py pretrain`
MOLFORMER_ID = "ibm/MoLFormer-XL-both-10pct"
MOLFORMER_REVISION = "7b12d946c181a37f6012b9dc3b002275de070314"


@dataclass
class Backbone:
    encoder: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str  # registry name, hub id or folder
    revision: str | None = None
    pretrained: bool = False  # re-loadable by source and revision; else its weights are saved
    folder: Path | None = None  # the save_pretrained folder it came from, if any

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size


# (layers, width, heads) of our own encoders.
SIZES = {"tiny": (2, 32, 2), "mini": (4, 128, 4)}


def roformer_config(size: str, tokenizer) -> RoFormerConfig:
    """MoLFormer-style encoder: rotary position embeddings, GELU feed-forward 4x wide."""
    layers, width, heads = SIZES[size]
    return RoFormerConfig(vocab_size=len(tokenizer), embedding_size=width, hidden_size=width,
                          num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=4 * width, max_position_embeddings=512,
                          pad_token_id=tokenizer.pad_token_id, hidden_dropout_prob=0.1,
                          attention_probs_dropout_prob=0.1)


def scratch(size: str, corpus: Sequence[str]) -> Backbone:
    """Initialised at random; the vocabulary comes from ``corpus``."""
    tokenizer = build_tokenizer(corpus)
    return Backbone(RoFormerModel(roformer_config(size, tokenizer)), tokenizer, "")


def tiny(corpus: Sequence[str]) -> Backbone:
    return scratch("tiny", corpus)


def mini_scratch(corpus: Sequence[str]) -> Backbone:
    return scratch("mini", corpus)


def mini(corpus: Sequence[str]) -> Backbone:
    """The pre-trained ``mini`` shipped in the package (see its model card); from scratch
    with a warning when the package was installed without it."""
    if not (SHIPPED / "mini" / "model.safetensors").is_file():
        log.warning("the pre-trained mini encoder is not installed (%s); using mini-scratch",
                    SHIPPED / "mini")
        return mini_scratch(corpus)
    backbone = from_folder(SHIPPED / "mini")
    backbone.source = "mini"
    # Checkpoints record which weights they adapted: the shipped file's checksum.
    digest = hashlib.sha256((SHIPPED / "mini" / "model.safetensors").read_bytes()).hexdigest()
    backbone.revision = digest[:16]
    return backbone


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
    return Backbone(encoder, tokenizer, MOLFORMER_ID, MOLFORMER_REVISION, pretrained=True)


BACKBONES: dict[str, Callable[[Sequence[str]], Backbone]] = {
    "tiny": tiny, "mini": mini, "mini-scratch": mini_scratch, "molformer": molformer,
}


def from_folder(path: Path) -> Backbone:
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--backbone {path}: not a save_pretrained folder "
                          f"({str(exc).splitlines()[0]})") from None
    return Backbone(encoder, tokenizer, str(path.resolve()), pretrained=True, folder=path)


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
