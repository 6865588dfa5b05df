"""Randomised SMILES: one molecule, many spellings.

A molecule has many valid SMILES (start atom, branch order); a language model that only ever
sees RDKit's canonical one learns the spelling as much as the chemistry. Two knobs use this:

- ``augment`` (training): each epoch shows every training molecule in its canonical SMILES
  plus ``augment`` randomised ones, fresh each epoch;
- ``tta`` (evaluation, ``predict``): the prediction is the mean over the canonical SMILES and
  ``tta`` randomised ones, the same spellings every epoch.

A spelling depends only on (seed, purpose, epoch, canonical SMILES), never on the order or the
process that asks, so every rank and a resumed run build identical batches. Spellings are
tokenised once per trial and cached; extra spellings become extra rows of the table
(``EncodedMolecules.origin`` names the molecule each row spells), so batching, length
grouping and gathering treat them like any other row.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
from rdkit import Chem


def spelling_seed(seed: int, purpose: str, smiles: str) -> int:
    """RDKit's random seed for one molecule: a stable hash (Python's ``hash`` is salted)."""
    digest = hashlib.sha256(f"{seed}\x00{purpose}\x00{smiles}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def randomised(smiles: str, n: int, seed: int, purpose: str, mol=None) -> list[str]:
    """``n`` randomised (non-canonical) SMILES of the molecule, stereo and charges kept.
    ``mol``: the molecule already parsed (parsing costs as much as the spelling)."""
    if n <= 0:
        return []
    mol = mol if mol is not None else Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    return list(Chem.MolToRandomSmilesVect(mol, n, randomSeed=spelling_seed(seed, purpose, smiles)))


@functools.lru_cache(maxsize=20_000)
def parsed(smiles: str):
    """A molecule parsed once per process (a study's trials spell the same molecules each
    epoch); bounded, so that ``predict`` on a large file does not keep every molecule."""
    return Chem.MolFromSmiles(smiles)


class Spellings:
    """Tokenised randomised spellings of one trial's molecules, computed once and cached.

    A spelling longer than ``max_tokens`` is replaced by the canonical SMILES: truncating
    it would show the model a different molecule."""

    def __init__(self, tokenizer, seed: int, max_tokens: int):
        self.tokenizer, self.seed, self.max_tokens = tokenizer, seed, max_tokens
        self._cache: dict[tuple[str, int, str], list[list[int]]] = {}

    def ids(self, smiles: list[str], n: int, purpose: str) -> list[list[list[int]]]:
        """For each SMILES, the token ids of its ``n`` spellings for ``purpose``."""
        if n <= 0:
            return [[] for _ in smiles]
        todo = sorted({s for s in smiles if (purpose, n, s) not in self._cache})
        if todo:
            texts = [t for s in todo for t in randomised(s, n, self.seed, purpose, parsed(s))]
            flat = self.tokenizer(texts)["input_ids"]
            for k, s in enumerate(todo):
                self._cache[purpose, n, s] = [
                    g if len(g) <= self.max_tokens else self.canonical(s)
                    for g in flat[k * n : (k + 1) * n]
                ]
        return [self._cache[purpose, n, s] for s in smiles]

    def canonical(self, smiles: str) -> list[int]:
        return self.tokenizer([smiles], truncation=True, max_length=self.max_tokens)["input_ids"][0]

    def rows(self, smiles: list[str], positions, n: int, purpose: str):
        """(token ids, origin positions) of the extra rows spelling ``positions`` ``n`` times."""
        positions = np.asarray(positions, dtype=np.int64)
        groups = self.ids([smiles[p] for p in positions], n, purpose)
        ids = [g for group in groups for g in group]
        origin = np.repeat(positions, [len(group) for group in groups])
        return ids, origin


def average_by_molecule(positions: np.ndarray, origin: np.ndarray, pred: np.ndarray, y: np.ndarray):
    """One prediction per molecule: the mean over the rows that spell it (canonical and
    randomised), each row counted once (a row gathered twice, as padding, counts once), in
    order of each molecule's first row. Returns (pred, y, molecule positions); with one row
    per molecule, its input unchanged."""
    _, once = np.unique(positions, return_index=True)
    once = np.sort(once)
    origin, pred, y = origin[once], pred[once], y[once]
    molecules, first, inverse = np.unique(origin, return_index=True, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(molecules))
    sums = np.bincount(inverse, weights=pred.astype(np.float64), minlength=len(molecules))
    means = (sums / counts).astype(pred.dtype)
    order = np.argsort(first, kind="stable")
    return means[order], y[first[order]], molecules[order]
