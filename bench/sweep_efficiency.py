"""Search efficiency: the platform's pruned TPE against random search without pruning, at the
same budget of trial-epochs, on the ``baseline`` study with a small encoder.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/sweep_efficiency.py [--quick]

Both arms draw from ``sweeps/baseline.py``'s search space (lr, weight decay, dropout, batch
size, warm-up; at most 6 epochs and early stopping as in the study) and train every trial
through lipo's own trial code (``lipo.trial_run``), until each has spent B trial-epochs (the
last trial is cut to what is left):
  tpe     ``lipo.search.storage.open_study``: TPE with median pruning (from epoch 2 on)
  random  Optuna's RandomSampler with the NopPruner
and, per search seed, the best validation MSE of completed trials against trial-epochs spent.
Target: 1.02 x the best val MSE either arm found; the last line is
``budget_ratio_random_vs_tpe=X``, the trial-epochs random search needed to reach the target over
those TPE needed (median over seeds; where random never reached it, B counts as its need, so
X is then a lower bound, and the line before says so). ``--quick``: a budget of 4, 2 epochs.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import optuna

from common import headline, machine, parser, setup, trial_run, workspace
from lipo.config import RunConfig
from lipo.errors import LipoError, TrialPruned
from lipo.recorder import EpochReporter
from lipo.search.storage import open_study
from lipo.search.trials import tell
from lipo.trial_run import train_trial
from lipo.study_files import load_study

TOLERANCE = 1.02


def arm_study(arm: str, seed: int, startup: int, folder: Path) -> optuna.Study:
    if arm == "tpe":  # exactly what `launch.py --study` opens
        return open_study(f"bench-{arm}", str(folder / f"{arm}.journal"), seed, startup)
    return optuna.create_study(direction="minimize", pruner=optuna.pruners.NopPruner(),
                               sampler=optuna.samplers.RandomSampler(seed=seed))


def one_trial(study, definition, base: RunConfig, ws, epochs_left: int):
    """(epochs spent, best val MSE or None when pruned or failed)."""
    trial = study.ask()
    overrides = {**getattr(definition, "DEFAULTS", {}), **definition.space(trial)}
    cfg = base.with_overrides(overrides).replace(epochs=min(base.epochs, epochs_left))
    seen: list[float] = []
    run = trial_run(cfg, ws)
    def should_stop(epoch: int, mse: float) -> bool:
        trial.report(mse, epoch)
        return trial.should_prune()

    run.on_epoch = EpochReporter(run.accelerator, should_stop,
                                 lambda metrics, epoch: seen.append(metrics["val/mse"]))
    try:
        result = train_trial(run)
    except TrialPruned:
        tell(study, trial, "PRUNED")
        return len(seen), None
    except LipoError as exc:  # a diverged trial: its epochs count, its result does not
        tell(study, trial, "FAIL", error=str(exc)[:200])
        return len(seen), None
    tell(study, trial, "COMPLETE", result.best["val/mse"])
    return len(seen), result.best["val/mse"]


def search(study, definition, base: RunConfig, ws, budget: int) -> list[tuple[int, float]]:
    """Best val MSE so far after each trial, against trial-epochs spent."""
    spent, best, curve = 0, float("inf"), []
    while spent < budget:
        epochs, value = one_trial(study, definition, base, ws, budget - spent)
        spent += max(epochs, 1)  # a trial that fails before its first epoch still costs
        best = min(best, value) if value is not None else best
        curve.append((spent, best))
    return curve


def needed(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((spent for spent, best in curve if best <= target), None)


def compare(seed: int, definition, base: RunConfig, ws, budget: int) -> tuple[float, bool]:
    """(random's need / TPE's need, whether random reached the target) for one search seed."""
    startup = min(4, max(1, budget // base.epochs // 3))  # as the search loop sets it for B/E trials
    curves = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for arm in ("tpe", "random"):
            curves[arm] = search(arm_study(arm, seed, startup, Path(tmp)), definition, base, ws,
                                 budget)
            print(f"seed {seed} {arm:6s} " + "  ".join(f"{s}:{b:.4f}" for s, b in curves[arm]),
                  flush=True)
    target = TOLERANCE * min(curves[a][-1][1] for a in curves)
    need = {arm: needed(curves[arm], target) for arm in curves}
    print(f"seed {seed}: best tpe {curves['tpe'][-1][1]:.4f}, random "
          f"{curves['random'][-1][1]:.4f}; trial-epochs to reach {target:.4f}: tpe "
          f"{need['tpe'] or f'not within {budget}'}, "
          f"random {need['random'] or f'not within {budget}'}", flush=True)
    if need["tpe"] is None:  # only random reached it
        return need["random"] / budget, True
    return (need["random"] or budget) / need["tpe"], need["random"] is not None


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="budget 4, 2 epochs a trial")
    p.add_argument("--backbone", default="tiny")
    p.add_argument("--budget", type=int, help="trial-epochs per arm (default 36, quick 4)")
    p.add_argument("--epochs", type=int, help="at most per trial (default: the study's, quick 2)")
    p.add_argument("--seeds", default="0", help="search seeds, comma-separated")
    args = p.parse_args()
    setup(args.threads)
    definition = load_study("baseline")
    budget = args.budget or (4 if args.quick else 36)
    epochs = args.epochs or (2 if args.quick else definition.EPOCHS)
    ws = workspace()
    base = RunConfig(study="baseline", strategy=definition.STRATEGY, adapter=definition.ADAPTER,
                     backbone=args.backbone, epochs=epochs)
    print(machine())
    print(f"{args.backbone}, budget {budget} trial-epochs per arm, at most {epochs} per trial")
    found = [compare(int(s), definition, base, ws, budget) for s in args.seeds.split(",")]
    ratio = statistics.median(r for r, _ in found)
    print(f"random reached the target in {sum(ok for _, ok in found)} of {len(found)} seeds"
          + ("" if all(ok for _, ok in found) else "; the ratio is then a lower bound"))
    headline("budget_ratio_random_vs_tpe", ratio)


if __name__ == "__main__":
    main()
