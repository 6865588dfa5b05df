"""What the platform (Optuna + MLflow + Accelerate) costs around one trial's training.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/overhead.py [--quick]

Each repeat runs, one after the other, two fresh processes timed from start to exit:
  launch  ``python launch.py --study baseline --trials 1 --epochs E`` into a throw-away MLflow
          store and Optuna journal (search, tracking, checkpoint and artifacts included)
  bare    the same trial's settings, read back from the journal, trained by a plain PyTorch
          loop on lipo's model and loaders (``bench/common.py: bare_fit``), nothing recorded
Both validation MSEs are printed as a check that the training was the same. The last line is
``overhead_fraction=X``: (launch - bare) / launch wall time, medians over the repeats.
``--quick`` uses the ``tiny`` encoder and one epoch.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, bare_fit, headline, machine, parser, setup, trial_run, workspace
from lipo.config import RunConfig


def launch(folder: Path, backbone: str, epochs: int, threads: int) -> float:
    command = [sys.executable, str(ROOT / "launch.py"), "--study", "baseline", "--trials", "1",
               "--epochs", str(epochs), "--backbone", backbone,
               "--storage", str(folder / "optuna.journal"),
               "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    return timed_process(command, folder, threads)


def timed_process(command: list[str], cwd: Path, threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:3])} failed:\n{done.stderr[-3000:]}")
    return seconds


def launched_trial(folder: Path) -> tuple[dict, float]:
    """The settings and best val/mse of the one trial in the journal."""
    import optuna
    from lipo.search.book import TrialBook
    from lipo.search.storage import storage
    journal = str(folder / "optuna.journal")
    (name,) = optuna.get_all_study_names(storage(journal))
    (trial,) = TrialBook.load(name, journal).trials()
    return trial.settings, trial.values[0]


def bare(folder: Path, cfg: RunConfig, threads: int) -> tuple[float, dict]:
    (folder / "config.json").write_text(cfg.to_json())
    command = [sys.executable, __file__, "--bare", str(folder / "config.json"),
               "--threads", str(threads)]
    seconds = timed_process(command, folder, threads)
    return seconds, json.loads((folder / "bare.json").read_text())


def bare_main(config: Path) -> None:
    """The child process of ``bare``: train, write the figures beside the config."""
    started = time.perf_counter()
    cfg = RunConfig.from_json(config.read_text())
    run = trial_run(cfg, workspace(cfg.split, cfg.split_seed))
    model = run.new_model()
    val_mse = bare_fit(model, run.loader(run.split.train, True),
                       run.loader(run.split.val, False), cfg)
    (config.parent / "bare.json").write_text(json.dumps(
        {"val_mse": min(val_mse), "train_s": time.perf_counter() - started}))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="tiny encoder, one epoch, one repeat")
    p.add_argument("--backbone", help="default mini (quick: tiny)")
    p.add_argument("--epochs", type=int, help="default 2 (quick: 1)")
    p.add_argument("--repeats", type=int, help="launch/bare pairs (default 2, quick 1)")
    p.add_argument("--bare", type=Path, help=argparse.SUPPRESS)  # the child process
    args = p.parse_args()
    setup(args.threads)
    if args.bare:
        return bare_main(args.bare)
    backbone = args.backbone or ("tiny" if args.quick else "mini")
    epochs = args.epochs or (1 if args.quick else 2)
    repeats = args.repeats or (1 if args.quick else 2)
    print(machine())
    launched, bared = [], []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
            folder = Path(tmp)
            launched.append(launch(folder, backbone, epochs, args.threads))
            overrides, launch_mse = launched_trial(folder)
            cfg = RunConfig(study="baseline", backbone=backbone, epochs=epochs)
            seconds, figures = bare(folder, cfg.with_overrides(overrides), args.threads)
            bared.append(seconds)
        print(f"repeat {repeat}: launch {launched[-1]:6.1f} s (val/mse {launch_mse:.4f}), bare "
              f"{seconds:6.1f} s (val/mse {figures['val_mse']:.4f}; its training "
              f"{figures['train_s']:.1f} s)", flush=True)
    t_launch, t_bare = statistics.median(launched), statistics.median(bared)
    print(f"{backbone}, {epochs} epoch(s): launch {t_launch:.1f} s, bare {t_bare:.1f} s "
          f"(medians of {repeats}); launch / bare = {t_launch / t_bare:.2f}")
    headline("overhead_fraction", (t_launch - t_bare) / t_launch)


if __name__ == "__main__":
    main()
