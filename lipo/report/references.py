"""Reference rows the report computes itself, on the runs' own split and seeds (train ──► test):
on Morgan fingerprints plus RDKit 2D descriptors, scikit-learn's gradient boosting and random
forest (100 trees, quick) and LightGBM at the strength a reviewer expects (1000 rounds); and
chemprop's D-MPNN on the molecular graph where chemprop is installed (``.[chemprop]``).

Each model's results are cached under ``reports/.cache`` keyed by model, split, data, seeds
and rounds, so a second report costs nothing; the features (~20 s for 4200 molecules) are
cached per data file. A model that cannot run here (chemprop not installed) gives a row that
says so, and is not cached: installing it later fills the row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

from lipo.data.features import fingerprint_descriptors
from lipo.data.molecules import content_sha256, load_molecules, locate
from lipo.data.splits import make_split
from lipo.errors import DataError, LipoError
from lipo.inference.partner import LIGHTGBM
from lipo.metrics import regression_metrics

log = logging.getLogger(__name__)
MODELS = ("hist_gradient_boosting", "random_forest", "lightgbm", "chemprop_dmpnn")
# Trees per model; LIPO_REPORT_TREES lowers it (tests). Measured on 2 cores shared with another
# job, 4200 molecules: features ~60 s (cached), 100 boosting rounds 16 s, 100 forest trees 15 s
# per seed; 200 of each doubled the fits for 0.01-0.02 test MSE.
TREES = 100
RECIPE = 3  # part of the cache key: bump it when the models or features change


def tree_count(model: str = "hist_gradient_boosting") -> int:
    """Trees, boosting rounds (or chemprop's epochs) of ``model``; LIPO_REPORT_TREES sets
    every model's (tests)."""
    default = {"lightgbm": LIGHTGBM["n_estimators"], "chemprop_dmpnn": 50}.get(model, TREES)
    return int(os.environ.get("LIPO_REPORT_TREES", default))


def cached_features(smiles: list[str], data_sha: str, cache: Path) -> np.ndarray:
    path = cache / f"features_{data_sha[:16]}_v{RECIPE}.npy"
    if path.is_file():
        return np.load(path)
    x = fingerprint_descriptors(smiles)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def fit_predict(name: str, seed: int, x: np.ndarray, y: np.ndarray, split) -> np.ndarray:
    trees = tree_count(name)
    xt, yt = x[split.train], y[split.train]
    if name == "lightgbm":
        import lightgbm  # a dependency; imported here so that the CLI's help stays light

        # every round is kept: the recipe fixes 1000, and nothing is picked on test
        model = lightgbm.LGBMRegressor(
            **{**LIGHTGBM, "n_estimators": trees}, n_jobs=2, random_state=seed, verbose=-1
        ).fit(xt, yt)
        return model.predict(x[split.test])
    if name == "random_forest":
        # a fifth of the 2265 columns per split: all of them is ~5x slower
        model = RandomForestRegressor(
            n_estimators=trees, max_features=0.2, n_jobs=2, random_state=seed
        ).fit(xt, yt)
        return model.predict(x[split.test])
    # half the columns per split: twice as fast, and the seed then changes the model (with
    # all columns boosting is deterministic and every seed gives the same numbers)
    model = HistGradientBoostingRegressor(
        max_iter=trees,
        learning_rate=0.15,
        max_features=0.5,
        early_stopping=False,
        random_state=seed,
    ).fit(xt, yt)
    # early stopping on our val split (not a random slice of train): pick the round there
    val_mse = [np.mean((p - y[split.val]) ** 2) for p in model.staged_predict(x[split.val])]
    best = int(np.argmin(val_mse))
    for i, pred in enumerate(model.staged_predict(x[split.test])):
        if i == best:
            return pred
    raise AssertionError("unreachable: staged_predict yields max_iter stages")


def rebuild_split(params: dict, split_sha: str):
    """The molecules and split the runs used, checked against their ``lipo.split_sha256``."""
    path = params.get("data")
    mols = load_molecules(Path(path) if path and Path(path).is_file() else locate(None))
    spec = params.get("split", "random")
    try:
        split = make_split(spec, mols, int(params.get("split_seed", 0)))
    except DataError as exc:
        raise LipoError(f"cannot rebuild split {spec!r}: {exc}") from None
    if split.sha256 != split_sha:
        raise LipoError(
            f"rebuilt split {split.name} has sha256 {split.sha256[:12]}, the runs "
            f"say {split_sha[:12]}: other data or split file"
        )
    return mols, split


def cache_file(name: str, split_sha: str, data_sha: str, seeds: list[int], cache: Path) -> Path:
    key = hashlib.sha256(
        json.dumps([name, split_sha, data_sha, sorted(seeds), tree_count(name), RECIPE]).encode()
    ).hexdigest()[:16]
    return cache / f"references_{name}_{key}.json"


def references(params: dict, split_sha: str, seeds: list[int], cache: Path) -> list[dict]:
    """Per model: {"model", "per_seed": {seed: metrics}, "fit_time_s", "split"}, cached on
    disk; a model that cannot run here: {"model", "missing": why}."""
    mols, split = rebuild_split(params, split_sha)
    data_sha = content_sha256(mols.smiles, mols.y)
    found = []
    for name in MODELS:
        path = cache_file(name, split_sha, data_sha, seeds, cache)
        if path.is_file():
            found.append(json.loads(path.read_text()))
            continue
        if name == "chemprop_dmpnn":
            from lipo.report.chemprop_reference import chemprop_missing

            if chemprop_missing():
                found.append({"model": name, "missing": chemprop_missing(), "split": split.name})
                continue
        try:
            fitted = fit_model(name, mols, split, data_sha, seeds, cache)
        except Exception as exc:  # noqa: BLE001 - an optional extra must not sink the report
            if name != "chemprop_dmpnn":
                raise
            found.append(
                {
                    "model": name,
                    "split": split.name,
                    "missing": f"failed: {type(exc).__name__}: {exc}"[:200],
                }
            )
            continue
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fitted, indent=1))
        found.append(fitted)
    return found


def fit_model(name: str, mols, split, data_sha: str, seeds: list[int], cache: Path) -> dict:
    y = mols.y.astype(np.float64)
    if name != "chemprop_dmpnn":
        x = cached_features(mols.smiles, data_sha, cache)
    per_seed, times = {}, []
    for seed in seeds:
        started = time.time()
        if name == "chemprop_dmpnn":
            from lipo.report.chemprop_reference import fit_predict_dmpnn

            pred = fit_predict_dmpnn(seed, mols.smiles, y, split, tree_count(name))
        else:
            pred = fit_predict(name, seed, x, y, split)
        times.append(time.time() - started)
        per_seed[str(seed)] = {
            k.split("/")[1]: v for k, v in regression_metrics(y[split.test], pred, "test").items()
        }
    return {
        "model": name,
        "per_seed": per_seed,
        "fit_time_s": float(np.mean(times)),
        "split": split.name,
    }
