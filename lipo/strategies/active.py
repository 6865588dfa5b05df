"""Active learning by MC-dropout uncertainty.

Start from a random labelled subset of the training split; each round, train a fresh model,
then acquire the N molecules of the unlabelled rest whose prediction varies most across T
stochastic passes. Only the ``nn.Dropout`` modules are put in train mode for those passes:
``model.train()`` would change other behaviour too and inflate the uncertainty.
Controls: ``acquisition=random`` (same sizes, random picks) and ``one_shot`` (the original
study's variant: add the N most uncertain once, then train).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from lipo.errors import ConfigError
from lipo.train import FitResult, predict

KNOBS = {"initial": 500, "acquire": 256, "rounds": 3, "passes": 10,
         "acquisition": "uncertainty", "one_shot": False}


def train(run) -> FitResult:
    knobs = {**KNOBS, **{k: v for k, v in run.cfg.strategy_args.items() if k in KNOBS}}
    if knobs["acquisition"] not in ("uncertainty", "random"):
        raise ConfigError(f"unknown acquisition {knobs['acquisition']!r}: expected "
                          "uncertainty or random")
    rng = np.random.default_rng(run.cfg.seed)
    train_pos = np.asarray(run.split.train)
    labelled = rng.choice(train_pos, size=min(int(knobs["initial"]), len(train_pos)), replace=False)
    rounds = 1 if knobs["one_shot"] else int(knobs["rounds"])  # one shot: a single acquisition
    acquired = []
    for round_ in range(rounds + 1):
        last = round_ == rounds
        model = run.new_model()
        result = run.fit(model, labelled, report=last)
        run.log({"active/val_mse": result.best["val/mse"], "active/labelled": len(labelled)},
                len(labelled))
        if last:
            break
        pool = np.setdiff1d(train_pos, labelled)
        picked, scores = acquire(run, result.model, pool, knobs, rng)
        acquired.append(pd.DataFrame({"round": round_ + 1, "row": run.ws.mols.rows[picked],
                                      "smiles": [run.ws.mols.smiles[p] for p in picked],
                                      "uncertainty": scores}))
        labelled = np.concatenate([labelled, picked])
    if acquired:
        run.save_table("active_acquired", pd.concat(acquired, ignore_index=True))
    return result


def acquire(run, model, pool: np.ndarray, knobs: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    n = min(int(knobs["acquire"]), len(pool))
    spread = mc_dropout_std(run, model, pool, int(knobs["passes"]))
    if knobs["acquisition"] == "random":
        idx = rng.choice(len(pool), size=n, replace=False)
    else:
        idx = np.argsort(-spread, kind="stable")[:n]
    return pool[idx], spread[idx]


@torch.no_grad()
def mc_dropout_std(run, model, positions: np.ndarray, passes: int) -> np.ndarray:
    """Standard deviation (logD) of ``passes`` predictions with only dropout active."""
    loader = run.accelerator.prepare(run.loader(positions, False))
    model.eval()
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for module in dropouts:
        module.train()
    try:
        draws = []
        for _ in range(passes):
            pred, _, pos = predict(model, loader, run.accelerator, keep_mode=True)
            draws.append(pred[np.argsort(pos)])
    finally:
        model.eval()
    order = np.argsort(np.argsort(positions))  # back from sorted positions to pool order
    return np.std(np.stack(draws), axis=0)[order]
