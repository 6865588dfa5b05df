"""The seed ensemble as one folder: what the registered pyfunc model and ``predict --study
NAME --final`` both load, so the two give the same columns from the same code.

    ensemble.json             members (seed, run id), the calibration residuals, the coverage
    members/seed-S/checkpoint a final run's checkpoint, or its refit's (lipo.models.checkpoint)
    members/seed-S/predictions_val.csv  its validation predictions (the calibration set)
    train_fingerprints.npz    the training molecules' Morgan fingerprints, packed
    partner/lightgbm-I.txt    the descriptor partner's boosters (lipo.inference.partner)
    partner/kernel-svr.npz    its kernel model's support vectors (lipo.inference.kernel)

Per molecule: ``logd_pred`` (mean over members, blended with the descriptor partner by the
weight validation chose), ``logd_std`` (the members' spread, n-1; missing for a single
member), ``logd_lo``/``logd_hi`` (split-conformal interval of ``logd_pred``,
calibrated on the validation split), ``similarity`` (to the training set) and ``error``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lipo.inference import similarity
from lipo.inference.conformal import (
    DEFAULT_COVERAGE,
    check_coverage,
    conformal_quantile,
    ensemble_mean,
    interval,
)
from lipo.inference.ensemble import combine, mc_dropout
from lipo.inference.kernel import cached_kernel
from lipo.inference.partner import (
    Partner,
    cached_boosters,
    choose_weight,
    mix,
    partner_features,
    partner_predict,
)
from lipo.inference.predict import parse, predict_logd, table
from lipo.models.checkpoint import load_checkpoint

MANIFEST = "ensemble.json"
FINGERPRINTS = "train_fingerprints.npz"
VAL_TABLE = "predictions_val.csv"
COLUMNS = ("logd_pred", "logd_std", "logd_lo", "logd_hi", "similarity", "error")


@dataclass(frozen=True)
class Member:
    seed: int
    run_id: str  # the final run: its validation predictions
    folder: Path  # holds checkpoint/ and predictions_val.csv
    refit_run_id: str | None = None  # the run whose checkpoint it serves, where refitted


def gather_members(
    download: Callable[[str, str, Path], Path],
    runs: list[tuple[int, str]],
    folder: Path,
    refits: dict[str, str] | None = None,
) -> list[Member]:
    """Each (seed, run id)'s checkpoint and validation predictions, fetched with
    ``download(run_id, artifact, into)`` into ``folder/members/seed-S``. ``refits``: a final
    run's refit run (``lipo.final.refit``) by its id, whose checkpoint is served instead."""
    members, refits = [], refits or {}
    for seed, run_id in runs:
        into = folder / "members" / f"seed-{seed}"
        into.mkdir(parents=True, exist_ok=True)
        download(refits.get(run_id, run_id), "checkpoint", into)
        if download(run_id, VAL_TABLE, into) is None or not (into / VAL_TABLE).is_file():
            raise ValueError(
                f"final run {run_id} (seed {seed}) has no {VAL_TABLE}: the "
                "conformal interval is calibrated on it"
            )
        members.append(Member(seed, run_id, into, refits.get(run_id)))
    return members


def write_bundle(
    folder: Path,
    members: list[Member],
    train_smiles: list[str],
    coverage: float = DEFAULT_COVERAGE,
    train_y=None,
) -> Path:
    """Completes ``folder`` (the members already in it, from ``gather_members``). With the
    training molecules' ``train_y``, adds the descriptor partner (``fit_partner``)."""
    check_coverage(coverage)
    val = ensemble_mean([pd.read_csv(m.folder / VAL_TABLE) for m in members])
    partner, served = None, val["mean"].to_numpy()
    if train_y is not None:
        partner, served = fit_partner(train_smiles, train_y, val)
    residuals = np.abs(val["y_true"].to_numpy() - served)
    # refitted members were trained on the validation molecules too: similarity is to those
    seen = list(train_smiles) + (list(val["smiles"]) if any_refit(members) else [])
    similarity.save(folder / FINGERPRINTS, similarity.fingerprints(seen))
    manifest = {
        "members": [
            {
                "seed": m.seed,
                "run_id": m.run_id,
                "folder": m.folder.relative_to(folder).as_posix(),
                "refit_run_id": m.refit_run_id,
            }
            for m in members
        ],
        "coverage": coverage,
        "calibration": {
            "split": "val",
            "molecules": int(residuals.size),
            "abs_residuals": sorted(round(float(r), 6) for r in residuals),
        },
        "training_molecules": len(seen),
        "fingerprint": {"kind": "morgan", "radius": similarity.RADIUS, "bits": similarity.BITS},
    }
    if partner is not None:
        manifest["partner"] = partner.save(folder)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def any_refit(members: list[Member]) -> bool:
    return any(m.refit_run_id for m in members)


