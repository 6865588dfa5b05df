"""Find, read and validate a table of molecules (SMILES, logD).

Every row is parsed and canonicalised by RDKit; rows that cannot be used are dropped with a
warning naming them (or rejected under ``strict``), and the original row numbers are kept so
that split files, which index rows of the file, still line up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger

from lipo.errors import DataError

log = logging.getLogger(__name__)

LIPO_FILE = "lipophilicity.csv"
POOL_FILE = "External-Dataset_for_Task2.csv"
# MoleculeNet's canonical copy (the same table DeepChem's loader fetches).
LIPO_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/Lipophilicity.csv"
LIPO_ROWS = 4200
LIPO_COLUMNS = ("CMPD_CHEMBLID", "exp", "smiles")
# sha256 of the parsed (smiles, exp) pairs rather than of the bytes: mirrors differ in line endings.
LIPO_CONTENT_SHA256 = "9a7288cd85d0db127b4d0a137b3e1f3be2cf9beaf69563705f804f4014ab0fcb"

SMILES_COLUMNS = ("smiles", "SMILES", "Smiles")
LABEL_COLUMNS = ("exp", "Label", "label", "logD", "y", "target")


@dataclass(frozen=True)
class Molecules:
    """Valid molecules of one file, in file order."""

    smiles: list[str]  # RDKit canonical SMILES
    y: np.ndarray  # float32 labels in logD units
    rows: np.ndarray  # row number in the file (0-based, header excluded) of each molecule
    source: str
    n_rows: int  # data rows in the file, valid or not
    dropped: list[tuple[int, str]] = field(default_factory=list)  # (row, reason)

    def __len__(self) -> int:
        return len(self.smiles)


def data_dir() -> Path | None:
    value = os.environ.get("LIPO_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The download and descriptor cache: under --workdir / LIPO_HOME when given."""
    from lipo.runtime.workdir import cache

    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return cache("lipo", Path(root) / "lipo")


def locate(data: str | None) -> Path:
    """--data FILE, else $LIPO_DATA_DIR/lipophilicity.csv, else a checked download in the cache."""
    if data:
        path = Path(data).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such file (given by --data)")
        return path
    folder = data_dir()
    if folder is not None:
        path = folder / LIPO_FILE
        if not path.is_file():
            raise DataError(
                f"{path}: no such file (LIPO_DATA_DIR={folder} should hold {LIPO_FILE})"
            )
        return path
    cached = cache_dir() / LIPO_FILE
    if not cached.is_file():
        download(LIPO_URL, cached)
    return cached


