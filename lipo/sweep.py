"""Optuna, and the only module that imports it: one study per strategy, resumable.

Under torchrun / accelerate launch, rank 0 alone asks the study, broadcasts the trial's
settings, reports each epoch and broadcasts the prune decision; every rank trains.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
TrialPruned = optuna.TrialPruned


def storage(url: str | None):
    """A journal file by default (safe for several workers on one machine); RDB URLs
    (postgresql://, mysql://, sqlite://) go to Optuna as they are."""
    if url and "://" in url:
        return url
    path = Path(url) if url else DEFAULT_STORAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


OBJECTIVES = ("mse", "params")  # validation MSE; trainable parameters


def open_study(name: str, storage_url: str | None, seed: int, startup: int,
               objectives: tuple[str, ...] = ("mse",)) -> optuna.Study:
    # Optuna prunes single-objective studies only.
    # Never on the first epoch: one epoch says little about where a trial ends up.
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=2)
              if len(objectives) == 1 else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=name, storage=storage(storage_url),
                                directions=["minimize"] * len(objectives), load_if_exists=True,
                                pruner=pruner)
    # Seeded, but offset by the trials already run: a resumed study must not redraw the
    # settings its first trials had.
    study.sampler = optuna.samplers.TPESampler(seed=seed * 10_000 + len(study.trials),
                                               n_startup_trials=startup)
    return study


def load_existing(name: str, storage_url: str | None) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage(storage_url))


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Every trial counts towards --trials, except one interrupted by the user (re-queued)."""
    if trial.state == TrialState.WAITING:
        return False
    return not (trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted"))


def trials_counted(study: optuna.Study) -> int:
    return sum(counted(t) for t in study.get_trials(deepcopy=False))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The completed trial with the lowest validation MSE (the first objective); with two
    objectives that trial is always on the Pareto front."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min(done, key=lambda t: t.values[0]) if done else None


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return sorted(study.best_trials, key=lambda t: t.values[0]) if study.best_trials else []


def tell(study: optuna.Study, trial: optuna.Trial, state: str,
         value: float | list[float] | None = None, **attrs: Any) -> None:
    for key, item in attrs.items():
        trial.set_user_attr(key, item)
    states = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED,
              "FAIL": TrialState.FAIL}
    study.tell(trial, value if state == "COMPLETE" else None, state=states[state])


def requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """Run the same settings again on resume (after Ctrl-C)."""
    study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})


def broadcast(accelerator: Accelerator, value: Any) -> Any:
    """rank 0's ``value`` on every rank (a no-op in one process)."""
    if accelerator.num_processes == 1:
        return value
    return broadcast_object_list([value], from_process=0)[0]


class EpochReporter:
    """Per-epoch hook: rank 0 logs and asks the pruner, every rank learns the decision."""

    def __init__(self, accelerator: Accelerator, trial: optuna.Trial | None, log,
                 prune: bool = True):
        """``log(metrics, step)``: rank 0's MLflow logger (None on other ranks)."""
        self.accelerator, self.trial, self.log, self.prune = accelerator, trial, log, prune

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        stop = False
        if self.accelerator.is_main_process:
            self.log(metrics, epoch)
            if self.trial is not None and self.prune:
                self.trial.report(metrics["val/mse"], epoch)
                stop = self.trial.should_prune()
        if broadcast(self.accelerator, stop):
            raise TrialPruned(f"pruned after epoch {epoch}")


def param_importances(observations: list[tuple[dict, float]]) -> dict[str, float]:
    """fANOVA importance of each knob for one study, rebuilt from what MLflow recorded of its
    completed trials: (params, best val/mse) pairs. Numbers become a float range over the
    values seen (log-scaled when they span more than a decade), anything else a category;
    knobs that never varied are left out. Empty with fewer than 3 trials."""
    distributions = observed_distributions([params for params, _ in observations])
    if len(observations) < 3 or not distributions:
        return {}
    study = optuna.create_study()
    for params, value in observations:
        values = {k: as_value(params[k], d) for k, d in distributions.items()}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=distributions,
                                                  value=value))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)  # a seeded random forest
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {k: float(v) for k, v in found.items()}


def as_value(text, distribution):
    if isinstance(distribution, optuna.distributions.FloatDistribution):
        return float(text)
    return str(text)


def observed_distributions(records: list[dict]) -> dict:
    found = {}
    for key in set().union(*records) if records else ():
        if any(key not in r for r in records):
            continue
        seen = sorted({str(r[key]) for r in records})
        if len(seen) < 2:
            continue
        try:
            low, high = min(map(float, seen)), max(map(float, seen))
            found[key] = optuna.distributions.FloatDistribution(
                low, high, log=low > 0 and high / low > 10)
        except ValueError:
            found[key] = optuna.distributions.CategoricalDistribution(seen)
    return found
