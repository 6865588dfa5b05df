"""File locks: around the first opening of a store on this machine's disk, and a final seed's
claim.

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
        raise LipoError(f"{path} has been held for {WAIT_S} s by another launch opening "
                        f"{store}; if no other launch is running, delete {path}") from None
    try:
        yield
    finally:
        lock.release()


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0])


@contextlib.contextmanager
def claim(path: Path, mine: bool = True) -> Iterator[bool]:
    """Hold ``path`` while the body runs if no other process holds it: yields True; yields
    False at once when another does. ``mine=False`` (a rank other than the main one) takes
    nothing and yields True: the main rank's answer is the one that counts."""
    if not mine:
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        held = False
    else:
        held = True
    if not held:  # yielded outside the except: an error in the body is not chained to it
        yield False
        return
    try:
        yield True
    finally:
        # The file goes with the claim: a finished seed leaves nothing under the state folder.
        # A launch that opened the file just before may still lock it and train the seed once
        # more; the summary, the report and the exported models count each seed once.
        lock.release()
        path.unlink(missing_ok=True)
