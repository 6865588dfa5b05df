"""Trials per hour on one machine: one worker using every core against K workers
(``--workers K``) with cores / K threads each, on the same study.

    LIPO_DATA_DIR=../shared/data python bench/trials_per_hour.py [--quick]

The study is written to a throw-away folder (``LIPO_STUDIES``): the ``baseline`` strategy on
``mini`` with the cost of a trial fixed (batch size 32, no randomised SMILES, E epochs, no
early stopping or pruning), only cost-free knobs drawn (learning rate, weight decay, dropout),
so every trial does the same work. Each arm is a fresh ``launch.py --study`` process of T
trials into its own MLflow store and Optuna journal, timed from start to exit, imports
included. The last line is ``workers_vs_one=X``: K workers' trials per hour over one
worker's. ``--quick``: ``tiny``, 2 trials of one epoch.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from common import headline, machine, parser, timed_launch

STUDY = '''"""Fixed-cost trials for bench/trials_per_hour.py."""
STRATEGY = "all"
ADAPTER = "full"
TRIALS = {trials}
EPOCHS = {epochs}
DEFAULTS = {{"batch_size": 32, "augment": 0, "tta": 0, "patience": 1000}}


def space(trial) -> dict:
    return {{"lr": trial.suggest_float("lr", 1e-4, 1e-3, log=True),
             "weight_decay": trial.suggest_float("weight_decay", 1e-4, 0.1, log=True),
             "dropout": trial.suggest_float("dropout", 0.0, 0.3)}}
'''


def timed_study(folder: Path, backbone: str, workers: int, threads: int | None) -> float:
    """Seconds from start to exit of one launch; ``threads`` None leaves the split of the
    cores to ``--workers``."""
    args = [
        "--study",
        "fixedcost",
        "--backbone",
        backbone,
        "--pruner",
        "none",
        "--storage",
        str(folder / f"w{workers}.journal"),
        "--tracking-uri",
        f"sqlite:///{folder / f'w{workers}.db'}",
    ]
    if workers > 1:
        args += ["--workers", str(workers)]
    return timed_launch(args, folder, threads, {"LIPO_STUDIES": str(folder)})[1]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="tiny encoder, 2 trials of one epoch")
    p.add_argument("--backbone", help="default mini (quick: tiny)")
    p.add_argument("--trials", type=int, help="default 4 (quick: 2)")
    p.add_argument("--epochs", type=int, help="default 2 (quick: 1)")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="K (default: the CPU count)"
    )
    args = p.parse_args()
    backbone = args.backbone or ("tiny" if args.quick else "mini")
    trials = args.trials or (2 if args.quick else 4)
    epochs = args.epochs or (1 if args.quick else 2)
    cores = os.cpu_count() or 1
    print(machine())
    print(f"{backbone}, {trials} trials of {epochs} epochs, {cores} cores")
    rates = {}
    with tempfile.TemporaryDirectory(prefix="bench-tph-") as tmp:
        folder = Path(tmp)
        (folder / "fixedcost.py").write_text(STUDY.format(trials=trials, epochs=epochs))
        for workers, threads in ((1, cores), (args.workers, None)):
            seconds = timed_study(folder, backbone, workers, threads)
            rates[workers] = 3600 * trials / seconds
            each = threads or max(1, cores // workers)
            print(
                f"{workers} worker(s) x {each} thread(s): {seconds:.1f} s, "
                f"{rates[workers]:.1f} trials/hour",
                flush=True,
            )
    headline("workers_vs_one", rates[args.workers] / rates[1])


if __name__ == "__main__":
    main()
