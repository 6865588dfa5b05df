"""How far a molecule is from the training set: the largest Tanimoto similarity of its Morgan
fingerprint (radius 2, 2048 bits, as the report's reference models use) to any training
molecule. Stored packed (2048 bits = 256 bytes a molecule: ~0.9 MB for 3,400 molecules).

Low similarity marks a prediction the training data say little about: the conformal interval
is calibrated over molecules like the validation split's, not for one far from all of them."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdFingerprintGenerator

RADIUS, BITS = 2, 2048
BANDS = (0.4, 0.6, 0.8)  # edges of the report's similarity bands: <0.4, 0.4-0.6, 0.6-0.8, >=0.8
CHUNK = 4096  # training fingerprints unpacked at a time: 4096 x 2048 float32 = 32 MB


def fingerprints(smiles: list[str]) -> np.ndarray:
    """(molecules, 256) uint8: each molecule's Morgan bits, packed. A SMILES RDKit cannot
    parse is an error here: callers fingerprint parsed molecules only."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=RADIUS, fpSize=BITS)
    rows = np.zeros((len(smiles), BITS // 8), dtype=np.uint8)
    RDLogger.DisableLog("rdApp.*")
    try:
        for i, smi in enumerate(smiles):
            mol = Chem.MolFromSmiles(smi)
            if mol is None:
                raise ValueError(f"molecule {i} ({smi!r}): RDKit cannot parse it")
            rows[i] = np.packbits(generator.GetFingerprintAsNumPy(mol).astype(np.uint8))
    finally:
        RDLogger.EnableLog("rdApp.*")
    return rows


def save(path: Path, packed: np.ndarray) -> Path:
    np.savez_compressed(path, bits=packed, radius=RADIUS, size=BITS)
    return path


def load(path: Path) -> np.ndarray:
    with np.load(path) as stored:
        if (int(stored["radius"]), int(stored["size"])) != (RADIUS, BITS):
            raise ValueError(
                f"{path}: fingerprints of radius {int(stored['radius'])}, "
                f"{int(stored['size'])} bits; this code computes radius {RADIUS}, "
                f"{BITS} bits"
            )
        return stored["bits"]


def max_tanimoto(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per query row, its largest Tanimoto similarity to a reference row (both packed).
    Tanimoto = |a & b| / (|a| + |b| - |a & b|); two empty fingerprints count as 0."""
    best = np.zeros(len(query))
    if len(query) == 0 or len(reference) == 0:
        return best
    q = np.unpackbits(query, axis=1).astype(np.float32)
    q_count = q.sum(axis=1)[:, None]
    for start in range(0, len(reference), CHUNK):
        r = np.unpackbits(reference[start : start + CHUNK], axis=1).astype(np.float32)
        common = q @ r.T  # exact: counts up to 2048 are integers in float32
        union = q_count + r.sum(axis=1)[None, :] - common
        sim = np.divide(common, union, out=np.zeros_like(common), where=union > 0)
        best = np.maximum(best, sim.max(axis=1))
    return best


def band(similarity: np.ndarray) -> np.ndarray:
    """The band label of each similarity: '<0.4', '0.4-0.6', '0.6-0.8', '>=0.8'."""
    labels = np.array(band_labels())
    return labels[np.searchsorted(np.asarray(BANDS), similarity, side="right")]


def band_labels() -> list[str]:
    inner = [f"{lo}-{hi}" for lo, hi in pairwise(BANDS)]
    return [f"<{BANDS[0]}", *inner, f">={BANDS[-1]}"]
