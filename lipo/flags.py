"""The launcher's flags, in five groups (what to run, where results go, how it runs, how the
search looks, what follows the search), with help texts read from the registries."""

from __future__ import annotations

import argparse

from lipo.adapters import ADAPTERS
from lipo.models.backbone_names import BACKBONES, DEFAULT_BACKBONE
from lipo.strategies import STRATEGIES, control_names
from lipo.tracking.schema import DEFAULT_TRACKING_URI

EPILOG = """examples:
  python launch.py --list
  python launch.py predict --run RUN_ID --smiles molecules.csv --out predictions.csv
  python launch.py --study baseline                      # search (resumes if re-run)
  python launch.py --study baseline --final --seeds 0,1,2
  python launch.py --study influence --final --control random-k
  python launch.py --report                               # table and plots under reports/
  python launch.py campaign --dry-run                     # the whole comparison: plan, cost
  python launch.py campaign                               # ... run it (re-run to continue)
  torchrun --nproc_per_node 2 launch.py --study baseline
  python launch.py --study baseline --workers 3           # 3 processes share the study
results: mlflow ui --backend-store-uri {uri}""".format(uri=DEFAULT_TRACKING_URI)


def parser(commands: list[str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launch.py",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Hyperparameter sweeps for chemical language models "
        "on lipophilicity, tracked in MLflow.\nOther "
        f"commands: {', '.join(commands)} "
        "(launch.py COMMAND --help).",
    )
    study_flags(p.add_argument_group("what to run: the study, its budget, its data"))
    store_flags(
        p.add_argument_group(
            "where results go: the Optuna and MLflow stores, this machine's work folder"
        )
    )
    runtime_flags(p.add_argument_group("how it runs: processes, devices, number format, saving"))
    search_flags(p.add_argument_group("how the search looks"))
    final_flags(p.add_argument_group("after the search: the final phase, the registry, the report"))
    return p


def study_flags(g) -> None:
    g.add_argument("--study", help="study to run (file name in sweeps/); see --list")
    g.add_argument("--list", action="store_true", help="list the studies and exit")
    g.add_argument("--trials", type=int, help="total trials of the study (re-running continues)")
    g.add_argument("--epochs", type=int, help="maximum epochs per trial")
    # No argparse default: with --report, a given --backbone or --split is a filter.
    g.add_argument("--backbone", help=backbone_help())
    g.add_argument(
        "--data",
        help="CSV with SMILES and label columns (default: LIPO_DATA_DIR or a checked download)",
    )
    g.add_argument("--split", help="random (default) | scaffold | FILE.json")
    g.add_argument("--seed", type=int, default=0, help="seeds the split and the search")
    g.add_argument("--strict", action="store_true", help="reject a data file with invalid rows")
    g.add_argument(
        "--head-features",
        choices=["rdkit", "rdkit2d"],
        default=None,
        help="concatenate RDKit descriptors with the pooled embedding before the "
        "head: rdkit (8: Crippen logP, TPSA, ...) or rdkit2d (RDKit's whole "
        "2D set, ~210, cached under ~/.cache/lipo/features)",
    )
    g.add_argument("--adapter", choices=ADAPTERS.names(), default=None, help=adapter_help())
    g.add_argument(
        "--pool",
        help="external pool CSV for the influence study (default: "
        "$LIPO_DATA_DIR/External-Dataset_for_Task2.csv)",
    )


def store_flags(g) -> None:
    g.add_argument(
        "--storage",
        help="Optuna storage: a journal file path or an RDB URL (default mlruns/optuna.journal)",
    )
    g.add_argument(
        "--tracking-uri",
        default=None,
        help=f"MLflow tracking URI (default {DEFAULT_TRACKING_URI}), e.g. "
        "http://127.0.0.1:5000 for a shared server",
    )
    g.add_argument(
        "--workdir",
        metavar="DIR",
        help="this machine's own folder for resumable training states and caches "
        "(default: $LIPO_HOME, else mlruns/state and reports/.cache here); "
        "final seeds are claimed in the shared --storage, not here",
    )


def runtime_flags(g) -> None:
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="start K worker processes on this machine, sharing the study through "
        "--storage (default 1); above the GPU count they share the GPUs, "
        "round robin",
    )
    g.add_argument(
        "--workers-per-gpu",
        type=int,
        default=None,
        metavar="N",
        help="N workers on each GPU (alone: N x GPUs workers; with --workers K: "
        "at most N on one GPU)",
    )
    g.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default=None,
        help="number format of the forward pass, through Accelerate's mixed "
        "precision (default: bf16 on a GPU that supports it, else fp32)",
    )
    g.add_argument(
        "--heartbeat",
        type=int,
        default=None,
        help="seconds between a running trial's heartbeats in an RDB storage; a "
        "trial silent for twice as long is failed and retried (default 60)",
    )
    g.add_argument(
        "--save-every",
        type=int,
        default=None,
        help="optimiser steps between resumable training states (default 100; "
        "0: at epoch ends only)",
    )
    g.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let --backbone PATH run the model code its folder ships "
        "(MoLFormer folders need none: lipo runs its own implementation)",
    )


