"""Curriculum learning: easy molecules first, the pool growing with the epochs.

Difficulty is the SMILES token count (or the RDKit heavy-atom count). Epoch e trains on the
molecules whose difficulty is at most d_min + (d_max - d_min) * pace(min(1, e / (frac * E))),
never fewer than the easiest ``start`` fraction. Pacing: linear (pace(t) = t), root
(sqrt(t): grows fast, then slows) or step (four equal stages); none, the control, trains on
every molecule from the first epoch.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from rdkit import Chem

from lipo.errors import ConfigError
from lipo.train import FitResult

PACING = {
    "linear": lambda t: t,
    "root": math.sqrt,
    "step": lambda t: math.floor(t * 4) / 4,
    "none": lambda t: 1.0,
}
KNOBS = {"difficulty": "tokens", "pacing": "linear", "frac": 0.5, "start": 0.2}
CONTROLS = {"no-curriculum": {"pacing": "none"}}


def train(run) -> FitResult:
    knobs = {**KNOBS, **{k: v for k, v in run.cfg.strategy_args.items() if k in KNOBS}}
    model = run.new_model()
    train = np.asarray(run.split.train)
    level = difficulty(run, train, knobs["difficulty"])
    pools = schedule(train, level, run.cfg.epochs, knobs)
    for epoch, pool in enumerate(pools, 1):
        run.log({"curriculum/pool_size": len(pool)}, epoch)
    run.save_table("curriculum_schedule", pd.DataFrame(
        {"epoch": range(1, len(pools) + 1), "pool_size": [len(p) for p in pools],
         "max_difficulty": [float(level[np.isin(train, p)].max()) for p in pools]}))
    return run.fit(model, train, pools=pools)


def difficulty(run, positions: np.ndarray, kind: str) -> np.ndarray:
    if kind == "tokens":
        return np.array([len(run.data.ids[p]) for p in positions], dtype=float)
    if kind == "heavy_atoms":
        return np.array([Chem.MolFromSmiles(run.ws.mols.smiles[p]).GetNumHeavyAtoms()
                         for p in positions], dtype=float)
    raise ConfigError(f"unknown curriculum difficulty {kind!r}: expected tokens or heavy_atoms")


def schedule(positions: np.ndarray, level: np.ndarray, epochs: int, knobs: dict) -> list:
    """The training positions of each epoch, easiest first."""
    if knobs["pacing"] not in PACING:
        raise ConfigError(f"unknown pacing {knobs['pacing']!r}: expected "
                          f"{', '.join(PACING)}")
    pace, frac = PACING[knobs["pacing"]], float(knobs["frac"])
    order = np.argsort(level, kind="stable")
    floor = max(1, int(math.ceil(float(knobs["start"]) * len(positions))))
    low, high = level.min(), level.max()
    pools = []
    for epoch in range(1, epochs + 1):
        threshold = low + (high - low) * pace(min(1.0, epoch / max(frac * epochs, 1e-9)))
        count = max(floor, int((level <= threshold).sum()))
        pools.append(positions[order[:count]])
    return pools
