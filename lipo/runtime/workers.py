"""``--workers K``: K processes on this machine share one study through ``--storage`` (the
journal file by default; PostgreSQL for workers on several machines, each started with the
same command). Each worker asks the study for its next trial, so together they make exactly
``--trials`` trials."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import lipo
from lipo.errors import LipoError
from lipo.runtime.devices import placement_table, worker_count, worker_envs
from lipo.runtime.worker_report import REPORT, failures

# A worker is the same command line without --workers: each one a plain launcher.
WORKER = [
    sys.executable,
    "-c",
    "import sys; from lipo.runtime.worker_main import worker_main; sys.exit(worker_main())",
]


def worker_argv(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--workers", "--workers-per-gpu"):
            skip = True
        elif not arg.startswith(("--workers=", "--workers-per-gpu=")):
            out.append(arg)
    return out


def base_env() -> dict[str, str]:
    """The workers import lipo, and the plugins registered here, from where this process did
    (installed or not), and register those plugins again."""
    from lipo.registry import HANDED_ON, plugin_registrations

    root = str(Path(lipo.__file__).resolve().parents[1])
    here = [os.path.abspath(p or ".") for p in sys.path if os.path.isdir(p or ".")]
    return {
        **os.environ,
        HANDED_ON: plugin_registrations(),
        "PYTHONPATH": os.pathsep.join(
            dict.fromkeys(p for p in (root, *here, os.environ.get("PYTHONPATH")) if p)
        ),
    }


def prepare(args) -> None:
    """Create the Optuna study and the MLflow experiment once, before the workers start:
    K processes creating them at the same moment is the race ARCHITECTURE.md warns about."""
    from lipo.invocation import build
    from lipo.search.loop import open_book, queue_warm_start
    from lipo.tracking.store import Tracker

    inv = build(args)
    book = open_book(inv, startup=1)
    if inv.warm_start:  # queued once here, not raced by the K workers
        queue_warm_start(inv, book)
    Tracker(inv.tracking_uri, inv.study)


def start_workers(args) -> None:
    import torch

    gpus = torch.cuda.device_count()
    workers = worker_count(args.workers, args.workers_per_gpu, gpus)
    # Too few GPUs for --workers-per-gpu fail before the study is opened.
    envs = worker_envs(base_env(), workers, gpus, per_gpu=args.workers_per_gpu)
    prepare(args)
    command = [*WORKER, *worker_argv(args.argv)]
    print(f"starting {workers} workers: {' '.join(worker_argv(args.argv))}", flush=True)
    print(placement_table(envs), flush=True)
    run_workers(command, envs)


def run_workers(command: list[str], envs: list[dict[str, str]]) -> None:
    """One process of ``command`` per environment, waited for; a LipoError naming each worker
    that failed, with the report it left (``worker_report``)."""
    with tempfile.TemporaryDirectory(prefix="lipo-workers-") as folder:
        reports = [Path(folder) / f"worker-{i}.txt" for i in range(len(envs))]
        procs = [
            subprocess.Popen(command, env={**env, REPORT: str(report)})
            for env, report in zip(envs, reports)
        ]
        try:
            codes = [p.wait() for p in procs]
        except KeyboardInterrupt:  # Ctrl-C reached every worker too (same process group)
            for p in procs:
                p.wait()
            raise
        failed = failures(reports, codes)
    if failed:
        raise LipoError(failed)
