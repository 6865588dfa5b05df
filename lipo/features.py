"""Descriptors a chemist already trusts, concatenated with the pooled embedding before the
head (``--head-features rdkit``). Raw values travel with the batch; the model standardises
them with train-split statistics it keeps as buffers, so a checkpoint predicts on its own."""
from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import Crippen, Descriptors, Lipinski, rdMolDescriptors

from lipo.errors import ConfigError

RDKIT_DESCRIPTORS = {
    "crippen_logp": Crippen.MolLogP,  # Wildman-Crippen atom-contribution logP
    "tpsa": rdMolDescriptors.CalcTPSA,
    "hbd": Lipinski.NumHDonors,
    "hba": Lipinski.NumHAcceptors,
    "rotatable_bonds": rdMolDescriptors.CalcNumRotatableBonds,
    "aromatic_rings": rdMolDescriptors.CalcNumAromaticRings,
    "fraction_csp3": rdMolDescriptors.CalcFractionCSP3,
    "mol_weight": Descriptors.MolWt,
}
FEATURE_SETS = {"": {}, "rdkit": RDKIT_DESCRIPTORS}
_CACHE: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}


def feature_names(kind: str) -> list[str]:
    if kind not in FEATURE_SETS:
        raise ConfigError(f"unknown --head-features {kind!r}: expected rdkit")
    return list(FEATURE_SETS[kind])


def compute(kind: str, smiles: list[str]) -> np.ndarray | None:
    """(molecules x descriptors) float32, or None for no features. Cached per SMILES list."""
    names = feature_names(kind)
    if not names:
        return None
    key = (kind, tuple(smiles))
    if key not in _CACHE:
        functions = FEATURE_SETS[kind].values()
        rows = []
        for smi in smiles:
            mol = Chem.MolFromSmiles(smi)
            rows.append([float(f(mol)) for f in functions])
        _CACHE[key] = np.asarray(rows, dtype=np.float32)
    return _CACHE[key]


def standardisation(features: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over the training split only; a constant column gets std 1."""
    mean = features[train].mean(axis=0)
    std = features[train].std(axis=0)
    return mean, np.where(std > 0, std, 1.0).astype(np.float32)
