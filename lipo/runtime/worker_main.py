"""A worker process of ``--workers K``: the launcher, with the plugin registrations its
starter handed on. Kept apart from ``workers`` (the starter) because it imports the whole
command line, which imports the starter."""

from __future__ import annotations

import os
import traceback

from lipo.runtime.worker_report import leave


def worker_main() -> int:
    """A worker: the launcher, with the registrations its starter handed on. An unexpected
    error's traceback is left for the starter too (a LipoError's line: ``cli.main``)."""
    from lipo.cli import main  # imports every registry first
    from lipo.registry import HANDED_ON, register_handed_on

    try:
        register_handed_on(os.environ.get(HANDED_ON))
        return main()
    except Exception:
        leave(traceback.format_exc())
        raise
