"""Train/val/test splits: seeded random, Bemis-Murcko scaffold, or a split file.

Splits index rows of the data file (as split files do), so the same file gives the same split
whatever rows validation dropped; dropped rows are then left out of every part.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from lipo.data.molecules import Molecules
from lipo.errors import DataError

log = logging.getLogger(__name__)
PARTS = ("train", "val", "test")
FRACTIONS = (0.8, 0.1)  # train, val; test takes the rest


@dataclass(frozen=True)
class Split:
    """Positions into a ``Molecules`` table for each part."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def part(self, name: str) -> np.ndarray:
        return getattr(self, name)

    @property
    def sha256(self) -> str:
        text = json.dumps({p: sorted(map(int, self.part(p))) for p in PARTS}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def make_split(spec: str, mols: Molecules, seed: int) -> Split:
    """``spec``: 'random', 'scaffold' or the path of a JSON split file."""
    if spec == "random":
        rows = random_rows(mols.n_rows, seed)
        name = f"random_seed{seed}"
    elif spec == "scaffold":
        rows = scaffold_rows(mols)
        name = "scaffold"
    elif spec.endswith(".json") or Path(spec).is_file():
        rows = read_split_file(Path(spec), mols.n_rows)
        name = Path(spec).stem
    else:
        raise DataError(f"--split {spec!r}: expected random, scaffold or a split file (.json)")
    return to_positions(name, rows, mols)


def random_rows(n_rows: int, seed: int) -> dict[str, np.ndarray]:
    """Same recipe as the canonical split files: rng(seed).permutation, then 80/10/10."""
    order = np.random.default_rng(seed).permutation(n_rows)
    cut1, cut2 = int(FRACTIONS[0] * n_rows), int(sum(FRACTIONS) * n_rows)
    return {"train": order[:cut1], "val": order[cut1:cut2], "test": order[cut2:]}


def scaffold_of(smiles: str) -> str:
    return MurckoScaffold.MurckoScaffoldSmiles(
        mol=Chem.MolFromSmiles(smiles), includeChirality=False
    )


def scaffold_rows(mols: Molecules) -> dict[str, np.ndarray]:
    """Largest scaffold groups first into train until 80%, then val until 90%, rest to test.

    A group never straddles two parts, so test scaffolds are unseen in training.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for smiles, row in zip(mols.smiles, mols.rows):
        groups[scaffold_of(smiles)].append(int(row))
    # DeepChem's order (size, then first row, both descending), so that ties between
    # equal-sized groups fall the same way as in the canonical scaffold.json.
    ordered = sorted(groups.values(), key=lambda rows: (len(rows), rows[0]), reverse=True)
    n = len(mols)
    cut1, cut2 = FRACTIONS[0] * n, sum(FRACTIONS) * n
    parts: dict[str, list[int]] = {p: [] for p in PARTS}
    for rows in ordered:
        if len(parts["train"]) + len(rows) <= cut1:
            parts["train"] += rows
        elif len(parts["train"]) + len(parts["val"]) + len(rows) <= cut2:
            parts["val"] += rows
        else:
            parts["test"] += rows
    return {p: np.array(sorted(rows), dtype=np.int64) for p, rows in parts.items()}


def read_split_file(path: Path, n_rows: int) -> dict[str, np.ndarray]:
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON split file ({exc})") from None
    if not isinstance(spec, dict) or any(p not in spec for p in PARTS):
        raise DataError(f"{path}: a split file needs lists under 'train', 'val' and 'test'")
    rows = {}
    for part in PARTS:
        values = spec[part]
        if not isinstance(values, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        ):
            raise DataError(f"{path}: '{part}' must be a list of integer row indices")
        bad = [v for v in values if not 0 <= v < n_rows]
        if bad:
            raise DataError(
                f"{path}: '{part}' holds row {bad[0]}, outside 0..{n_rows - 1} "
                f"({len(bad)} such rows)"
            )
        if len(set(values)) != len(values):
            raise DataError(f"{path}: '{part}' lists a row twice")
        rows[part] = np.array(values, dtype=np.int64)
    check_disjoint(path, rows)
    return rows


def check_disjoint(path: Path, rows: dict[str, np.ndarray]) -> None:
    for i, a in enumerate(PARTS):
        for b in PARTS[i + 1 :]:
            shared = np.intersect1d(rows[a], rows[b])
            if len(shared):
                raise DataError(
                    f"{path}: row {shared[0]} is in both '{a}' and '{b}' "
                    f"({len(shared)} shared rows)"
                )


def to_positions(name: str, rows: dict[str, np.ndarray], mols: Molecules) -> Split:
    position = {int(row): pos for pos, row in enumerate(mols.rows)}
    parts = {}
    for part in PARTS:
        kept = [position[int(r)] for r in rows[part] if int(r) in position]
        if len(kept) < len(rows[part]):
            log.warning(
                "split %s: %d %s rows were dropped as invalid",
                name,
                len(rows[part]) - len(kept),
                part,
            )
        if not kept:
            raise DataError(f"split {name}: the '{part}' part is empty")
        parts[part] = np.array(kept, dtype=np.int64)
    return Split(name=name, **parts)
