"""What each final row's ensemble serves: the seeds' mean blended with the descriptor partner
(``lipo.inference.partner``) by the weight its validation predictions choose, as the final
phase's exported model and ``predict --study NAME --final`` compute it (the same code, and the
partner's boosters from the same cache: refitted identically where the cache is cold), with the
test predictions of the members it serves (the final runs' refits on training + validation
where they have them).

Per final row it gives the served validation and test predictions as one-member tables, so
that the interval's coverage and the error by similarity are measured on what is served."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from lipo.errors import LipoError
from lipo.inference.bundle import fit_partner
from lipo.inference.conformal import ensemble_mean
from lipo.report.references import rebuild_split
from lipo.tracking.finals import newest_refits


def served_tables(rows: list, runs: list, val_tables: dict, test_tables: dict, notes: list):
    """Sets ``served_mse`` and ``served_weight`` on each final row (one split) whose runs all
    have both tables; returns its served (val, test) tables keyed as ``val_tables``."""
    by_id, train_sets, served = {r.run_id: r for r in runs}, {}, {}
    for row in (r for r in rows if r.kind == "final" and len(r.split_shas) <= 1):
        key = tuple(row.run_ids)
        vals, tests = val_tables.get(key, []), test_tables.get(key, [])
        if not row.run_ids or len(vals) != len(row.run_ids) or len(tests) != len(row.run_ids):
            continue
        try:
            if row.split_sha256 not in train_sets:
                train_sets[row.split_sha256] = training_set(
                    by_id[row.run_ids[0]].params, row.split_sha256
                )
        except (LipoError, KeyError) as exc:
            notes.append(f"served blend skipped for {row.label} on {row.split}: {exc}")
            continue
        val, test = ensemble_mean(vals), ensemble_mean(tests)
        partner, val_pred = fit_partner(*train_sets[row.split_sha256], val)
        test_pred = partner.blend(test["mean"].to_numpy(), list(test["smiles"]))
        row.served_mse = float(np.mean((test_pred - test["y_true"].to_numpy()) ** 2))
        row.served_weight = partner.weight
        served[key] = (one_member(val, val_pred), one_member(test, test_pred))
    return served


def served_test_tables(store, rows: list, runs: list, tables: dict) -> dict:
    """Per final row (keyed as ``tables``), the test tables of what its ensemble serves: each
    run's newest finished refit (``lipo.final.refit``) where it has one, else the run's own
    table, member by member as the exported bundle picks them (``bundle.gather_members``)."""
    refits, served = newest_refits(runs), dict(tables)
    with tempfile.TemporaryDirectory() as tmp:
        for row in (r for r in rows if r.kind == "final" and r.run_ids):
            own = tables.get(tuple(row.run_ids), [])
            if len(own) != len(row.run_ids) or not any(i in refits for i in row.run_ids):
                continue
            served[tuple(row.run_ids)] = [
                refit_table(store, refits.get(run_id), Path(tmp), table)
                for run_id, table in zip(row.run_ids, own)
            ]
    return served


def refit_table(store, refit_id: str | None, tmp: Path, own: pd.DataFrame) -> pd.DataFrame:
    """The refit's test predictions, or the run's own where it has no refit (or lost its
    table)."""
    path = store.download(refit_id, "predictions_test.csv", tmp / refit_id) if refit_id else None
    return pd.read_csv(path) if path is not None else own


def training_set(params: dict, split_sha: str) -> tuple[list[str], np.ndarray]:
    mols, split = rebuild_split(params, split_sha)
    train = split.part("train")
    return [mols.smiles[i] for i in train], mols.y[train]


def one_member(frame: pd.DataFrame, pred: np.ndarray) -> pd.DataFrame:
    """A predictions table (row, smiles, y_true, y_pred) holding the served prediction."""
    return pd.DataFrame(
        {
            "row": frame.index,
            "smiles": frame["smiles"].to_numpy(),
            "y_true": frame["y_true"].to_numpy(),
            "y_pred": pred,
        }
    )
