"""Command line: ``python launch.py --study NAME`` and friends (contract in ARCHITECTURE.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from lipo import flags
from lipo.errors import ConfigError, LipoError

# the launcher's registries: importing lipo.cli registers every built-in (a worker process,
# bench/gpu_check.sh reading cli.BACKBONES)
from lipo.models.backbone_names import BACKBONES  # noqa: F401
from lipo.registry import Registry
from lipo.runtime import workdir
from lipo.runtime.distributed import close_accelerator, make_accelerator, quieten
from lipo.runtime.worker_report import leave

# ``launch.py NAME ...`` hands the rest of the command line to the module's ``main(argv)``.
SUBCOMMANDS = Registry("command", "lipo", group="lipo.commands")
SUBCOMMANDS.register("predict", ".inference.command")
SUBCOMMANDS.register("pretrain", ".masked_lm.pretrain")
SUBCOMMANDS.register("campaign", ".campaign.run")


def parser() -> argparse.ArgumentParser:
    return flags.parser(SUBCOMMANDS.names())


def parse_seeds(text: str | None) -> list[int]:
    try:
        seeds = [int(s) for s in (text or "0,1,2").split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers") from None
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    return seeds


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(","))
    if names not in (("mse",), ("mse", "params")):
        raise ConfigError(f"--objective {text!r}: expected mse or mse,params")
    return names


def check(args) -> None:
    if args.seeds and not args.final:
        raise ConfigError("--seeds applies to --final only")
    if args.control and not args.final:
        raise ConfigError(
            f"--control {args.control} applies to --final only: a control "
            "re-trains the search's best settings"
        )
    if args.split_per_seed and not args.final:
        raise ConfigError("--split-per-seed applies to --final only: the search keeps --split")
    if args.register and not args.final:
        raise ConfigError(
            f"--register {args.register} applies to --final only: it registers a final model"
        )
    if args.final and (args.pruner or args.warm_start):
        raise ConfigError("--pruner and --warm-start shape a search: drop them with --final")
    if args.final and args.trials is not None:
        raise ConfigError("--trials and --final conflict: --final re-trains the best trial")
    for flag in ("trials", "epochs", "workers", "workers_per_gpu", "heartbeat"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag} must be at least 1, got {value}")
    if args.save_every is not None and args.save_every < 0:
        raise ConfigError(f"--save-every must be 0 or more, got {args.save_every}")
    if args.workers is None and args.workers_per_gpu is None:
        args.workers = 1
    if several_workers(args) and (args.final or args.report or args.list):
        raise ConfigError(
            "--workers shares a search between processes: drop --final, --report and --list"
        )
    if several_workers(args) and (args.storage or "").startswith("sqlite"):
        raise ConfigError(
            f"--storage {args.storage}: SQLite locks under parallel workers; "
            "use the journal file (the default) or postgresql://"
        )
    if several_workers(args) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "--workers and torchrun/accelerate launch conflict: start one "
            "launcher per worker instead"
        )
    if args.report and (args.study or args.final):
        raise ConfigError("--report reads MLflow alone: drop --study and --final")
    if not args.study and not args.list and not args.report:
        raise ConfigError("give --study NAME (see --list), or --report")
    if args.final:
        args.seeds = parse_seeds(args.seeds)
    args.objective = parse_objectives(args.objective)


def several_workers(args) -> bool:
    """--workers K above 1, or --workers-per-gpu (K known once the GPUs are counted)."""
    return args.workers_per_gpu is not None or (args.workers or 1) > 1


def run(args) -> None:
    from lipo.study_files import describe, study_names

    if args.list:
        for name in study_names():
            print(f"{name:12s} {describe(name)}")
        return
    if args.report:
        from lipo.report import report

        report(args)
        return
    from lipo.runtime.devices import machine_precision

    if several_workers(args):
        # A bad flag fails here, before any worker starts; each worker resolves it again on
        # its own GPU (probing one here would hold a CUDA context on it all along).
        machine_precision(args.precision, probe_gpu=False)
        quieten(True)
        from lipo.runtime.workers import start_workers

        start_workers(args)
        return
    args.precision = machine_precision(args.precision)
    accelerator = make_accelerator(args.precision)
    quieten(accelerator.is_main_process)
    from lipo.invocation import build

    inv = build(args)
    if args.final:
        from lipo.final.phase import final

        final(inv, accelerator, args.seeds, args.argv, args.register)
    else:
        from lipo.search.loop import search

        search(inv, accelerator)
    close_accelerator(accelerator)


def stop_on_sigterm() -> None:
    """A scheduler's SIGTERM (a job's time limit, `docker stop`) ends the run as Ctrl-C does:
    the trial is marked FAIL and re-queued, its training state kept for the retry."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the real command line, not a caller's (tests call main(argv))
        stop_on_sigterm()
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in SUBCOMMANDS:
            quieten(True)
            SUBCOMMANDS.get(argv[0]).main(argv[1:])
            return 0
        args = parser().parse_args(argv)
        args.argv = list(argv)  # --workers starts the same command once per worker
        check(args)
        workdir.use(args.workdir)
        run(args)
    except LipoError as exc:
        said = f"lipo: error: {exc}"
        print(said, file=sys.stderr)
        leave(said)  # for the starter of --workers, when this is a worker
        return 2
    except KeyboardInterrupt:
        print("lipo: interrupted; re-run the same command to continue the study", file=sys.stderr)
        return 130
    return 0
