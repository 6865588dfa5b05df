"""Why a ``--workers`` process stopped, left in a file its starter names: the starter's error
then says which worker failed and how. The worker's own stderr says it too, but K workers'
progress bars redraw over it, and a traceback scrolls away among them."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

REPORT = "LIPO_WORKER_REPORT"  # the file a worker writes why it stopped to, set by its starter
LINES_SHOWN = 30  # of a report: a traceback's end names the error and where it was raised


def leave(text: str) -> None:
    """Write ``text`` where this worker's starter will look for it (nothing when this process
    is not a worker). Never raises: the error being reported matters more."""
    path = os.environ.get(REPORT)
    if path:
        with contextlib.suppress(OSError):
            Path(path).write_text(text)


def read(path: Path, code: int) -> str:
    """What the worker that exited with ``code`` left in ``path``, or why it left nothing."""
    left = path.read_text().strip() if path.is_file() else ""
    if left:
        return "\n".join(left.splitlines()[-LINES_SHOWN:])
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}, no report left"
    return "no report left: its output above says what happened"


def failures(reports: list[Path], codes: list[int]) -> str | None:
    """The starter's error for the workers that failed, each with its report; None when none
    did."""
    failed = [(i, code) for i, code in enumerate(codes) if code != 0]
    if not failed:
        return None
    lines = [
        f"{len(failed)} of {len(codes)} workers failed; re-run the same command to finish the study"
    ]
    for i, code in failed:
        lines.append(f"worker {i} (exit status {code}):")
        lines.extend(f"    {line}" for line in read(reports[i], code).splitlines())
    return "\n".join(lines)
