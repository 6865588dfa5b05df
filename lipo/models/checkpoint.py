"""A run's checkpoint: everything ``predict`` needs to rebuild the model and nothing more.

    config.json          the resolved RunConfig
    backbone.json        source (registry name, hub id or folder), revision, pretrained, and
                         implementation (our model code's version, e.g. lipo.molformer/1)
    tokenizer/           save_pretrained
    encoder/config.json  the encoder's architecture
    weights.safetensors  `full` and `bitfit`: what trained (every weight, or biases + head)
                         and the target statistics; with aux_descriptors also the descriptor
                         head, which the rebuilt model holds but never uses to predict
    adapter/             `lora` and `ia3`: PEFT's own `save_pretrained` (adapter_config.json,
                         adapter_model.safetensors with the head, kept by modules_to_save)
    statistics.safetensors  `lora` and `ia3`: the target (and descriptor) statistics
    descriptors.json     with --head-features: the descriptor names in column order and the
                         RDKit version that computed them
    base.safetensors     the frozen weights, only for a backbone that cannot be re-loaded by
                         name (one initialised at random)

A PEFT adapter loads with PEFT alone on the base model ``base_model(folder)`` builds:
``PeftModel.from_pretrained(base_model(folder), folder / "adapter")``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from accelerate.utils import set_seed
from peft import PeftModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from lipo.config import RunConfig
from lipo.data.features import descriptor_record, feature_names
from lipo.errors import LipoError
from lipo.models.backbones import Backbone, load_backbone
from lipo.models.regressor import assemble
from lipo.training.fit import trainable_state

ADAPTER = "adapter"  # PEFT's save_pretrained folder inside a checkpoint
STATISTICS = ("y_mean", "y_std", "feature_mean", "feature_std")  # LogDRegressor's buffers
DESCRIPTORS = "descriptors.json"


def save_checkpoint(model, backbone: Backbone, cfg: RunConfig, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, PeftModel):
        save_peft(model, backbone, folder)
    else:
        save_own(model, backbone, folder)
    (folder / "config.json").write_text(cfg.to_json())
    (folder / "backbone.json").write_text(
        json.dumps(
            {
                "source": backbone.source,
                "revision": backbone.revision,
                "pretrained": backbone.pretrained,
                "implementation": backbone.implementation,
            },
            indent=2,
        )
    )
    backbone.tokenizer.save_pretrained(folder / "tokenizer")
    backbone.encoder.config.save_pretrained(folder / "encoder")
    if cfg.head_features:
        (folder / DESCRIPTORS).write_text(
            json.dumps(descriptor_record(cfg.head_features), indent=2)
        )
    return folder


def save_own(model, backbone: Backbone, folder: Path) -> None:
    """lipo's format (`full`, `bitfit`: PEFT has no BitFit)."""
    trained = trainable_state(model)
    save_file({k: v.contiguous() for k, v in trained.items()}, folder / "weights.safetensors")
    if not backbone.pretrained:
        frozen = {
            k: v.detach().cpu().contiguous()
            for k, v in model.state_dict().items()
            if k not in trained
        }
        if frozen:
            save_file(frozen, folder / "base.safetensors")


def save_peft(model: PeftModel, backbone: Backbone, folder: Path) -> None:
    """PEFT's own format, so that ``PeftModel.from_pretrained`` reads it; the statistics and
    (for a backbone built at random) the frozen encoder beside it, in the base model's names."""
    model.peft_config["default"].base_model_name_or_path = backbone.source
    # save_embedding_layers=False: "auto" looks the base up on the hub (offline: a warning)
    model.save_pretrained(folder / ADAPTER, save_embedding_layers=False)
    state = model.get_base_model().state_dict()
    save_file(
        {k: state[k].detach().cpu().contiguous() for k in STATISTICS if k in state},
        folder / "statistics.safetensors",
    )
    if not backbone.pretrained:
        save_file(frozen_encoder(model), folder / "base.safetensors")


def frozen_encoder(model: PeftModel) -> dict:
    """The encoder's own weights under its own names: PEFT's layers (``lora_A``, ``ia3_l`` ...)
    left out, ``.base_layer.`` unwrapped (PEFT's unload() fails on IA3 with modules_to_save)."""
    prefix = model.base_model.prefix  # "lora_" or "ia3_"
    out = {}
    for key, value in model.get_base_model().encoder.state_dict().items():
        if any(part.startswith(prefix) for part in key.split(".")):
            continue
        out["encoder." + key.replace(".base_layer.", ".")] = value.detach().cpu().contiguous()
    return out


# Shipped encoders that took over a name: runs trained on earlier weights load them here
# (newest first).
RENAMED = {"mini": ("mini-30500", "mini-22500", "mini-13500", "mini-5500", "mini-moses")}


