"""Pre-training corpora: several SMILES files mixed by weight, optional SMILES variants, and
how well the mix covers the task's molecules (tokens seen often enough, lengths seen at all).

A mixing weight is how many times each molecule of that corpus appears per epoch: ``2.5``
takes every molecule twice and a seeded half of them a third time. A small corpus that is
close to the task (ChEMBL: stereo, charges, long chains) can so weigh more than its size.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lipo.data.molecules import SMILES_COLUMNS, pick_column, read_table
from lipo.errors import DataError
from lipo.models.tokenizer import smiles_pieces

MIN_TOKEN_COUNT = 10  # a token seen fewer times than this has an embedding barely trained


@dataclass(frozen=True)
class CorpusSpec:
    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "CorpusSpec":
        """``PATH`` or ``PATH:WEIGHT``."""
        path, sep, weight = text.rpartition(":")
        if not sep or not _is_number(weight):
            return cls(Path(text).expanduser())
        if float(weight) <= 0:
            raise DataError(f"--corpus {text}: the weight must be positive")
        return cls(Path(path).expanduser(), float(weight))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_smiles(path: Path, limit: int | None = None) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: no such corpus file")
    frame = read_table(path)
    column = pick_column(frame, SMILES_COLUMNS, "SMILES", path)
    smiles = [s.strip() for s in frame[column].dropna().astype(str) if s.strip()]
    if not smiles:
        raise DataError(f"{path}: no SMILES in column {column!r}")
    return smiles[:limit] if limit else smiles


def mix(corpora: Sequence[tuple[CorpusSpec, list[str]]], seed: int) -> list[str]:
    """Each corpus repeated by its weight; the fractional part is a seeded sample."""
    rng = np.random.default_rng(seed)
    mixed: list[str] = []
    for spec, smiles in corpora:
        whole, part = int(spec.weight), spec.weight - int(spec.weight)
        mixed += smiles * whole
        if part > 0:
            picked = rng.choice(len(smiles), size=round(part * len(smiles)), replace=False)
            mixed += [smiles[i] for i in sorted(picked)]
    return mixed


def parallel_map(
    function: Callable,
    items: Sequence,
    processes: int | None = None,
    chunk: int = 2000,
    desc: str | None = None,
) -> list:
    """``function`` over ``items`` in worker processes (RDKit holds the GIL), in order; with
    ``desc``, a progress bar (a corpus of a million molecules takes minutes)."""
    # the cores this process may use (a container's share), not the host's count
    processes = processes or len(os.sched_getaffinity(0)) or 1
    bar = {
        "total": len(items),
        "desc": desc,
        "disable": desc is None,
        "unit": "mol",
        "mininterval": 5,
    }
    if processes == 1 or len(items) < 2 * chunk:
        return [function(item) for item in tqdm(items, **bar)]
    with Pool(processes) as pool:
        return list(tqdm(pool.imap(function, items, chunksize=chunk), **bar))


def _variants_of(args: tuple[str, int, int, int]) -> list[str]:
    from rdkit import Chem, RDLogger
    from rdkit.Chem.EnumerateStereoisomers import EnumerateStereoisomers, StereoEnumerationOptions

    RDLogger.DisableLog("rdApp.*")
    smiles, randomised, stereo, seed = args
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return []
    out = []
    if stereo:  # unassigned centres only: a molecule's own stereo marks stay as written
        options = StereoEnumerationOptions(
            onlyUnassigned=True, maxIsomers=stereo + 1, rand=seed, unique=True
        )
        out += [Chem.MolToSmiles(m) for m in EnumerateStereoisomers(mol, options=options)]
        out = [s for s in out if s != smiles][:stereo]
    rng = np.random.default_rng(seed)  # the same variants every run
    for _ in range(randomised):  # another atom order, written as it comes
        order = [int(i) for i in rng.permutation(mol.GetNumAtoms())]
        out.append(Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False))
    return out


def variants(
    smiles: Sequence[str], randomised: int, stereo: int, seed: int, processes: int | None = None
) -> list[str]:
    """Extra SMILES: up to ``stereo`` stereoisomers of unassigned centres and ``randomised``
    randomised writings of each molecule (the same molecule, another atom order)."""
    if not randomised and not stereo:
        return []
    jobs = [(s, randomised, stereo, seed + i) for i, s in enumerate(smiles)]
    groups = parallel_map(_variants_of, jobs, processes, desc="SMILES variants")
    return [v for group in groups for v in group]


def coverage(corpus: Sequence[str], task: Sequence[str]) -> dict[str, float]:
    """Share of ``task`` molecules whose every token occurs ``MIN_TOKEN_COUNT`` times in the
    corpus, and share no longer (in tokens) than the longest corpus molecule."""
    counts: collections.Counter = collections.Counter()
    longest = 0
    # a weighted corpus repeats its molecules: each is tokenised once and counted as often
    # as it appears, which is as often as training sees it
    for smiles, times in collections.Counter(corpus).items():
        pieces = smiles_pieces(smiles)
        for piece, n in collections.Counter(pieces).items():
            counts[piece] += n * times
        longest = max(longest, len(pieces))
    task_pieces = [smiles_pieces(s) for s in task]
    tokens = np.mean([all(counts[p] >= MIN_TOKEN_COUNT for p in ps) for ps in task_pieces])
    lengths = np.mean([len(ps) <= longest for ps in task_pieces])
    return {
        "coverage/tokens": float(tokens),
        "coverage/length": float(lengths),
        "corpus/longest_tokens": float(longest),
        "corpus/distinct_tokens": float(len(counts)),
    }
