"""Search efficiency: the platform's search options against random search without pruning, at
the same budget of trial-epochs, on the ``baseline`` study's search space.

    OMP_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/sweep_efficiency.py \
        --backbone mini --seeds 0,1,2 --train-subset 600 [--quick]

Every arm draws from ``sweeps/baseline.py``'s space (lr, weight decay, dropout, batch size,
warm-up, augment, tta; the study's early stopping) and trains every trial through lipo's own
trial code (``lipo.training.trial_run``), until it has spent B trial-epochs (the last trial is cut
to what is left). Arms (``--arms``):
  random      RandomSampler, no pruning: the reference
  median      TPE with the median pruner from epoch 2 on: the launcher's default
  hyperband   TPE with Hyperband (``lipo.search.storage.make_pruner('hyperband')``)
  multivariate  multivariate TPE (the knobs' joint density) with Hyperband
  warm        hyperband, its first trial the best settings of another search seed's random
              arm (``--warm-start``: a finished study on the same split and backbone)
TPE arms are seeded per trial as the launcher seeds them (``lipo.search.storage.sampler``),
with the start-up count the launcher uses for B / E trials. Per arm and seed: the best
validation MSE of completed trials against trial-epochs spent, and the trial-epochs it needed
to come within 2% of random search's best (``TOLERANCE``). The last line is
``budget_ratio_random_vs_default=X``: over the seeds, random's need averaged over the default
arm's need (``--default``, median; where an arm never reached the target, B counts as its
need, a bound the lines before name). X >= 2: the default needs at most half random's budget.
``--train-subset N``: fine-tune on the first N molecules of the training split (in the
split's order), so that a seed's arms fit the CPU's time; validation is the whole val split.
"""

from __future__ import annotations

import dataclasses
import statistics
import warnings

import optuna
from common import headline, machine, parser, setup, trial_run, workspace

from lipo.config import RunConfig
from lipo.errors import LipoError, TrialPruned
from lipo.search.storage import make_pruner, sampler
from lipo.search.trials import tell
from lipo.study_files import load_study
from lipo.tracking.recorder import EpochReporter
from lipo.training.trial_run import train_trial

TOLERANCE = 1.02
ARMS = ("random", "median", "hyperband", "multivariate", "warm")


class Arm:
    """One way to search: a sampler per trial and a pruner."""

    def __init__(self, name: str, seed: int, startup: int, epochs: int, warm: dict | None):
        self.name, self.seed, self.startup = name, seed, startup
        pruner = {"random": "none", "median": "median"}.get(name, "hyperband")
        self.study = optuna.create_study(
            direction="minimize", pruner=make_pruner(pruner, startup, epochs)
        )
        if name == "warm" and warm:
            self.study.enqueue_trial(warm)

    def ask(self) -> optuna.Trial:
        number = len(self.study.trials)
        if self.name == "random":
            self.study.sampler = optuna.samplers.RandomSampler(seed=self.seed * 10_000 + number)
        elif self.name == "multivariate":
            with warnings.catch_warnings():  # Optuna calls multivariate experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.sampler = optuna.samplers.TPESampler(
                    seed=self.seed * 10_000 + number,
                    n_startup_trials=self.startup,
                    multivariate=True,
                    constant_liar=True,
                )
        else:  # exactly the launcher's TPE
            self.study.sampler = sampler(self.seed, number, self.startup)
        return self.study.ask()


def one_trial(arm: Arm, definition, base: RunConfig, ws, epochs_left: int):
    """(epochs spent, best val MSE or None when pruned or failed)."""
    trial = arm.ask()
    overrides = {**getattr(definition, "DEFAULTS", {}), **definition.space(trial)}
    cfg = base.with_overrides(overrides).replace(epochs=min(base.epochs, epochs_left))
    seen: list[float] = []
    run = trial_run(cfg, ws)

    def should_stop(epoch: int, mse: float) -> bool:
        trial.report(mse, epoch)
        return trial.should_prune()

    run.on_epoch = EpochReporter(
        run.accelerator, should_stop, lambda metrics, epoch: seen.append(metrics["val/mse"])
    )
    try:
        result = train_trial(run)
    except TrialPruned:
        tell(arm.study, trial, "PRUNED")
        return len(seen), None
    except LipoError as exc:  # a diverged trial: its epochs count, its result does not
        tell(arm.study, trial, "FAIL", error=str(exc)[:200])
        return len(seen), None
    tell(arm.study, trial, "COMPLETE", result.best["val/mse"])
    return len(seen), result.best["val/mse"]