def search_flags(g) -> None:
    g.add_argument(
        "--objective",
        default="mse",
        help="mse (default) or mse,params: also minimise trainable parameters "
        "(multi-objective, keeps the Pareto front, no pruning)",
    )
    g.add_argument(
        "--pruner",
        choices=["median", "hyperband", "none"],
        default=None,
        help="how the search stops unpromising trials early: median (default: "
        "behind the median of earlier trials at the same epoch), hyperband "
        "(successive halving in brackets) or none",
    )
    g.add_argument(
        "--warm-start",
        metavar="STUDY",
        help="queue the best settings of STUDY (finished on the same backbone, "
        "split and data) as this search's first trial, on the knobs the two "
        "studies share",
    )


def final_flags(g) -> None:
    g.add_argument(
        "--final",
        action="store_true",
        help="re-train the best settings per seed and evaluate the test split",
    )
    g.add_argument("--seeds", help="comma-separated seeds for --final (default 0,1,2)")
    g.add_argument("--control", help=control_help())
    g.add_argument(
        "--split-per-seed",
        action="store_true",
        help="with --final: seed S trains and is tested on the random split of seed "
        "S (random_seed<S>), so that the ± over seeds includes the split's "
        "variance; the settings still come from the search on --split",
    )
    g.add_argument(
        "--no-refit",
        action="store_true",
        help="with --final: serve the final seeds themselves; by default, once the seeds "
        "have finished, each is refitted on training + validation molecules for the epochs "
        "it kept, and the served ensemble predicts with those refits (strategy 'all' only: "
        "baseline, lora, bitfit, ia3)",
    )
    g.add_argument(
        "--register",
        metavar="NAME",
        help="with --final: register the seeds' ensemble (mean, spread, 90%% "
        "conformal interval, similarity to train) in the MLflow model "
        "registry as NAME, alias champion (models:/NAME@champion)",
    )
    g.add_argument(
        "--report",
        action="store_true",
        help="build the comparison table and plots under reports/ from MLflow "
        "(--split NAME and --backbone NAME filter the runs)",
    )


def backbone_help() -> str:
    names = [f"{n} (default)" if n == DEFAULT_BACKBONE else n for n in BACKBONES.names()]
    return " | ".join([*names, "PATH"])


def adapter_help() -> str:
    """The studies are read from their files: one added under LIPO_STUDIES is listed too."""
    from lipo.study_files import full_fine_tune_studies

    return (
        "how the weights change, for the studies that fine-tune every weight by default "
        f"({', '.join(full_fine_tune_studies())}): e.g. --study influence --adapter lora, "
        "with the adapter's default knobs"
    )


def control_help() -> str:
    """From the registrations: listing them imports no strategy module (and no torch)."""
    controls = "; ".join(
        f"{strategy}: {', '.join(control_names(strategy))}"
        for strategy in STRATEGIES.having("controls")
    )
    return (
        "with --final: re-train the best settings as the strategy's control, its own "
        f"report row ({controls})"
    )