def fit_partner(train_smiles: list[str], train_y, val: pd.DataFrame) -> tuple[Partner, np.ndarray]:
    """The partner to serve and the served prediction on ``val`` (``ensemble_mean`` of the
    members' validation tables).

    The weight is chosen with a partner fitted on the training molecules alone; the boosters
    and kernel model served are then refitted, same settings, on training + validation
    molecules, as a model whose settings validation chose is refitted on all it may see (test
    MSE 0.463 -> 0.422 on scaffold.json for the boosters alone, 0.351 -> 0.349 on
    random_seed0). The validation prediction returned is the training-only blend's, so the
    interval is calibrated, and the validation figures reported, on molecules the blend did
    not see."""
    val_smiles, val_y = list(val["smiles"]), val["y_true"].to_numpy(float)
    train_y = np.asarray(train_y, float)
    train_rows = partner_features(train_smiles, cached=True)
    val_rows = partner_features(val_smiles, cached=True)
    texts = cached_boosters(train_smiles, train_y, rows=lambda: train_rows)
    kernel = cached_kernel(train_smiles, train_y, rows=lambda: train_rows)
    partner_val = partner_predict(texts, kernel, val_rows)
    weight, val_mse = choose_weight(val["mean"], partner_val, val_y)
    served_val = mix(weight, val["mean"], partner_val)
    seen, seen_y = list(train_smiles) + val_smiles, np.concatenate([train_y, val_y])
    both = lambda: np.vstack([train_rows, val_rows])  # noqa: E731 - the two parts' cached rows
    refit = cached_boosters(seen, seen_y, rows=both)
    refit_kernel = cached_kernel(seen, seen_y, rows=both)
    return Partner(refit, weight, val_mse, len(seen), refit_kernel), served_val


class Bundle:
    """A loaded ensemble folder: its members' models, calibration and training set."""

    def __init__(self, folder: Path, device=None):
        """``device``: where the members predict (default: where they load, the CPU)."""
        manifest = json.loads((folder / MANIFEST).read_text())
        self.seeds = [m["seed"] for m in manifest["members"]]
        self.run_ids = [m["run_id"] for m in manifest["members"]]
        self.models = [
            load_checkpoint(folder / m["folder"] / "checkpoint") for m in manifest["members"]
        ]
        for model, _, _ in self.models if device is not None else ():
            model.to(device)
        self.coverage = float(manifest["coverage"])
        self.residuals = np.asarray(manifest["calibration"]["abs_residuals"])
        self.train_bits = similarity.load(folder / FINGERPRINTS)
        entry = manifest.get("partner")
        self.partner = None if entry is None else Partner.load(folder, entry)

    def half_width(self, coverage: float | None = None) -> float:
        return conformal_quantile(self.residuals, self.coverage if coverage is None else coverage)

    def table(
        self,
        raw: list[str],
        batch_size: int = 128,
        mc_passes: int = 0,
        coverage: float | None = None,
    ) -> pd.DataFrame:
        """One row per input row (row, smiles, canonical_smiles, the columns in COLUMNS, and
        with ``mc_passes`` ``logd_mc_std``); unparsable rows keep NaN and their reason."""
        canon, valid = parse(raw)
        smiles = [canon[i] for i in valid]
        preds, draws = [], []
        for model, tokenizer, cfg in self.models:
            preds.append(
                predict_logd(model, tokenizer, cfg, smiles, batch_size) if smiles else np.empty(0)
            )
            if mc_passes:
                draws.append(
                    mc_dropout(model, tokenizer, cfg, smiles, mc_passes, batch_size)
                    if smiles
                    else np.empty((mc_passes, 0))
                )
        found = combine(np.stack(preds), draws or None)
        if self.partner is not None:
            found["logd_pred"] = self.partner.blend(found["logd_pred"], smiles)
        lo, hi = interval(found["logd_pred"], self.half_width(coverage))
        columns = {
            "logd_pred": found["logd_pred"],
            "logd_std": found.get("logd_std", np.full(len(smiles), np.nan)),
        }
        if "logd_mc_std" in found:
            columns["logd_mc_std"] = found["logd_mc_std"]
        columns.update(
            {
                "logd_lo": lo,
                "logd_hi": hi,
                "similarity": similarity.max_tanimoto(
                    similarity.fingerprints(smiles), self.train_bits
                ),
            }
        )
        return table(raw, canon, valid, columns)


def summary(folder: Path) -> dict:
    """What a model card says of a bundle, without loading its models."""
    manifest = json.loads((folder / MANIFEST).read_text())
    residuals = manifest["calibration"]["abs_residuals"]
    return {
        "seeds": [m["seed"] for m in manifest["members"]],
        "run_ids": [m["run_id"] for m in manifest["members"]],
        "refit_run_ids": [m.get("refit_run_id") for m in manifest["members"]],
        "coverage": manifest["coverage"],
        "half_width": conformal_quantile(residuals, manifest["coverage"]),
        "calibration_molecules": len(residuals),
        "training_molecules": manifest["training_molecules"],
        "partner": manifest.get("partner"),
    }
