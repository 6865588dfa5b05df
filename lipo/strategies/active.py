"""Active learning by MC-dropout uncertainty.

Start from a random labelled subset of the training split; each round, train a fresh model,
then acquire the N molecules of the unlabelled rest whose prediction varies most across T
stochastic passes. Only the ``nn.Dropout`` modules are put in train mode for those passes:
``model.train()`` would change other behaviour too and inflate the uncertainty.
Controls: ``acquisition=random`` (same sizes, random picks) and ``one_shot`` (the original
study's variant: add the N most uncertain once, then train). ``external=True`` also offers
the external pool's molecules (``lipo.data.pool``: those already in Lipophilicity left out) for
acquisition; their labels are revealed only when acquired, like the training split's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lipo.data.pool import load_pool
from lipo.errors import ConfigError
from lipo.models.dropout import mc_dropout
from lipo.strategies import knobs as strategy_knobs
from lipo.strategies.surface import Trial
from lipo.training.fit import FitResult, predict

KNOBS = {
    "initial": 500,
    "acquire": 256,
    "rounds": 3,
    "passes": 10,
    "acquisition": "uncertainty",
    "one_shot": False,
    "external": False,
}
CONTROLS = {"random-acquisition": {"acquisition": "random"}, "one-shot": {"one_shot": True}}


def train(run: Trial) -> FitResult:
    knobs = strategy_knobs(KNOBS, run.cfg)
    if knobs["acquisition"] not in ("uncertainty", "random"):
        raise ConfigError(
            f"unknown acquisition {knobs['acquisition']!r}: expected uncertainty or random"
        )
    rng = np.random.default_rng(run.cfg.seed)
    train_pos = np.asarray(run.split.train)
    labelled = rng.choice(train_pos, size=min(int(knobs["initial"]), len(train_pos)), replace=False)
    rounds = 1 if knobs["one_shot"] else int(knobs["rounds"])  # one shot: a single acquisition
    acquired, candidates, external = [], train_pos, None
    for round_ in range(rounds + 1):
        last = round_ == rounds
        model = run.new_model()
        if knobs["external"] and external is None:  # extending needs the model's tokenizer
            external = external_pool(run)
            candidates = np.concatenate([train_pos, external["position"]])
        # The unlabelled molecules' labels are unknown until acquired: not even their mean.
        model.set_target_statistics(run.targets(labelled))
        result = run.fit(model, labelled, report=last)
        run.log(
            {"active/val_mse": result.best["val/mse"], "active/labelled": len(labelled)},
            len(labelled),
        )
        if last:
            break
        pool = np.setdiff1d(candidates, labelled)
        picked, scores = acquire(run, result.model, pool, knobs, rng)
        acquired.append(
            describe(run, picked, external).assign(round=round_ + 1, uncertainty=scores)
        )
        labelled = np.concatenate([labelled, picked])
    if acquired:
        table = pd.concat(acquired, ignore_index=True)
        run.save_table("active_acquired", table)
        run.add_input("active_acquired", table)
    return result


def external_pool(run) -> pd.DataFrame:
    """The external pool appended to the trial's molecules, with the positions loaders know."""
    pool = load_pool(run)
    positions = run.extend(list(pool["smiles"]), pool["label"].to_numpy(np.float32))
    return pool.assign(position=positions)


def describe(run, positions: np.ndarray, external: pd.DataFrame | None) -> pd.DataFrame:
    """Source (train | pool), row in its own file, and SMILES of acquired positions."""
    n_data = len(run.smiles)
    by_position = {} if external is None else external.set_index("position")
    records = []
    for p in positions:
        if p < n_data:
            records.append(("train", run.rows[p], run.smiles[p]))
        else:
            records.append(("pool", by_position.loc[p, "row"], by_position.loc[p, "smiles"]))
    return pd.DataFrame(records, columns=["source", "row", "smiles"])


def acquire(run, model, pool: np.ndarray, knobs: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    n = min(int(knobs["acquire"]), len(pool))
    spread = mc_dropout_std(run, model, pool, int(knobs["passes"]))
    if knobs["acquisition"] == "random":
        idx = rng.choice(len(pool), size=n, replace=False)
    else:
        idx = np.argsort(-spread, kind="stable")[:n]
    return pool[idx], spread[idx]


def mc_dropout_std(run, model, positions: np.ndarray, passes: int) -> np.ndarray:
    """Standard deviation (logD) of ``passes`` predictions with only dropout active."""
    loader = run.accelerator.prepare(run.loader(positions, False))

    def predict_once() -> np.ndarray:
        pred, _, pos = predict(model, loader, run.accelerator, keep_mode=True)
        return pred[np.argsort(pos)]

    draws = mc_dropout(model, predict_once, passes)
    order = np.argsort(np.argsort(positions))  # back from sorted positions to pool order
    return np.std(draws, axis=0)[order]