def download(url: str, target: Path) -> None:
    """Fetch once into ``target``; a file that fails the checks never reaches that name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    log.warning("downloading %s to %s", url, target)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            out.write(response.read())
    except OSError as exc:
        raise DataError(
            f"cannot download {url} ({exc}); pass --data FILE or set LIPO_DATA_DIR to a folder "
            f"holding {LIPO_FILE}"
        ) from None
    check_lipophilicity(partial)
    partial.replace(target)


def check_lipophilicity(path: Path) -> None:
    frame = read_table(path)
    if tuple(frame.columns) != LIPO_COLUMNS or len(frame) != LIPO_ROWS:
        raise DataError(
            f"{path}: expected columns {LIPO_COLUMNS} and {LIPO_ROWS} rows, "
            f"found {tuple(frame.columns)} and {len(frame)} rows"
        )
    digest = content_sha256(frame["smiles"], frame["exp"])
    if digest != LIPO_CONTENT_SHA256:
        raise DataError(f"{path}: content checksum {digest} differs from {LIPO_CONTENT_SHA256}")


def content_sha256(smiles, labels) -> str:
    text = "\n".join(f"{s},{float(y)!r}" for s, y in zip(smiles, labels))
    return hashlib.sha256(text.encode()).hexdigest()


def read_table(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0]})") from None
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in header:
                raise DataError(f"{path}: looks {name}-separated; lipo reads comma-separated CSV")
    return frame


def pick_column(frame: pd.DataFrame, candidates: tuple[str, ...], what: str, path: Path) -> str:
    for name in candidates:
        if name in frame.columns:
            return name
    raise DataError(
        f"{path}: no {what} column (looked for {', '.join(candidates)}; "
        f"found {', '.join(map(str, frame.columns))})"
    )


def canonical(smiles: str) -> str | None:
    mol = Chem.MolFromSmiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def load_molecules(path: Path, strict: bool = False) -> Molecules:
    """Read and validate ``path``: a CSV with a SMILES column and a numeric label column."""
    frame = read_table(path)
    if frame.empty:
        raise DataError(f"{path}: has a header but no data rows")
    smiles_col = pick_column(frame, SMILES_COLUMNS, "SMILES", path)
    label_col = pick_column(frame, LABEL_COLUMNS, "label", path)
    labels = pd.to_numeric(frame[label_col], errors="coerce").to_numpy(dtype=np.float64)
    kept, dropped = validate_rows(frame[smiles_col].tolist(), frame[label_col].tolist(), labels)
    if dropped and strict:
        row, reason = dropped[0]
        raise DataError(
            f"{path}: row {row}: {reason} ({len(dropped)} invalid rows in all; "
            "drop --strict to skip them)"
        )
    if (
        not kept
        and np.isnan(labels).all()
        and frame[label_col].map(lambda v: isinstance(v, str)).any()
    ):
        row = frame[label_col].first_valid_index()
        raise DataError(
            f"{path}: no valid rows: label column {label_col!r} holds text, not "
            f"numbers (row {row}: {frame[label_col][row]!r})"
        )
    if not kept:
        raise DataError(
            f"{path}: no valid rows ({len(dropped)} invalid; first: row "
            f"{dropped[0][0]}: {dropped[0][1]})"
        )
    report_dropped(path, dropped, len(frame))
    rows = np.array([row for row, _ in kept], dtype=np.int64)
    smiles = [smi for _, smi in kept]
    report_duplicates(path, smiles, rows)
    return Molecules(
        smiles=smiles,
        y=labels[rows].astype(np.float32),
        rows=rows,
        source=str(path),
        n_rows=len(frame),
        dropped=dropped,
    )


def validate_rows(raw_smiles, raw_labels, labels) -> tuple[list, list]:
    kept, dropped = [], []
    RDLogger.DisableLog("rdApp.*")  # RDKit would print a line per bad SMILES; we name them below
    try:
        for row, (smi, raw, label) in enumerate(zip(raw_smiles, raw_labels, labels)):
            reason = row_problem(smi, raw, label)
            if reason is None:
                can = canonical(str(smi).strip())
                reason = None if can else f"RDKit cannot parse SMILES {smi!r}"
            if reason is None:
                kept.append((row, can))
            else:
                dropped.append((row, reason))
    finally:
        RDLogger.EnableLog("rdApp.*")
    return kept, dropped


def row_problem(smi, raw_label, label: float) -> str | None:
    if not isinstance(smi, str) or not smi.strip():
        return "empty SMILES"
    if np.isnan(label) and isinstance(raw_label, str):
        return f"label {raw_label!r} is not a number"
    if not np.isfinite(label):
        return f"label is {raw_label!r}, not a finite number"
    return None


def report_dropped(path: Path, dropped: list[tuple[int, str]], n_rows: int) -> None:
    if not dropped:
        return
    shown = "; ".join(f"row {row}: {reason}" for row, reason in dropped[:5])
    more = f"; and {len(dropped) - 5} more" if len(dropped) > 5 else ""
    log.warning("%s: dropped %d of %d rows: %s%s", path, len(dropped), n_rows, shown, more)


def report_duplicates(path: Path, smiles: list[str], rows: np.ndarray) -> None:
    first: dict[str, int] = {}
    pairs = []
    for smi, row in zip(smiles, rows):
        if smi in first:
            pairs.append((first[smi], int(row)))
        else:
            first[smi] = int(row)
    if pairs:
        shown = ", ".join(f"rows {a} and {b}" for a, b in pairs[:5])
        log.warning(
            "%s: %d duplicate molecules (same canonical SMILES), kept: %s", path, len(pairs), shown
        )