def rebuild_backbone(folder: Path, info: dict) -> Backbone:
    if info["pretrained"]:
        backbone = load_backbone(info["source"], corpus=[])
        for name in RENAMED.get(info["source"], ()):
            if backbone.revision == info["revision"]:
                break
            earlier = load_backbone(name, corpus=[])
            backbone = earlier if earlier.revision == info["revision"] else backbone
        if backbone.revision != info["revision"]:
            raise LipoError(
                f"{folder}: trained on {info['source']} revision {info['revision']}, "
                f"but {backbone.revision} is installed"
            )
        return backbone
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder / "encoder"))
    return Backbone(encoder, AutoTokenizer.from_pretrained(folder / "tokenizer"), info["source"])


def read_safetensors(folder: Path, *names: str) -> list[dict]:
    """Each file's tensors ({} when absent); a damaged file is one line naming the folder."""
    try:
        return [load_file(folder / n) if (folder / n).exists() else {} for n in names]
    except (OSError, SafetensorError) as exc:
        raise unusable(folder, exc) from None


def unusable(folder: Path, exc: Exception) -> LipoError:
    # A damaged weights file is refused here: safetensors never runs code on load.
    return LipoError(
        f"{folder}: not a usable lipo checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    )


def read_config(folder: Path) -> tuple[RunConfig, dict]:
    try:
        return (
            RunConfig.from_json((folder / "config.json").read_text()),
            json.loads((folder / "backbone.json").read_text()),
        )
    except (OSError, ValueError, TypeError) as exc:
        raise unusable(folder, exc) from None


def plain_model(folder: Path, cfg: RunConfig, info: dict, adapter: str):
    """Encoder + head (+ ``adapter`` when not "full") with placeholder statistics."""
    set_seed(cfg.seed)
    check_descriptors(folder, cfg.head_features)
    backbone = rebuild_backbone(folder, info)
    # Target and feature statistics are buffers: placeholders here, loaded with the weights.
    n_features = len(feature_names(cfg.head_features))
    stats = (np.zeros(n_features), np.ones(n_features)) if n_features else None
    plain = cfg.replace(adapter=adapter, adapter_args=cfg.adapter_args if adapter != "full" else {})
    return assemble(backbone, plain, 0.0, 1.0, stats), backbone.tokenizer


def check_descriptors(folder: Path, kind: str) -> None:
    """The head's inputs are the descriptor columns it was trained on, in that order: another
    RDKit may compute another list (``rdkit2d`` is RDKit's whole set), and a list of the same
    length would load and predict nonsense without a word. A checkpoint from before the
    record has none to compare."""
    path = folder / DESCRIPTORS
    if not kind or not path.is_file():
        return
    try:
        trained = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise unusable(folder, exc) from None
    here = descriptor_record(kind)
    if trained["names"] == here["names"]:
        return
    missing = [n for n in trained["names"] if n not in here["names"]]
    extra = [n for n in here["names"] if n not in trained["names"]]
    parts = ([f"missing here: {', '.join(missing)}"] if missing else []) + (
        [f"extra here: {', '.join(extra)}"] if extra else []
    )
    difference = "; ".join(parts) or "the same names in another order"
    raise LipoError(
        f"{folder}: trained with --head-features {kind} on "
        f"{len(trained['names'])} descriptors computed by RDKit {trained['rdkit']}; "
        f"RDKit {here['rdkit']} here computes {len(here['names'])} ({difference}): "
        f"install rdkit=={trained['rdkit']} to use this model"
    )


def load_into(model, folder: Path, tensors: dict) -> None:
    missing = [k for k in tensors if k not in model.state_dict()]
    if missing:
        raise LipoError(f"{folder}: weights do not fit the rebuilt model (e.g. {missing[0]})")
    model.load_state_dict(tensors, strict=False)


def base_model(folder: Path):
    """The model a PEFT adapter of this checkpoint applies to: the backbone (by name, or its
    saved weights) + an untrained head + the run's statistics, in eval mode."""
    return base_and_tokenizer(folder)[0]


def base_and_tokenizer(folder: Path):
    cfg, info = read_config(folder)
    model, tokenizer = plain_model(folder, cfg, info, "full")
    stats, base = read_safetensors(folder, "statistics.safetensors", "base.safetensors")
    lost = [k for k in model.state_dict() if k.startswith("encoder.") and k not in base]
    if base and lost:  # a weight left at its random initialisation would go unnoticed
        raise LipoError(f"{folder}: base.safetensors lacks encoder weights (e.g. {lost[0]})")
    load_into(model, folder, {**base, **stats})
    return model.eval(), tokenizer


def load_checkpoint(folder: Path):
    """(model in eval mode, tokenizer, RunConfig) from a checkpoint folder."""
    cfg, info = read_config(folder)
    if (folder / ADAPTER / "adapter_config.json").is_file():
        base, tokenizer = base_and_tokenizer(folder)
        try:
            model = PeftModel.from_pretrained(base, folder / ADAPTER)
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
            raise unusable(folder, exc) from None
        return model.eval(), tokenizer, cfg
    weights, base = read_safetensors(folder, "weights.safetensors", "base.safetensors")
    if not weights:
        raise unusable(folder, FileNotFoundError(f"no {folder / 'weights.safetensors'}"))
    model, tokenizer = plain_model(folder, cfg, info, cfg.adapter)
    load_into(model, folder, {**base, **weights})
    return model.eval(), tokenizer, cfg
