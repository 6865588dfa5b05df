"""Which worker is which, and which one is gone: ``host:pid:start`` identities that the search
keeps beside its trials, so a lost worker's trial is re-queued without waiting for heartbeats."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def worker_id(pid: int | None = None) -> str:
    """host:pid:start, the start time telling a live process from a later one with its pid."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{process_start(pid)}"


def process_start(pid: int) -> str:
    try:  # field 22 of /proc/PID/stat, after the parenthesised command name
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def gone_from_this_host(worker: str) -> bool:
    """``worker`` (a ``worker_id``) ran on this machine and is gone: no need to wait for
    heartbeats to know its trial is lost."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return worker_id(int(pid)) != worker
