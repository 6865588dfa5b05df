"""Masked-LM domain adaptation, then regression on every training example.

The encoder first learns the task's SMILES (the training split's only, optionally plus the
external pool's minus any molecule in the validation or test split: never their SMILES), then
is fine-tuned. Adapted encoders are cached per (backbone, data, split, knobs, seed) under
``mlruns/cache/mlm``, so trials that share them do not redo the adaptation.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from accelerate.utils import set_seed
from transformers import AutoModelForMaskedLM

from lipo.data.molecules import POOL_FILE, data_dir, load_molecules
from lipo.data.pool import flat
from lipo.masked_lm.loop import MLMSettings, train_mlm
from lipo.models.backbones import Backbone, from_folder, load_backbone
from lipo.models.regressor import freeze_position_tables
from lipo.models.tokenizer import MAX_TOKENS
from lipo.molformer import MoLFormerModel
from lipo.molformer import weights as molformer_weights
from lipo.runtime import workdir
from lipo.strategies import knobs as strategy_knobs
from lipo.strategies.surface import Trial
from lipo.training.fit import FitResult

CACHE = Path("mlruns") / "cache" / "mlm"  # under --workdir: workdir.cache("mlm", ...)
KNOBS = {"mlm_epochs": 3, "mask_prob": 0.15, "mlm_lr": 5e-4, "include_pool": False}


def train(run: Trial) -> FitResult:
    folder = adapted(run)
    backbone = from_folder(folder)
    backbone.pretrained = False  # the cache is no lasting home: checkpoints keep its weights
    backbone.source = f"{run.cfg.backbone}+mlm"
    return run.fit(run.new_model(backbone), run.split.train)


def knobs(run) -> dict:
    return strategy_knobs(KNOBS, run.cfg)


def corpus(run, include_pool: bool) -> list[str]:
    smiles = run.train_smiles
    if include_pool and data_dir() is not None and (data_dir() / POOL_FILE).is_file():
        # Compared without stereochemistry, as lipo.data.pool does: the pool draws some
        # validation and test molecules with other (or no) stereo marks.
        held = {flat(run.smiles[i]) for part in ("val", "test") for i in run.split.part(part)}
        pool = load_molecules(data_dir() / POOL_FILE)
        smiles = smiles + [s for s in pool.smiles if flat(s) not in held]
    return smiles


def cache_key(run, settings: dict) -> str:
    text = json.dumps(
        {
            "backbone": run.cfg.backbone,
            "data": run.data_sha256,
            "split": run.split.sha256,
            "seed": run.cfg.seed,
            **settings,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def adapted(run) -> Path:
    settings = knobs(run)
    folder = workdir.cache("mlm", CACHE) / cache_key(run, settings)
    if not (folder / "config.json").is_file():
        adapt(run, settings, folder)
    run.accelerator.wait_for_everyone()
    return folder


def adapt(run, settings: dict, folder: Path) -> None:
    set_seed(run.cfg.seed)
    base = load_backbone(run.cfg.backbone, run.train_smiles)
    mlm = masked_lm(base)
    smiles = corpus(run, bool(settings["include_pool"]))
    order = np.random.default_rng(run.cfg.seed).permutation(len(smiles))
    n_held = max(1, len(smiles) // 20)  # 5% of the adaptation corpus, to watch the MLM loss
    ids = base.tokenizer(smiles, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    mlm_settings = MLMSettings(
        epochs=int(settings["mlm_epochs"]),
        batch_size=64,
        lr=float(settings["mlm_lr"]),
        mask_prob=float(settings["mask_prob"]),
        seed=run.cfg.seed,
        log_every=10,
        save_every=0,
    )
    train_mlm(
        mlm,
        base.tokenizer,
        [ids[i] for i in order[n_held:]],
        [ids[i] for i in order[:n_held]],
        mlm_settings,
        run.accelerator,
        run.log,
        desc="mlm adaptation",
    )
    if run.accelerator.is_main_process:
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run.accelerator.unwrap_model(mlm).save_pretrained(partial)
        base.tokenizer.save_pretrained(partial)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)  # whole or absent: a parallel worker never reads half a folder


def masked_lm(base: Backbone):
    """The backbone with a masked-LM head: the one saved beside it where there is one (the
    shipped ``mini``, a ``pretrain`` output), else a new head on the backbone's weights."""
    if isinstance(base.encoder, MoLFormerModel):  # MoLFormer's own head, read by name
        return molformer_weights.masked_lm(base.encoder, base.folder)
    if base.folder is not None:
        return freeze_position_tables(AutoModelForMaskedLM.from_pretrained(base.folder))
    mlm = AutoModelForMaskedLM.from_config(base.encoder.config)
    getattr(mlm, mlm.base_model_prefix).load_state_dict(base.encoder.state_dict(), strict=False)
    return freeze_position_tables(mlm)
