"""Several trained runs as one ensemble: the mean prediction, the spread across members, and
optionally MC-dropout spread within each member.

Members are the final runs of a study's best settings (one per seed; ``--study NAME
--final``) or any runs named with ``--run``."""

from __future__ import annotations

import numpy as np
import torch

from lipo.errors import ConfigError
from lipo.inference.predict import predict_logd
from lipo.models.dropout import mc_dropout as draw_with_dropout

MC_SEED = 0  # dropout masks are drawn from this seed: the same command gives the same spread


def final_member_runs(uri: str, study: str) -> tuple[list, dict[str, str]]:
    """The ``RunRecord``s of the newest final phase of ``study`` (its controls excluded), one
    per seed in seed order, and the newest refit of each (``finals.newest_refits``)."""
    from lipo.tracking.finals import final_runs, newest_group, newest_refits
    from lipo.tracking.reader import StoreReader

    every = StoreReader(uri).study_runs()
    runs = [
        r for r in final_runs(every) if r.experiment == study and not r.tags.get("lipo.control")
    ]
    if not runs:
        raise ConfigError(
            f"--study {study} --final: no finished final run of study {study!r} "
            f"at {uri}; run 'python launch.py --study {study} --final' first"
        )
    return newest_group(runs), newest_refits(r for r in every if r.experiment == study)


def mc_dropout(
    model, tokenizer, cfg, smiles: list[str], passes: int, batch_size: int
) -> np.ndarray:
    """(passes, molecules) predictions with only the dropout layers on, from a fixed seed."""
    torch.manual_seed(MC_SEED)
    return draw_with_dropout(
        model, lambda: predict_logd(model, tokenizer, cfg, smiles, batch_size), passes
    )


def combine(member_preds: np.ndarray, mc_draws: list[np.ndarray] | None) -> dict:
    """Columns of the ensemble: ``logd_pred`` (mean over members), ``logd_std`` (their
    standard deviation, n-1), ``logd_mc_std`` (root mean over members of each member's
    MC-dropout variance)."""
    out = {"logd_pred": member_preds.mean(axis=0)}
    if len(member_preds) > 1:
        out["logd_std"] = member_preds.std(axis=0, ddof=1)
    if mc_draws:
        out["logd_mc_std"] = np.sqrt(np.mean([d.var(axis=0) for d in mc_draws], axis=0))
    return out
