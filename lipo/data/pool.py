"""The external pool for influence selection (default: External-Dataset_for_Task2.csv in the
data folder; ``--pool FILE`` for another).

Some pool molecules are Lipophilicity molecules under other labels (10 identical, 27 ignoring
stereochemistry, in the default pool). They leave the pool: the Lipophilicity label is kept,
and a molecule of the validation or test split never re-enters training through the pool.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem

from lipo.data.molecules import POOL_FILE, data_dir, load_molecules
from lipo.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def pool_path(run) -> Path:
    given = run.cfg.strategy_args.get("pool")
    if given:
        return Path(given).expanduser()
    if data_dir() is None:
        raise DataError(
            f"no pool: give --pool FILE or set LIPO_DATA_DIR to a folder holding {POOL_FILE}"
        )
    return data_dir() / POOL_FILE


def flat(smiles: str) -> str:
    """Canonical SMILES without stereochemistry, to catch the same molecule drawn twice."""
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles), isomericSmiles=False)


def load_pool(run) -> pd.DataFrame:
    path = pool_path(run)
    if not path.is_file():
        raise DataError(f"{path}: no such pool file")
    pool = load_molecules(path)  # same validation as the data: bad rows named, empty rejected
    known = {
        flat(s): part
        for part in ("train", "val", "test")
        for s in (run.ws.mols.smiles[i] for i in run.split.part(part))
    }
    where = [known.get(flat(s)) for s in pool.smiles]
    overlap = {part: where.count(part) for part in ("train", "val", "test")}
    n_overlap = sum(overlap.values())
    if n_overlap:
        log.warning(
            "%s: %d pool molecules are Lipophilicity molecules (train %d, val %d, test "
            "%d); they leave the pool and keep their Lipophilicity labels",
            path,
            n_overlap,
            overlap["train"],
            overlap["val"],
            overlap["test"],
        )
    run.log({"pool/size": len(pool), "pool/overlap": n_overlap}, 0)
    keep = np.array([w is None for w in where])
    if not keep.any():
        raise DataError(f"{path}: every pool molecule is already in Lipophilicity")
    return pd.DataFrame(
        {"row": pool.rows[keep], "smiles": np.array(pool.smiles)[keep], "label": pool.y[keep]}
    )


def check_k(pool: pd.DataFrame, k: int) -> None:
    """k pool molecules must exist: above the pool's size every k selects the same molecules
    (the whole pool), and a search over k would compare one setting with itself."""
    if k > len(pool):
        raise ConfigError(
            f"strategy.k={k} is more than the {len(pool)} pool molecules left "
            "after removing those already in Lipophilicity; choose k <= "
            f"{len(pool)}"
        )
