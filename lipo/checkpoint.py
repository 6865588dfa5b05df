"""A run's checkpoint: everything ``predict`` needs to rebuild the model and nothing more.

    config.json          the resolved RunConfig
    backbone.json        source (registry name, hub id or folder), revision, pretrained
    tokenizer/           save_pretrained
    encoder/config.json  the encoder's architecture
    weights.safetensors  what trained (adapter + head, or every weight under `full`) and the
                         target statistics
    base.safetensors     the frozen weights, only for a backbone that cannot be re-loaded by
                         name (one initialised at random)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from accelerate.utils import set_seed
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from lipo.backbones import Backbone, load_backbone
from lipo.config import RunConfig
from lipo.errors import LipoError
from lipo.features import feature_names
from lipo.model import assemble
from lipo.train import trainable_state


def save_checkpoint(model, backbone: Backbone, cfg: RunConfig, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    trained = trainable_state(model)
    save_file({k: v.contiguous() for k, v in trained.items()}, folder / "weights.safetensors")
    if not backbone.pretrained:
        frozen = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
                  if k not in trained and ".original_module." not in k}
        if frozen:
            save_file(frozen, folder / "base.safetensors")
    (folder / "config.json").write_text(cfg.to_json())
    (folder / "backbone.json").write_text(json.dumps(
        {"source": backbone.source, "revision": backbone.revision,
         "pretrained": backbone.pretrained}, indent=2))
    backbone.tokenizer.save_pretrained(folder / "tokenizer")
    backbone.encoder.config.save_pretrained(folder / "encoder")
    return folder


def rebuild_backbone(folder: Path, info: dict) -> Backbone:
    if info["pretrained"]:
        backbone = load_backbone(info["source"], corpus=[])
        if backbone.revision != info["revision"]:
            raise LipoError(f"{folder}: trained on {info['source']} revision {info['revision']}, "
                            f"but {backbone.revision} is installed")
        return backbone
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder / "encoder"))
    return Backbone(encoder, AutoTokenizer.from_pretrained(folder / "tokenizer"), info["source"])


def load_checkpoint(folder: Path):
    """(model in eval mode, tokenizer, RunConfig) from a checkpoint folder."""
    try:
        cfg = RunConfig.from_json((folder / "config.json").read_text())
        info = json.loads((folder / "backbone.json").read_text())
        weights = load_file(folder / "weights.safetensors")
        base = load_file(folder / "base.safetensors") if (folder / "base.safetensors").exists() else {}
    except (OSError, ValueError, TypeError, SafetensorError) as exc:
        # A damaged weights file is refused here: safetensors never runs code on load.
        raise LipoError(f"{folder}: not a usable lipo checkpoint "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    set_seed(cfg.seed)
    backbone = rebuild_backbone(folder, info)
    # Target and feature statistics are buffers: placeholders here, loaded with the weights.
    n_features = len(feature_names(cfg.head_features))
    stats = (np.zeros(n_features), np.ones(n_features)) if n_features else None
    model = assemble(backbone, cfg, 0.0, 1.0, stats)
    missing = [k for k in weights if k not in model.state_dict()]
    if missing:
        raise LipoError(f"{folder}: weights do not fit the rebuilt model (e.g. {missing[0]})")
    model.load_state_dict({**base, **weights}, strict=False)
    return model.eval(), backbone.tokenizer, cfg
