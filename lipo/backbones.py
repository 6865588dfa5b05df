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
# Model code downloaded with weights runs only for these (hub id, revision) pairs; a folder
# needs --trust-remote-code. A revision is a commit: its code cannot change under us.
REMOTE_CODE_ALLOWED = {(MOLFORMER_ID, MOLFORMER_REVISION)}
TRUSTED_FOLDERS: set[Path] = set()  # folders given with --trust-remote-code


def trust_folder(path: str) -> None:
    TRUSTED_FOLDERS.add(Path(path).expanduser().resolve())


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
    # Weights: safetensors when the revision has them, else transformers' torch.load with
    # weights_only=True (no arbitrary unpickling).
    remote = (MOLFORMER_ID, MOLFORMER_REVISION) in REMOTE_CODE_ALLOWED
    try:
        tokenizer = AutoTokenizer.from_pretrained(MOLFORMER_ID, revision=MOLFORMER_REVISION,
                                                  trust_remote_code=remote)
        encoder = AutoModel.from_pretrained(MOLFORMER_ID, revision=MOLFORMER_REVISION,
                                            trust_remote_code=remote, deterministic_eval=True,
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
    """Weights from safetensors only (a pickled .bin from a folder could run code on load);
    model code shipped in the folder only with --trust-remote-code."""
    trusted = path.expanduser().resolve() in TRUSTED_FOLDERS
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trusted)
        encoder = AutoModel.from_pretrained(path, trust_remote_code=trusted, use_safetensors=True)
    except (OSError, ValueError) as exc:
        hint = ("; it ships its own model code: pass --trust-remote-code if you trust it"
                if "trust_remote_code" in str(exc) else "")
        raise ConfigError(f"--backbone {path}: not a usable save_pretrained folder with "
                          f"safetensors weights ({str(exc).splitlines()[0]}){hint}") from None
    return Backbone(encoder, tokenizer, str(path.resolve()), pretrained=True, folder=path)


def load_backbone(name: str, corpus: Sequence[str]) -> Backbone:
    """``corpus``: SMILES whose pieces extend the vocabulary of freshly built encoders."""
    if name in BACKBONES:
        backbone = BACKBONES[name](corpus)
        backbone.source = backbone.source or name
        return backbone
    check_name(name)
    return from_folder(Path(name).expanduser())


def check_name(name: str) -> None:
    if name not in BACKBONES and not Path(name).expanduser().is_dir():
        raise ConfigError(f"unknown backbone {name!r}: expected one of {', '.join(BACKBONES)} "
                          "or a folder saved with save_pretrained")
