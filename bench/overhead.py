"""What the platform (Optuna, MLflow, Accelerate, checkpoints, artifacts) costs per trial
inside one study, and what a launch costs before its first trial and after its last.

    OMP_NUM_THREADS=2 LIPO_DATA_DIR=../shared/data python bench/overhead.py [--quick]

One process, ``python launch.py --study baseline --trials N --epochs E --pruner none`` on
``mini``, into a throw-away MLflow store and Optuna journal, timed from start to exit. Then
from its MLflow runs: each trial's span (the previous trial's end, or the search's start, to
this trial's end: drawing it, building its model, training, evaluating, saving states,
logging, the checkpoint and artifacts) and the seconds its fit spent in optimiser steps and
per-epoch evaluation (``time/train_s``, ``time/eval_s``); a trial's overhead is its span less
those. Start-up: process start to the search's parent run (imports, data, the stores' first
open); shutdown: the last trial's end to exit. The last line is ``overhead_fraction=X``: the
trials' overhead over their spans, summed over the study's trials (start-up excluded).
``--quick``: the ``tiny`` encoder, 2 trials of one epoch.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from common import headline, machine, parser, setup, timed_launch


def launch(
    folder: Path, backbone: str, trials: int, epochs: int, threads: int
) -> tuple[float, float]:
    """(wall-clock start, seconds to exit) of the study's process."""
    return timed_launch(
        [
            "--study",
            "baseline",
            "--trials",
            str(trials),
            "--epochs",
            str(epochs),
            "--backbone",
            backbone,
            "--pruner",
            "none",
            "--storage",
            str(folder / "optuna.journal"),
            "--tracking-uri",
            tracking_uri(folder),
        ],
        folder,
        threads,
    )


def tracking_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def runs(folder: Path) -> tuple[object, list]:
    """(the search's parent run, its trial runs in order of their start)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(folder))
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    found = client.search_runs([experiment.experiment_id], max_results=1000)
    parent = next(r for r in found if "mlflow.parentRunId" not in r.data.tags)
    trials = sorted(
        (r for r in found if "mlflow.parentRunId" in r.data.tags), key=lambda r: r.info.start_time
    )
    return parent, trials


def per_trial(parent, trials) -> list[dict[str, float]]:
    """Seconds of each trial: span, training, evaluation, saving, and the rest."""
    rows, previous_end = [], parent.info.start_time
    for run in trials:
        if run.info.status != "FINISHED":
            sys.exit(f"trial run {run.info.run_name} ended {run.info.status}")
        m = run.data.metrics
        span = (run.info.end_time - previous_end) / 1000
        rows.append(
            {
                "span": span,
                "train": m["time/train_s"],
                "eval": m["time/eval_s"],
                "save": m["time/save_s"],
                "before": (run.info.start_time - previous_end) / 1000,
                "after": (run.info.end_time - run.info.start_time) / 1000 - m["wall_time_s"],
                "overhead": span - m["time/train_s"] - m["time/eval_s"],
            }
        )
        previous_end = run.info.end_time
    return rows


def print_table(rows: list[dict[str, float]]) -> None:
    print(
        "trial   span s  train s  eval s  overhead s (of which: before run, states, "
        "after training)  overhead %"
    )
    for n, r in enumerate(rows):
        print(
            f"{n:5d}  {r['span']:7.1f}  {r['train']:7.1f}  {r['eval']:6.1f}  "
            f"{r['overhead']:10.1f}  ({r['before']:.1f}, {r['save']:.1f}, {r['after']:.1f})"
            f"  {100 * r['overhead'] / r['span']:10.1f}"
        )


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="tiny encoder, 2 trials of one epoch")
    p.add_argument("--backbone", help="default mini (quick: tiny)")
    p.add_argument("--trials", type=int, help="default 4 (quick: 2)")
    p.add_argument("--epochs", type=int, help="default 2 (quick: 1)")
    args = p.parse_args()
    setup(args.threads)
    backbone = args.backbone or ("tiny" if args.quick else "mini")
    trials = args.trials or (2 if args.quick else 4)
    epochs = args.epochs or (1 if args.quick else 2)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        folder = Path(tmp)
        started, total = launch(folder, backbone, trials, epochs, args.threads)
        parent, trial_runs = runs(folder)
    rows = per_trial(parent, trial_runs)
    print(f"{backbone}, {trials} trials of {epochs} epoch(s), no pruning: process {total:.1f} s")
    print_table(rows)
    startup = parent.info.start_time / 1000 - started
    shutdown = total - startup - sum(r["span"] for r in rows)
    overhead = [r["overhead"] for r in rows]
    print(
        f"per trial: overhead {statistics.mean(overhead):.1f} s (mean), "
        f"{statistics.median(overhead):.1f} s (median); start-up {startup:.1f} s "
        f"(imports, data, stores), shutdown {shutdown:.1f} s"
    )
    headline("overhead_fraction", sum(overhead) / sum(r["span"] for r in rows))


if __name__ == "__main__":
    main()