def search(arm: Arm, definition, base: RunConfig, ws, budget: int) -> list[tuple[int, float]]:
    """Best val MSE so far after each trial, against trial-epochs spent."""
    spent, best, curve = 0, float("inf"), []
    while spent < budget:
        epochs, value = one_trial(arm, definition, base, ws, budget - spent)
        spent += max(epochs, 1)  # a trial that fails before its first epoch still costs
        best = min(best, value) if value is not None else best
        curve.append((spent, best))
    print(
        f"seed {arm.seed} {arm.name:12s} " + "  ".join(f"{s}:{b:.4f}" for s, b in curve), flush=True
    )
    return curve


def needed(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((spent for spent, best in curve if best <= target), None)


def best_settings(arm: Arm) -> dict:
    return arm.study.best_trial.params if arm.study.best_trial else {}


def run_seeds(
    seeds: list[int], arms: list[str], definition, base: RunConfig, ws, budget: int
) -> dict[tuple[int, str], list]:
    """Every arm on every seed; random first, so ``warm`` can start from another seed's."""
    startup = min(4, max(1, budget // base.epochs // 3))  # as the search loop sets it
    curves, randoms = {}, {}
    for seed in seeds:
        arm = Arm("random", seed, startup, base.epochs, None)
        curves[seed, "random"] = search(arm, definition, base, ws, budget)
        randoms[seed] = best_settings(arm)
    for seed in seeds:
        donor = seeds[(seeds.index(seed) + 1) % len(seeds)]
        for name in [a for a in arms if a != "random"]:
            arm = Arm(name, seed, startup, base.epochs, randoms[donor] if donor != seed else None)
            curves[seed, name] = search(arm, definition, base, ws, budget)
    return curves


def summarise(curves: dict, seeds: list[int], arms: list[str], budget: int, default: str) -> float:
    """Prints each arm's need per seed; returns random's mean need over the default's."""
    print(f"\ntrial-epochs to reach {TOLERANCE} x random's best (B = {budget}; '>' never within B)")
    print("seed  target  " + "  ".join(f"{a:>12s}" for a in arms))
    mean_need = {a: [] for a in arms}
    for seed in seeds:
        target = TOLERANCE * curves[seed, "random"][-1][1]
        cells = []
        for arm in arms:
            need = needed(curves[seed, arm], target)
            mean_need[arm].append(need or budget)
            cells.append(f"{need if need else '>' + str(budget):>12}")
        print(f"{seed:4d}  {target:.4f}  " + "  ".join(cells))
    print(
        "best  "
        + " " * 8
        + "  ".join(f"{statistics.mean(curves[s, a][-1][1] for s in seeds):12.4f}" for a in arms)
        + "   (mean over seeds of each arm's best val MSE)"
    )
    for arm in arms:
        ratio = statistics.mean(mean_need["random"]) / statistics.mean(mean_need[arm])
        print(
            f"{arm:12s} mean need {statistics.mean(mean_need[arm]):5.1f}; random / {arm} = "
            f"{ratio:.2f}"
        )
    return statistics.mean(mean_need["random"]) / statistics.mean(mean_need[default])


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="budget 4, 2 epochs a trial")
    p.add_argument("--backbone", default="mini")
    p.add_argument("--budget", type=int, help="trial-epochs per arm (default 24, quick 4)")
    p.add_argument("--epochs", type=int, help="at most per trial (default 4, quick 2)")
    p.add_argument("--seeds", default="0,1,2", help="search seeds, comma-separated")
    p.add_argument(
        "--arms", default=",".join(ARMS), help="comma-separated, from " + ", ".join(ARMS)
    )
    p.add_argument(
        "--default",
        default="median",
        help="the arm the headline measures (default: the launcher's own search)",
    )
    p.add_argument("--train-subset", type=int, help="fine-tune on this many training molecules")
    args = p.parse_args()
    setup(args.threads)
    definition = load_study("baseline")
    budget = args.budget or (4 if args.quick else 24)
    epochs = args.epochs or (2 if args.quick else 4)
    arms = ["random"] + [a for a in args.arms.split(",") if a != "random"]
    if unknown := set(arms) - set(ARMS):
        p.error(f"--arms: unknown {', '.join(sorted(unknown))}")
    ws = workspace()
    if args.train_subset:
        ws = dataclasses.replace(
            ws, split=dataclasses.replace(ws.split, train=ws.split.train[: args.train_subset])
        )
    base = RunConfig(
        study="baseline",
        strategy=definition.STRATEGY,
        adapter=definition.ADAPTER,
        backbone=args.backbone,
        epochs=epochs,
    )
    seeds = [int(s) for s in args.seeds.split(",")]
    print(machine())
    print(
        f"{args.backbone}, {len(ws.split.train)} training molecules, budget {budget} "
        f"trial-epochs per arm, at most {epochs} per trial; arms {', '.join(arms)}"
    )
    curves = run_seeds(seeds, arms, definition, base, ws, budget)
    headline("budget_ratio_random_vs_default", summarise(curves, seeds, arms, budget, args.default))


if __name__ == "__main__":
    main()
