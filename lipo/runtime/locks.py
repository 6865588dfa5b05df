"""File locks around the first opening of a store on this machine's disk. (A final seed is
claimed in the shared Optuna storage instead: ``lipo.search.claims``.)

MLflow creates and migrates its SQLite schema when a client first opens the file, and two
launches started at once both migrate it: one fails with 'table alembic_version already
exists' or 'duplicate column name: step', and an interleaving can leave the file between
schema versions, unusable; Optuna's SQLite storage migrates the same way. Opening each store
under ``<store>.create-lock`` makes the later launches wait for the first (a fraction of a
second once the store exists) and then find it whole. (Not ``<store>.lock``: Optuna's journal
uses that name for its own lock.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from lipo.errors import LipoError

SUFFIX = ".create-lock"
WAIT_S = 300  # a first MLflow migration takes ~5 s on a loaded 2-core machine


@contextlib.contextmanager
def store_lock(store: Path | None) -> Iterator[None]:
    """Hold ``<store>.create-lock`` (nothing for a store not on this disk: ``None``)."""
    if store is None:
        yield
        return
    store.parent.mkdir(parents=True, exist_ok=True)
    path = f"{store}{SUFFIX}"
    lock = FileLock(path)
    try:
        lock.acquire(timeout=WAIT_S)
    except Timeout:
        raise LipoError(
            f"{path} has been held for {WAIT_S} s by another launch opening "
            f"{store}; if no other launch is running, delete {path}"
        ) from None
    try:
        yield
    finally:
        lock.release()


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0])
