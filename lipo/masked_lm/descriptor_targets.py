"""Physico-chemical targets for pre-training: RDKit descriptors of each corpus molecule,
regressed from the pooled embedding beside the masked-LM loss, so that the encoder learns
what lipophilicity depends on (polarity, size, charge, flexibility) and not only grammar.

Computed once per corpus in worker processes and cached outside the repository
(``~/.cache/lipo/descriptors`` or ``$LIPO_CACHE``): ~0.3 ms a molecule, 8 minutes of one
core for MOSES's 1.6M molecules. Fine-tuning's ``aux_descriptors`` regresses the same
targets (``lipo.data.features.pretraining_descriptors``, lipo/models/auxiliary.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lipo.masked_lm.corpus import parallel_map

log = logging.getLogger(__name__)
NAMES = (
    "crippen_logp",
    "crippen_mr",
    "tpsa",
    "hbd",
    "hba",
    "rotatable_bonds",
    "rings",
    "aromatic_rings",
    "fraction_csp3",
    "formal_charge",
    "heavy_atoms",
)


def _row(smiles: str) -> list[float]:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Crippen, Lipinski
    from rdkit.Chem import rdMolDescriptors as rd

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return [float("nan")] * len(NAMES)
    return [
        Crippen.MolLogP(mol),
        Crippen.MolMR(mol),
        rd.CalcTPSA(mol),
        Lipinski.NumHDonors(mol),
        Lipinski.NumHAcceptors(mol),
        rd.CalcNumRotatableBonds(mol),
        rd.CalcNumRings(mol),
        rd.CalcNumAromaticRings(mol),
        rd.CalcFractionCSP3(mol),
        Chem.GetFormalCharge(mol),
        mol.GetNumHeavyAtoms(),
    ]


def cache_dir() -> Path:
    root = os.environ.get("LIPO_CACHE") or Path.home() / ".cache" / "lipo"
    return Path(root) / "descriptors"


def digest(smiles: Sequence[str]) -> str:
    h = hashlib.sha256()
    for s in smiles:
        h.update(s.encode() + b"\n")
    return h.hexdigest()[:24]


def descriptor_targets(smiles: Sequence[str], processes: int | None = None) -> np.ndarray:
    """(molecules x len(NAMES)) float32; a row RDKit cannot parse is NaN (its loss is skipped)."""
    path = cache_dir() / f"{digest(smiles)}-{len(NAMES)}.npy"
    if path.is_file():
        return np.load(path)
    log.warning(
        "computing %d descriptors of %d molecules (cached in %s)",
        len(NAMES),
        len(smiles),
        path.parent,
    )
    rows = parallel_map(_row, list(smiles), processes, desc="descriptors")
    table = np.asarray(rows, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Each writer its own partial file (ranks and parallel trials may compute the same table),
    # renamed whole: a reader never sees half a file.
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".partial.npy", delete=False) as tmp:
        np.save(tmp, table)
    os.replace(tmp.name, path)
    return table


def standardise(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardised copy (NaN rows stay NaN), with the mean and std used."""
    mean = np.nanmean(table, axis=0)
    std = np.nanstd(table, axis=0)
    std = np.where(std > 0, std, 1.0)
    return ((table - mean) / std).astype(np.float32), mean, std
