"""One trial: the data it sees, the model it builds, the loaders it trains on."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from accelerate import Accelerator
from accelerate.utils import set_seed

from lipo.config import RunConfig
from lipo.data.augment import Spellings
from lipo.data.batching import EncodedMolecules, make_loader
from lipo.data.features import compute, pretraining_descriptors, standardisation
from lipo.data.molecules import Molecules, content_sha256, load_molecules, locate
from lipo.data.splits import Split, make_split
from lipo.models.auxiliary import training_statistics
from lipo.models.backbones import Backbone, load_backbone
from lipo.models.regressor import LogDRegressor, assemble
from lipo.models.tokenizer import MAX_TOKENS
from lipo.strategies import STRATEGIES, check_knobs
from lipo.training.fit import EpochHook, FitResult, evaluate, fit, predict
from lipo.training.resume import TrainingState, data_digest


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
    """Parameters the forward pass uses. PEFT keeps a frozen ``original_module`` copy of each
    module in ``modules_to_save`` (the head) that is never used: it is not counted."""
    used = [(n, p) for n, p in model.named_parameters() if ".original_module." not in n]
    return {
        "trainable_params": sum(p.numel() for _, p in used if p.requires_grad),
        "total_params": sum(p.numel() for _, p in used),
    }


class TrialRun:
    """Builds models and loaders for one RunConfig; strategies decide what to fit on."""

    def __init__(
        self,
        cfg: RunConfig,
        ws: Workspace,
        accelerator: Accelerator,
        on_epoch: EpochHook | None = None,
        log=None,
        state_root: Path | None = None,
        save_every: int = 0,
    ):
        self.cfg, self.ws, self.accelerator, self.on_epoch = cfg, ws, accelerator, on_epoch
        # Resumable fits: state_root/<phase>, or fit-<k> for the k-th fit (None: no saving).
        self.state_root, self.save_every, self.fits = state_root, save_every, 0
        # log(metrics, step): strategy outputs (curves) into the trial's run, main process only
        self.log = log if log is not None else (lambda metrics, step: None)
        self.step_log = log  # the per-step training curves: None on the other processes
        self.split = ws.split
        self.backbone: Backbone | None = None
        self.data: EncodedMolecules | None = None
        self.spellings: Spellings | None = None  # randomised SMILES (augment, tta)
        self.param_counts: dict[str, int] = {}  # of the last model built
        self.tables: dict = {}  # strategy outputs, logged as CSV artifacts
        self.inputs: dict = {}  # molecules trained on beyond the split, as MLflow datasets

    @property
    def train_smiles(self) -> list[str]:
        return [self.ws.mols.smiles[i] for i in self.split.train]

    @property
    def smiles(self) -> list[str]:
        return self.ws.mols.smiles

    @property
    def rows(self) -> np.ndarray:
        return self.ws.mols.rows

    @property
    def data_sha256(self) -> str:
        return self.ws.data_sha256

    def targets(self, positions) -> np.ndarray:
        return self.data.targets[positions]

    def token_lengths(self, positions) -> np.ndarray:
        return np.array([len(self.data.ids[p]) for p in positions], dtype=float)

    def new_model(self, backbone: Backbone | None = None) -> LogDRegressor:
        """A fresh model on the configured backbone, or on ``backbone`` (e.g. an adapted one)."""
        set_seed(self.cfg.seed)
        self.backbone = backbone or load_backbone(self.cfg.backbone, self.train_smiles)
        features = compute(self.cfg.head_features, self.ws.mols.smiles)
        descriptors = self.aux_targets(self.ws.mols.smiles)
        if self.data is None:
            ids = self.backbone.tokenizer(
                self.ws.mols.smiles, truncation=True, max_length=MAX_TOKENS
            )["input_ids"]
            smiles = list(self.ws.mols.smiles)
            self.data = EncodedMolecules(ids, self.ws.mols.y, features, smiles, descriptors)
            self.spellings = Spellings(self.backbone.tokenizer, self.cfg.seed, MAX_TOKENS)
        y_train = self.ws.mols.y[self.split.train]
        stats = (
            None
            if features is None
            else standardisation(features, self.split.train, self.cfg.head_features)
        )
        aux_stats = (
            None if descriptors is None else training_statistics(descriptors, self.split.train)
        )
        model = assemble(self.backbone, self.cfg, y_train.mean(), y_train.std(), stats, aux_stats)
        self.param_counts = count_params(model)
        return model

    def aux_targets(self, smiles: list[str]):
        """The raw descriptors aux_descriptors regresses, per molecule (None when it is 0);
        cached per SMILES list, like the head's features."""
        return pretraining_descriptors(smiles) if self.cfg.aux_descriptors > 0 else None

    def loader(self, positions, shuffle: bool):
        size = self.cfg.batch_size if shuffle else self.cfg.eval_batch_size
        return make_loader(
            self.data,
            positions,
            size,
            self.backbone.tokenizer.pad_token_id,
            shuffle,
            seed=self.cfg.seed,
        )

    def fit(
        self, model, train_positions, pools=None, report: bool = True, phase: str | None = None
    ) -> FitResult:
        """``report=False``: an intermediate fit (a strategy's scoring or an earlier round)
        that reports no epochs to the pruner or to the trial's curves. ``phase``: the fit's
        name within the strategy (influence's ``score`` and ``retrain``), for a strategy whose
        retry may skip a fit; default: numbered in call order."""
        self.fits += 1
        state = None
        if self.state_root is not None:
            phase = phase or f"fit-{self.fits}"
            identity = {
                "strategy": self.cfg.strategy,
                "phase": phase,
                "data": data_digest(self.data, [train_positions, *(pools or [])]),
            }
            state = TrainingState(
                self.state_root / phase, self.accelerator, self.save_every, identity
            )
        with self.respelled():
            pools = self.augmented(train_positions, pools)
            val = self.with_tta(self.split.val)
            return fit(
                model,
                self.loader(train_positions, True),
                self.loader(val, False),
                self.cfg,
                self.accelerator,
                self.on_epoch if report else None,
                pools,
                state,
                on_step=self.step_log if report else None,
            )

    @contextlib.contextmanager
    def respelled(self):
        """Rows of randomised SMILES added inside the block are gone after it."""
        size = len(self.data)
        try:
            yield
        finally:
            self.data.truncate(size)

    def spell(self, positions, n: int, purpose: str) -> np.ndarray:
        """Positions of ``n`` new rows per molecule at ``positions``, each a randomised SMILES
        of it (the same for the same seed, purpose and molecule); cached per trial."""
        ids, origin = self.spellings.rows(self.data.smiles, positions, n, purpose)
        return self.data.respell(origin, ids)

    def augmented(self, train_positions, pools):
        """Each epoch's pool plus ``augment`` fresh randomised SMILES of each of its molecules."""
        if self.cfg.augment <= 0:
            return pools
        pools = pools if pools is not None else [np.asarray(train_positions)] * self.cfg.epochs
        return [
            np.concatenate([pool, self.spell(pool, self.cfg.augment, f"augment:{epoch}")])
            for epoch, pool in enumerate(pools, 1)
        ]

    def with_tta(self, positions) -> np.ndarray:
        """``positions`` plus ``tta`` randomised SMILES of each, the same at every evaluation:
        ``predict`` averages a molecule's rows into one prediction."""
        if self.cfg.tta <= 0:
            return np.asarray(positions)
        return np.concatenate([positions, self.spell(positions, self.cfg.tta, "tta")])

    def discard_state(self) -> None:
        """The trial ended (finished, pruned or failed): nothing left to resume."""
        if self.state_root is not None:
            TrainingState(self.state_root, self.accelerator, 0).discard()

    def extend(self, smiles: list[str], labels: np.ndarray) -> np.ndarray:
        """Append molecules from outside the table (an external pool) to what loaders can
        serve; returns their positions. Call after ``new_model`` (it needs the tokenizer)."""
        ids = self.backbone.tokenizer(smiles, truncation=True, max_length=MAX_TOKENS)["input_ids"]
        extra = None if self.data.extra is None else compute(self.cfg.head_features, smiles)
        descriptors = None if self.data.descriptors is None else self.aux_targets(smiles)
        return self.data.append(ids, labels, extra, smiles, descriptors=descriptors)

    @contextlib.contextmanager
    def extended(self, smiles: list[str], labels: np.ndarray):
        """``extend`` for the duration of a block only: afterwards the table is as before, so
        a later ``extend`` gets the same positions (and the same batch order) whether or not
        this block ran (a cached computation skips it)."""
        size = len(self.data)
        try:
            yield self.extend(smiles, labels)
        finally:
            self.data.truncate(size)

    def predict_positions(self, model, positions):
        """(predictions, labels, positions) computed by this process alone, unsharded."""
        return predict(self.accelerator.unwrap_model(model), self.loader(positions, False))

    def save_table(self, name: str, table) -> None:
        """A strategy output (CSV) to log with the trial's artifacts."""
        self.tables[name] = table

    def add_input(self, name: str, molecules) -> None:
        """Molecules the final model trained on beyond the training split (a table with a
        'smiles' column), logged as an MLflow dataset input of the trial's run."""
        self.inputs[name] = molecules

    def evaluate(self, model, part: str):
        """Metrics and a predictions table for one split part ('val' or, finally, 'test')."""
        with self.respelled():  # tta: a molecule's rows are averaged into one prediction
            positions = self.with_tta(self.split.part(part))
            loader = self.accelerator.prepare(self.loader(positions, False))
            metrics, (pred, y, positions) = evaluate(model, loader, self.accelerator, part)
        return metrics, self.table(pred, y, positions)

    def val_table(self, result: FitResult) -> pd.DataFrame:
        """The best epoch's validation predictions, kept by the fit; evaluated once more
        only when that epoch ran in an earlier process (a resumed fit). Every rank calls it."""
        if result.val_predictions is None:
            return self.evaluate(result.model, "val")[1]
        return self.table(*result.val_predictions)

    def table(self, pred, y, positions) -> pd.DataFrame:
        """One row per molecule: its table row, SMILES, label and prediction, in table-row
        order (evaluation batches molecules by length, and each seed spells them differently:
        sorted, two seeds' tables line up row for row)."""
        table = pd.DataFrame(
            {
                "row": self.ws.mols.rows[positions],
                "smiles": [self.ws.mols.smiles[p] for p in positions],
                "y_true": y,
                "y_pred": pred,
            }
        )
        return table.sort_values("row", kind="stable", ignore_index=True)


def train_trial(run: TrialRun) -> FitResult:
    check_knobs(run.cfg)
    return STRATEGIES.get(run.cfg.strategy).train(run)
