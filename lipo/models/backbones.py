"""Encoders by name: ``mini`` (the default) and ``small`` (our own RoFormer-style encoders,
pre-trained and shipped in the package), ``tiny`` (the same, small and random, for tests),
``molformer`` (our MoLFormer implementation with the published weights, pinned),
``molformer-tiny`` (the same architecture, small and random), or any folder saved with
``save_pretrained`` (or holding MoLFormer's published files). The names are registered in
lipo/models/backbone_names.py, each naming its factory here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import (
    AutoModel,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RoFormerConfig,
    RoFormerModel,
)

from lipo.errors import ConfigError
from lipo.models.backbone_names import BACKBONES  # name -> factory; re-exported
from lipo.models.tokenizer import build_tokenizer
from lipo.molformer import IMPLEMENTATION, MoLFormerConfig, MoLFormerModel
from lipo.molformer.tokenizer import tokenizer_from_folder
from lipo.molformer.weights import (
    MOLFORMER_REVISION,
    is_molformer_folder,
    load_encoder,
    published_folder,
)

log = logging.getLogger(__name__)
SHIPPED = Path(__file__).parents[1] / "pretrained"  # encoders made by `launch.py pretrain`
# Model code shipped in a folder runs only with --trust-remote-code (MoLFormer needs none:
# the architecture is ours, lipo/molformer).
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
    implementation: str | None = None  # our model code's version, where the code is ours

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size


# (layers, width, heads) of our own encoders.
SIZES = {"tiny": (2, 32, 2), "mini": (4, 128, 4), "small": (6, 192, 6)}


def roformer_config(size: str, tokenizer) -> RoFormerConfig:
    """MoLFormer-style encoder: rotary position embeddings, GELU feed-forward 4x wide."""
    layers, width, heads = SIZES[size]
    return RoFormerConfig(
        vocab_size=len(tokenizer),
        embedding_size=width,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * width,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


def scratch(size: str, corpus: Sequence[str]) -> Backbone:
    """Initialised at random; the vocabulary comes from ``corpus``."""
    tokenizer = build_tokenizer(corpus)
    return Backbone(RoFormerModel(roformer_config(size, tokenizer)), tokenizer, "")


def tiny(corpus: Sequence[str]) -> Backbone:
    return scratch("tiny", corpus)


def mini_scratch(corpus: Sequence[str]) -> Backbone:
    return scratch("mini", corpus)


def shipped(name: str) -> Backbone:
    """A pre-trained encoder shipped in the package (see its model card). Missing, it is an
    error: a random encoder under a pre-trained name would mislabel every result."""
    folder = SHIPPED / name
    if not (folder / "model.safetensors").is_file():
        raise ConfigError(
            f"the pre-trained {name} encoder is missing ({folder} holds "
            "no model.safetensors): reinstall lipo with its package data "
            "(pip install -e . from a full checkout), or pass --backbone "
            f"{name}-scratch for the same encoder initialised at random"
        )
    backbone = from_folder(folder)
    backbone.source = name
    # Checkpoints record which weights they adapted: the shipped file's checksum.
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    backbone.revision = digest[:16]
    return backbone


def small(corpus: Sequence[str]) -> Backbone:
    """6 layers of width 192, masked-LM + descriptor pre-trained on the MOSES training set
    and ChEMBL (lipo/pretrained/small/README.md)."""
    return shipped("small")


def small_scratch(corpus: Sequence[str]) -> Backbone:
    return scratch("small", corpus)


def mini(corpus: Sequence[str]) -> Backbone:
    """4 layers of width 128, masked-LM + descriptor pre-trained on the MOSES training set and
    ChEMBL (lipo/pretrained/mini/README.md)."""
    return shipped("mini")


def mini_30500(corpus: Sequence[str]) -> Backbone:
    """The previous ``mini``: the same encoder after its first 30,500 pre-training steps, before
    the 8000 that continued it; kept for comparison and for runs trained on it
    (lipo/pretrained/mini-30500/README.md)."""
    return shipped("mini-30500")


def mini_22500(corpus: Sequence[str]) -> Backbone:
    """An earlier ``mini``: the same encoder after its first 22,500 pre-training steps, before
    the 8000 that continued it; kept for comparison and for runs trained on it
    (lipo/pretrained/mini-22500/README.md)."""
    return shipped("mini-22500")


def mini_13500(corpus: Sequence[str]) -> Backbone:
    """An earlier ``mini``: the same encoder after its first 13,500 pre-training steps, before
    the 9000 that continued it; kept for comparison and for runs trained on it
    (lipo/pretrained/mini-13500/README.md)."""
    return shipped("mini-13500")


def mini_5500(corpus: Sequence[str]) -> Backbone:
    """An earlier ``mini``: the same encoder after its first 5500 pre-training steps, before
    the 8000 that continued it; kept for comparison and for runs trained on it
    (lipo/pretrained/mini-5500/README.md)."""
    return shipped("mini-5500")


def mini_moses(corpus: Sequence[str]) -> Backbone:
    """The first ``mini``: the same size, masked-LM pre-trained on MOSES's test split only;
    kept for comparison and for runs trained on it (lipo/pretrained/mini-moses/README.md)."""
    return shipped("mini-moses")


def molformer(corpus: Sequence[str]) -> Backbone:
    """MoLFormer-XL's published weights at the pinned revision, from the Hugging Face cache
    (fetched into it only when online), run by our implementation: no hub code."""
    backbone = molformer_folder(published_folder())
    backbone.source, backbone.revision = "molformer", MOLFORMER_REVISION
    return backbone


def molformer_tiny(corpus: Sequence[str]) -> Backbone:
    """MoLFormer's architecture at test size (2 layers, width 32, 2 heads, 16 random
    features), random weights; the vocabulary comes from ``corpus``."""
    tokenizer = build_tokenizer(corpus)
    config = MoLFormerConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_random_features=16,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Backbone(MoLFormerModel(config), tokenizer, "", implementation=IMPLEMENTATION)


def molformer_folder(path: Path) -> Backbone:
    """A folder with MoLFormer's config.json and model.safetensors: the published files
    (vocab.json) or one we saved (our tokenizer files)."""
    encoder = load_encoder(path)
    tokenizer = (
        tokenizer_from_folder(path)
        if (path / "vocab.json").is_file()
        else AutoTokenizer.from_pretrained(path)
    )
    return Backbone(
        encoder,
        tokenizer,
        str(path.resolve()),
        pretrained=True,
        folder=path,
        implementation=IMPLEMENTATION,
    )


def from_folder(path: Path) -> Backbone:
    """Weights from safetensors only (a pickled .bin from a folder could run code on load);
    model code shipped in the folder only with --trust-remote-code."""
    if is_molformer_folder(path):
        return molformer_folder(path)
    trusted = path.expanduser().resolve() in TRUSTED_FOLDERS
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trusted)
        encoder = AutoModel.from_pretrained(path, trust_remote_code=trusted, use_safetensors=True)
    except (OSError, ValueError) as exc:
        hint = (
            "; it ships its own model code: pass --trust-remote-code if you trust it"
            if "trust_remote_code" in str(exc)
            else ""
        )
        raise ConfigError(
            f"--backbone {path}: not a usable save_pretrained folder with "
            f"safetensors weights ({str(exc).splitlines()[0]}){hint}"
        ) from None
    return Backbone(encoder, tokenizer, str(path.resolve()), pretrained=True, folder=path)


def load_backbone(name: str, corpus: Sequence[str]) -> Backbone:
    """``corpus``: SMILES whose pieces extend the vocabulary of freshly built encoders."""
    if name in BACKBONES:
        backbone = BACKBONES.get(name)(corpus)
        backbone.source = backbone.source or name
        return backbone
    check_name(name)
    return from_folder(Path(name).expanduser())


def check_name(name: str) -> None:
    if name not in BACKBONES and not Path(name).expanduser().is_dir():
        raise ConfigError(
            f"unknown backbone {name!r}: expected one of "
            f"{', '.join(BACKBONES.names())} "
            "or a folder saved with save_pretrained"
        )
