"""One trial: the data it sees, the model it builds, the loaders it trains on."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import save_file

from lipo.adapters import ADAPTERS
from lipo.backbones import Backbone, load_backbone
from lipo.batching import EncodedMolecules, make_loader
from lipo.config import RunConfig
from lipo.data import Molecules, content_sha256, load_molecules, locate
from lipo.model import LogDRegressor, RegressionHead
from lipo.splits import Split, make_split
from lipo.strategies import STRATEGIES
from lipo.train import EpochHook, FitResult, evaluate, fit, trainable_state

MAX_TOKENS = 512  # longest Lipophilicity SMILES is 207 tokens


@dataclass(frozen=True)
class Workspace:
    """Read once per invocation: validated molecules and the split."""

    mols: Molecules
    split: Split
    data_sha256: str

    @classmethod
    def load(cls, data: str | None, split: str, split_seed: int, strict: bool) -> "Workspace":
        mols = load_molecules(locate(data), strict=strict)
        return cls(mols, make_split(split, mols, split_seed), content_sha256(mols.smiles, mols.y))


def count_params(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_params": trainable, "total_params": total}


class TrialRun:
    """Builds models and loaders for one RunConfig; strategies decide what to fit on."""

    def __init__(self, cfg: RunConfig, ws: Workspace, accelerator: Accelerator,
                 on_epoch: EpochHook | None = None):
        self.cfg, self.ws, self.accelerator, self.on_epoch = cfg, ws, accelerator, on_epoch
        self.split = ws.split
        self.backbone: Backbone | None = None
        self.data: EncodedMolecules | None = None
        self.param_counts: dict[str, int] = {}  # of the last model built

    def new_model(self) -> LogDRegressor:
        set_seed(self.cfg.seed)
        train_smiles = [self.ws.mols.smiles[i] for i in self.split.train]
        self.backbone = load_backbone(self.cfg.backbone, train_smiles)
        if self.data is None:
            ids = self.backbone.tokenizer(self.ws.mols.smiles, truncation=True,
                                          max_length=MAX_TOKENS)["input_ids"]
            self.data = EncodedMolecules(ids, self.ws.mols.y)
        y_train = self.ws.mols.y[self.split.train]
        width = self.backbone.hidden_size
        head = RegressionHead(width, self.cfg.head_hidden or width, self.cfg.dropout)
        model = LogDRegressor(self.backbone.encoder, head, y_train.mean(), y_train.std())
        model = ADAPTERS.get(self.cfg.adapter).apply(model, **self.cfg.adapter_args)
        self.param_counts = count_params(model)
        return model

    def loader(self, positions, shuffle: bool):
        size = self.cfg.batch_size if shuffle else self.cfg.eval_batch_size
        return make_loader(self.data, positions, size, self.backbone.tokenizer.pad_token_id,
                           shuffle, seed=self.cfg.seed)

    def fit(self, model, train_positions) -> FitResult:
        return fit(model, self.loader(train_positions, True), self.loader(self.split.val, False),
                   self.cfg, self.accelerator, self.on_epoch)

    def evaluate(self, model, part: str):
        """Metrics and a predictions table for one split part ('val' or, finally, 'test')."""
        loader = self.accelerator.prepare(self.loader(self.split.part(part), False))
        metrics, (pred, y, positions) = evaluate(model, loader, self.accelerator, part)
        table = pd.DataFrame({"row": self.ws.mols.rows[positions],
                              "smiles": [self.ws.mols.smiles[p] for p in positions],
                              "y_true": y, "y_pred": pred})
        return metrics, table


def train_trial(run: TrialRun) -> FitResult:
    return STRATEGIES.get(run.cfg.strategy).train(run)


def save_checkpoint(model, run: TrialRun, folder: Path) -> Path:
    """Trainable weights (safetensors), the resolved config, and the backbone's config and
    tokenizer, so that ``predict`` can rebuild the model."""
    folder.mkdir(parents=True, exist_ok=True)
    unwrapped = run.accelerator.unwrap_model(model)
    save_file({k: v.contiguous() for k, v in trainable_state(unwrapped).items()},
              folder / "weights.safetensors")
    (folder / "config.json").write_text(run.cfg.to_json())
    run.backbone.tokenizer.save_pretrained(folder / "tokenizer")
    run.backbone.encoder.config.save_pretrained(folder / "encoder")
    (folder / "backbone.json").write_text(json.dumps(
        {"source": run.backbone.source, "revision": run.backbone.revision}, indent=2))
    return folder


def to_jsonable(values: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}
