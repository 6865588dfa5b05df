"""Descriptors a chemist already trusts, concatenated with the pooled embedding before the
head (``--head-features rdkit`` or ``rdkit2d``). Raw values travel with the batch; the model
standardises them with train-split statistics it keeps as buffers, so a checkpoint predicts on
its own.

``rdkit`` is 8 hand-picked descriptors. ``rdkit2d`` is RDKit's whole 2D set
(``Descriptors.descList``, 217 in RDKit 2026.09): some are undefined for some molecules (Gasteiger
charges and BCUT2D give NaN for one Lipophilicity molecule) and some are heavy-tailed (``Ipc``
reaches 7e30), so they are centred on the training median, scaled by the spread of the training
values winsorised at their 0.5th and 99.5th percentiles, and in the model an undefined value
becomes 0 (the training median) and every value is clipped to +-CLIP. 4,200 molecules take
about 90 s on one core, so the matrix is cached on disk per SMILES list
(``~/.cache/lipo/features/``)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings

import numpy as np
import rdkit
from rdkit import Chem, RDLogger
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
RDKIT_2D = dict(Descriptors.descList)
FEATURE_SETS = {"": {}, "rdkit": RDKIT_DESCRIPTORS, "rdkit2d": RDKIT_2D}
ROBUST = {"rdkit2d"}  # median-centred, winsorised spread, NaN imputed, clipped (see above)
CLIP = 10.0  # standardised rdkit2d values beyond this many spreads are clipped
HUGE = 1e30  # raw values beyond this are clipped before float32 (Ipc reaches 7e30)
DISK_CACHED = {"rdkit2d"}
_CACHE: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}


def feature_names(kind: str) -> list[str]:
    if kind not in FEATURE_SETS:
        raise ConfigError(f"unknown --head-features {kind!r}: expected rdkit or rdkit2d")
    return list(FEATURE_SETS[kind])


def descriptor_record(kind: str) -> dict:
    """What a checkpoint keeps of its descriptors: the names in column order, and the RDKit
    that computes them (``lipo.models.checkpoint`` compares it with this one's on load)."""
    return {"head_features": kind, "names": feature_names(kind), "rdkit": rdkit.__version__}


def compute(kind: str, smiles: list[str]) -> np.ndarray | None:
    """(molecules x descriptors) float32, or None for no features; a descriptor RDKit cannot
    compute is NaN. Cached per SMILES list (``rdkit2d`` on disk too)."""
    names = feature_names(kind)
    if not names:
        return None
    key = (kind, tuple(smiles))
    if key not in _CACHE:
        path = disk_cache_path(kind, names, smiles) if kind in DISK_CACHED else None
        if path is not None and path.is_file():
            _CACHE[key] = np.load(path)
        else:
            _CACHE[key] = descriptor_matrix(FEATURE_SETS[kind].values(), smiles)
            if path is not None:
                save_atomically(path, _CACHE[key])
    return _CACHE[key]


def pretraining_descriptors(smiles: list[str]) -> np.ndarray:
    """The descriptors the shipped encoders were pre-trained to predict
    (``lipo.masked_lm.descriptor_targets.NAMES``), raw, (molecules x 11) float32, read-only:
    ``aux_descriptors``' targets. Computed by pre-training's own function in this process and
    cached on disk as pre-training caches them, and in memory per SMILES list as ``compute``
    caches: once per data set, not per trial or epoch."""
    from lipo.masked_lm.descriptor_targets import descriptor_targets

    key = ("pretraining", tuple(smiles))
    if key not in _CACHE:
        # processes=1: a trial may share the machine with other workers; 4,200 molecules
        # take about a second
        _CACHE[key] = descriptor_targets(smiles, processes=1)
        _CACHE[key].flags.writeable = False  # one table for every trial of this process
    return _CACHE[key]


def descriptor_matrix(functions, smiles: list[str]) -> np.ndarray:
    functions = list(functions)
    rows = []
    RDLogger.DisableLog("rdApp.*")  # a descriptor that fails says so per molecule: NaN here
    try:
        for smi in smiles:
            mol = Chem.MolFromSmiles(smi)
            rows.append([descriptor(f, mol) for f in functions])
    finally:
        RDLogger.EnableLog("rdApp.*")
    values = np.asarray(rows, dtype=np.float64).reshape(len(smiles), len(functions))
    values[~np.isfinite(values)] = np.nan
    return np.clip(values, -HUGE, HUGE).astype(np.float32)


def descriptor(function, mol) -> float:
    try:
        return float(function(mol))
    except (ValueError, ZeroDivisionError, OverflowError, RuntimeError):
        return float("nan")


def disk_cache_path(kind: str, names: list[str], smiles: list[str]):
    from lipo.data.molecules import cache_dir

    digest = hashlib.sha256(
        "\n".join([kind, rdkit.__version__, ",".join(names), *smiles]).encode()
    ).hexdigest()
    return cache_dir() / "features" / f"{digest}.npy"


def save_atomically(path, matrix: np.ndarray) -> None:
    write_atomically(path, lambda f: np.save(f, matrix))


def write_atomically(path, write) -> None:
    """``write(file)`` fills a file beside ``path``, then it is renamed to it: parallel workers
    may compute the same cached result, and each writes its own file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=path.suffix, delete=False) as tmp:
            write(tmp)
        os.replace(tmp.name, path)
    except OSError:  # a read-only or full cache only costs the recomputation next time
        pass


def standardisation(
    features: np.ndarray, train: np.ndarray, kind: str = "rdkit"
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and spread over the training split only; a constant column gets spread 1.
    Mean and std, or for ``rdkit2d`` (NaN, heavy tails) the median and the std of the
    values winsorised at their 0.5th and 99.5th percentiles."""
    if kind not in ROBUST:
        mean = features[train].mean(axis=0)
        std = features[train].std(axis=0)
        return mean, np.where(std > 0, std, 1.0).astype(np.float32)
    values = features[train].astype(np.float64)
    with warnings.catch_warnings():  # a column undefined for every training molecule: 0 and 1
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(values, [0.5, 99.5], axis=0)
        centre = np.nanmedian(values, axis=0)
        spread = np.nanstd(np.clip(values, low, high), axis=0)
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    return np.nan_to_num(centre).astype(np.float32), spread.astype(np.float32)


def feature_clip(kind: str) -> float | None:
    """Clip bound on standardised values (with NaN imputed as 0), or None to leave them."""
    return CLIP if kind in ROBUST else None


# The gradient-boosting features: Morgan bits then every RDKit 2D descriptor (the report's
# reference models), or Morgan counts, feature-Morgan (pharmacophoric atom types) counts and the
# descriptors (a served ensemble's descriptor partner, ``lipo.inference.partner``).
MORGAN_RADIUS, MORGAN_BITS, FEATURE_MORGAN_BITS = 2, 2048, 1024
TREE_CLIP = 1e10  # a few descriptors (Ipc) reach 1e30; trees work in float32
PARALLEL_FROM = 500  # fewer molecules are featurised faster in this process than in two


def fingerprint_descriptors(smiles: list[str], counts: bool = False) -> np.ndarray:
    """(molecules x fingerprint + descriptors) float32: Morgan bits (radius 2, 2048), or with
    ``counts`` Morgan counts (2048) and feature-Morgan counts (1024), then RDKit's 2D
    descriptors (non-finite values -> 0). The descriptors cost ~15 ms a molecule, so two
    processes share a long list."""
    from joblib import Parallel, delayed

    parts = 2 if len(smiles) >= PARALLEL_FROM else 1
    chunks = [list(c) for c in np.array_split(np.asarray(smiles, dtype=object), parts) if len(c)]
    if len(chunks) > 1:
        work = (delayed(fingerprint_chunk)(c, counts) for c in chunks)
        blocks = Parallel(n_jobs=len(chunks))(work)
    else:
        blocks = [fingerprint_chunk(c, counts) for c in chunks]
    width = MORGAN_BITS + (FEATURE_MORGAN_BITS if counts else 0) + len(RDKIT_2D)
    x = np.vstack(blocks) if blocks else np.empty((0, width))
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(x, -TREE_CLIP, TREE_CLIP).astype(np.float32)


def fingerprint_chunk(smiles: list[str], counts: bool = False) -> np.ndarray:
    from rdkit.Chem import rdFingerprintGenerator as generators

    morgan = generators.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)
    feature_morgan = generators.GetMorganGenerator(
        radius=MORGAN_RADIUS,
        fpSize=FEATURE_MORGAN_BITS,
        atomInvariantsGenerator=generators.GetMorganFeatureAtomInvGen(),
    )
    rows = []
    RDLogger.DisableLog("rdApp.*")
    try:
        for smi in smiles:
            mol = Chem.MolFromSmiles(smi)
            if counts:
                prints = [
                    morgan.GetCountFingerprintAsNumPy(mol),
                    feature_morgan.GetCountFingerprintAsNumPy(mol),
                ]
            else:
                prints = [morgan.GetFingerprintAsNumPy(mol)]
            desc = [f(mol) for _, f in Descriptors.descList]
            rows.append(np.concatenate([*(p.astype(np.float64) for p in prints), desc]))
    finally:
        RDLogger.EnableLog("rdApp.*")
    return np.vstack(rows)


def cached_fingerprint_descriptors(smiles: list[str], counts: bool = False) -> np.ndarray:
    """``fingerprint_descriptors``, kept on disk per SMILES list as ``rdkit2d`` is."""
    prints = f"morgan{MORGAN_RADIUS}-{MORGAN_BITS}" + (
        f"-counts,feature-morgan{MORGAN_RADIUS}-{FEATURE_MORGAN_BITS}-counts" if counts else ""
    )
    path = disk_cache_path("fingerprint_descriptors", [prints, *RDKIT_2D], smiles)
    if path.is_file():
        return np.load(path)
    x = fingerprint_descriptors(smiles, counts)
    save_atomically(path, x)
    return x
