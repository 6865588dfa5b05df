"""Curriculum learning: easy molecules first, the pool growing with the epochs.

Difficulty is the SMILES token count (or the RDKit heavy-atom count). Pacing is in quantiles
of difficulty (competence-based, Platanios et al. 2019): epoch e trains on the easiest
c(e) fraction of the training set. c starts at ``start`` in epoch 1 and reaches 1 at epoch
max(2, ceil(frac * E)), growing linearly (c0 + (1 - c0) t), as a root (sqrt(c0^2 +
(1 - c0^2) t): fast, then slower) or in four equal steps; none, the control, trains on every
molecule from the first epoch. A single epoch trains on the ``start`` fraction. (Pacing in
raw difficulty does not shape training here: Lipophilicity's lengths run from 8 to 207
tokens with a median of 47, so a threshold linear in length already admitted ~99% of the
molecules in epoch 1.)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from rdkit import Chem

from lipo.errors import ConfigError
from lipo.strategies import knobs as strategy_knobs
from lipo.strategies.surface import Trial
from lipo.training.fit import FitResult

# competence c(t, c0) for t from 0 (epoch 1) to 1 (the epoch the full set is reached)
PACING = {
    "linear": lambda t, c0: c0 + (1 - c0) * t,
    "root": lambda t, c0: math.sqrt(c0**2 + (1 - c0**2) * t),
    "step": lambda t, c0: c0 + (1 - c0) * math.floor(t * 4) / 4,
    "none": lambda t, c0: 1.0,
}
KNOBS = {"difficulty": "tokens", "pacing": "linear", "frac": 0.5, "start": 0.2}
CONTROLS = {"no-curriculum": {"pacing": "none"}}


def train(run: Trial) -> FitResult:
    knobs = strategy_knobs(KNOBS, run.cfg)
    model = run.new_model()
    train = np.asarray(run.split.train)
    level = difficulty(run, train, knobs["difficulty"])
    pools = schedule(train, level, run.cfg.epochs, knobs)
    fractions = [len(p) / len(train) for p in pools]
    for epoch, (pool, fraction) in enumerate(zip(pools, fractions), 1):
        run.log({"curriculum/pool_size": len(pool), "curriculum/pool_fraction": fraction}, epoch)
    # pool_fraction first: the report draws the first column after epoch (and the second on
    # its own axis)
    run.save_table(
        "curriculum_schedule",
        pd.DataFrame(
            {
                "epoch": range(1, len(pools) + 1),
                "pool_fraction": fractions,
                "max_difficulty": [float(level[np.isin(train, p)].max()) for p in pools],
                "pool_size": [len(p) for p in pools],
            }
        ),
    )
    return run.fit(model, train, pools=pools)


def difficulty(run, positions: np.ndarray, kind: str) -> np.ndarray:
    if kind == "tokens":
        return run.token_lengths(positions)
    if kind == "heavy_atoms":
        return np.array(
            [Chem.MolFromSmiles(run.smiles[p]).GetNumHeavyAtoms() for p in positions], dtype=float
        )
    raise ConfigError(f"unknown curriculum difficulty {kind!r}: expected tokens or heavy_atoms")


def competence(epochs: int, knobs: dict) -> list[float]:
    """The fraction of the training set (easiest first) each epoch trains on."""
    if knobs["pacing"] not in PACING:
        raise ConfigError(f"unknown pacing {knobs['pacing']!r}: expected {', '.join(PACING)}")
    start, frac = float(knobs["start"]), float(knobs["frac"])
    if not 0 < start <= 1:
        raise ConfigError(
            f"strategy.start={start:g}: the fraction seen in epoch 1 must be in (0, 1]"
        )
    if not 0 < frac <= 1:
        raise ConfigError(
            f"strategy.frac={frac:g}: the share of the epochs after which every "
            f"molecule is seen must be in (0, 1]"
        )
    # At least one epoch at ``start`` before the full set, or there is no order to speak of.
    full = min(epochs, max(2, math.ceil(frac * epochs - 1e-9)))
    pace = PACING[knobs["pacing"]]
    return [
        min(1.0, pace(min(1.0, (e - 1) / max(full - 1, 1)), start)) for e in range(1, epochs + 1)
    ]


def schedule(positions: np.ndarray, level: np.ndarray, epochs: int, knobs: dict) -> list:
    """The training positions of each epoch: the easiest c(e) x n (ties in the table's
    order), so epoch 1 holds the ``start`` fraction whatever the difficulty's distribution."""
    order = np.argsort(level, kind="stable")
    counts = [max(1, round(c * len(positions))) for c in competence(epochs, knobs)]
    return [positions[order[:count]] for count in counts]
