"""Where the published MoLFormer-XL lives and how its safetensors become our modules.

The weights are read by their own names and shapes (``molformer.encoder.layer.0.attention.
self.query.weight`` ...) from the Hugging Face cache at a pinned revision, or from a folder;
no model code from the hub is imported or run.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from safetensors import SafetensorError
from safetensors.torch import load_file

from lipo.errors import ConfigError
from lipo.molformer.config import MoLFormerConfig
from lipo.molformer.model import MoLFormerForMaskedLM, MoLFormerModel

log = logging.getLogger(__name__)
MOLFORMER_ID = "ibm/MoLFormer-XL-both-10pct"
MOLFORMER_REVISION = "7b12d946c181a37f6012b9dc3b002275de070314"
FILES = ("config.json", "vocab.json", "model.safetensors")
PREFIX = "molformer."  # the published file holds a masked-LM model: encoder under this prefix
HEAD = "lm_head."
FEATURE_SEED = 0  # for random features a weights file does not store
OFFLINE_HELP = (
    f"On a machine with internet, put it in the Hugging Face cache once: hf download "
    f"{MOLFORMER_ID} --revision {MOLFORMER_REVISION} (then copy ~/.cache/huggingface/hub "
    "here, or point HF_HUB_CACHE at it, and set HF_HUB_OFFLINE=1); or pass --backbone PATH "
    "to a folder holding its config.json, vocab.json and model.safetensors"
)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def published_folder(cache_dir: str | Path | None = None) -> Path:
    """The pinned snapshot's folder; its files are fetched into the cache only when online."""
    found = []
    for name in FILES:
        hit = try_to_load_from_cache(
            MOLFORMER_ID, name, cache_dir=cache_dir, revision=MOLFORMER_REVISION
        )
        if not isinstance(hit, str):
            hit = download(name, cache_dir)
        found.append(Path(hit))
    return found[0].parent


def download(name: str, cache_dir) -> str:
    where = f"{MOLFORMER_ID}@{MOLFORMER_REVISION[:7]}"
    if offline():
        raise ConfigError(
            f"MoLFormer weights missing: {name} of {where} is not in the Hugging "
            f"Face cache and HF_HUB_OFFLINE is set. {OFFLINE_HELP}"
        )
    try:
        return hf_hub_download(MOLFORMER_ID, name, revision=MOLFORMER_REVISION, cache_dir=cache_dir)
    except Exception as exc:  # no network, no such file, hub errors: one message for all
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"MoLFormer weights missing: cannot get {name} of {where} ({first}). {OFFLINE_HELP}"
        ) from None


def is_molformer_folder(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text()).get("model_type") == "molformer"
    except (OSError, ValueError, AttributeError):
        return False


def read_config(folder: Path) -> MoLFormerConfig:
    try:
        values = json.loads((folder / "config.json").read_text())
        return MoLFormerConfig.from_published(values, deterministic_eval=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"{folder / 'config.json'}: not a MoLFormer configuration ({exc})"
        ) from None


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    path = folder / "model.safetensors"
    if not path.is_file():
        pickled = (
            " (a pickled pytorch_model.bin is refused: unpickling can run code)"
            if (folder / "pytorch_model.bin").exists()
            else ""
        )
        raise ConfigError(f"MoLFormer weights missing: no {path}{pickled}. {OFFLINE_HELP}")
    try:
        return load_file(path)
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f"{path}: unreadable safetensors ({exc})") from None


def fit_by_name(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Load ``weights`` into ``module`` after checking every name and shape. The random
    feature maps may be absent (a file saved without buffers): then they are drawn from a
    fixed seed, so that every load of the same file (a run, then ``predict``) sees the same."""
    own = module.state_dict()
    unexpected = sorted(set(weights) - set(own))
    missing = sorted(k for k in set(own) - set(weights) if not k.endswith("feature_map.weight"))
    wrong = [
        f"{k} {tuple(weights[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in weights and weights[k].shape != own[k].shape
    ]
    for problem, names in (("unexpected", unexpected), ("missing", missing), ("shape", wrong)):
        if names:
            raise ConfigError(
                f"{path}: weights do not fit MoLFormer ({problem}: "
                f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''})"
            )
    absent = [k for k in own if k not in weights]
    if absent:
        log.warning("%s: no stored random features; drawn from seed %d", path, FEATURE_SEED)
        generator = torch.Generator().manual_seed(FEATURE_SEED)
        for key in absent:  # state_dict order: layer by layer, the same on every load
            feature_map = module.get_submodule(key.rsplit(".", 1)[0])
            weights = {**weights, key: feature_map.draw(generator=generator)}
    module.load_state_dict(weights, strict=False)


def split_weights(weights: dict[str, torch.Tensor]):
    """(encoder weights without the prefix, masked-LM head weights)."""
    head = {k[len(HEAD) :]: v for k, v in weights.items() if k.startswith(HEAD)}
    encoder = {
        k[len(PREFIX) :] if k.startswith(PREFIX) else k: v
        for k, v in weights.items()
        if not k.startswith(HEAD)
    }
    return encoder, head


def load_encoder(folder: Path) -> MoLFormerModel:
    encoder = MoLFormerModel(read_config(folder))
    fit_by_name(encoder, split_weights(read_weights(folder))[0], folder / "model.safetensors")
    return encoder.eval()


def masked_lm(encoder: MoLFormerModel, folder: Path | None) -> MoLFormerForMaskedLM:
    """The encoder with a masked-LM head: the checkpoint's own head when ``folder`` has one."""
    model = MoLFormerForMaskedLM(encoder.config)
    model.molformer.load_state_dict(encoder.state_dict())
    head = split_weights(read_weights(folder))[1] if folder is not None else {}
    if head:  # a file saved with the decoder tied to the embeddings stores it once
        head.setdefault("decoder.weight", encoder.get_input_embeddings().weight.detach())
        fit_by_name(model.lm_head, head, folder / "model.safetensors")
    return model
