"""The search and final phases: Optuna proposes, every rank trains, rank 0 records.

Every side effect (Optuna, MLflow, files, printing) sits behind ``is_main_process``.
"""
from __future__ import annotations

import contextlib
import errno
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from accelerate import Accelerator
from tqdm.auto import tqdm

from lipo import sweep
from lipo.config import RunConfig
from lipo.checkpoint import save_checkpoint
from lipo.devices import release
from lipo.errors import ArtifactError, LipoError
from lipo.experiment import TrialRun, Workspace, count_params, train_trial
from lipo.strategies import STRATEGIES, control_knobs
from lipo.tracking import Tracker

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
STATE_ROOT = Path("mlruns") / "state"  # resumable training states of running trials
REDRAWS = 20  # draws of already-tried settings in a row before the space counts as exhausted


@dataclass
class Invocation:
    """What one command line asks for, resolved."""

    study: str
    definition: ModuleType
    base: RunConfig
    trials: int
    storage: str | None
    tracking_uri: str
    ws: Workspace
    objectives: tuple[str, ...] = ("mse",)
    heartbeat: int = sweep.HEARTBEAT_S  # seconds between a running trial's heartbeats (RDB)
    save_every: int = 100  # optimiser steps between resumable training states
    control: str = ""  # --final --control NAME: the strategy's control, not the strategy
    precision: str = "fp32"  # --precision as resolved for this machine (lipo.devices)
    pruner: str = "median"  # --pruner: median, hyperband or none (sweep.make_pruner)
    warm_start: str = ""  # --warm-start STUDY: queue that study's best settings first

    def optuna_name_of(self, study: str) -> str:
        """The Optuna study of ``study`` on this backbone, split, data and head features."""
        backbone = Path(self.base.backbone).name or self.base.backbone
        name = f"{study}:{backbone}:{self.ws.split.name}:{self.ws.data_sha256[:8]}"
        return name + (f":+{self.base.head_features}" if self.base.head_features else "")

    @property
    def optuna_name(self) -> str:
        """One Optuna study per (study, backbone, split, data): mixing them would feed the
        sampler incomparable objectives."""
        name = self.optuna_name_of(self.study)
        if self.base.adapter != self.definition.ADAPTER:  # --adapter
            name += f":adapter={self.base.adapter}"
        return name if self.objectives == ("mse",) else f"{name}:{'+'.join(self.objectives)}"

    @property
    def control_knobs(self) -> dict:
        """The control's strategy.KNOB overrides (none without --control)."""
        return control_knobs(self.definition.STRATEGY, self.control) if self.control else {}

    @property
    def state_folder(self) -> Path:
        """This Optuna study's training states, under a name safe on any file system."""
        return STATE_ROOT / "".join(c if c.isalnum() or c in "-_." else "_"
                                    for c in self.optuna_name)

    def state_root(self, trial) -> Path:
        """Where a trial's training state lives; keyed by the trial's origin, so that its
        retry (same settings, new number) resumes it."""
        return self.state_folder / f"trial-{trial.user_attrs['lipo.origin']}"

    def final_state_root(self, trial_number: int, seed: int) -> Path:
        """Where a final seed's training state lives, so that a final phase stopped mid-seed
        resumes that seed instead of re-training it from its first batch."""
        return self.state_folder / f"final-{trial_number}-{self.control or 'strategy'}-seed{seed}"

    def tags(self, cfg: RunConfig) -> dict[str, str]:
        tags = {"lipo.study": self.study, "lipo.strategy": cfg.strategy,
                "lipo.adapter": cfg.adapter, "lipo.backbone": cfg.backbone,
                "lipo.phase": cfg.phase, "lipo.seed": cfg.seed, "lipo.split": self.ws.split.name,
                "lipo.split_sha256": self.ws.split.sha256, "lipo.optuna_study": self.optuna_name,
                **getattr(STRATEGIES.get(cfg.strategy), "TAGS", {})}  # what a strategy states
        tags["lipo.precision"] = self.precision
        return {**tags, "lipo.control": self.control} if self.control else tags


class Recorder:
    """Rank 0's side of a trial: the MLflow run, its epochs, artifacts and end state."""

    def __init__(self, inv: Invocation, tracker: Tracker, parent: str, cfg: RunConfig,
                 name: str, extra_tags: dict):
        self.inv, self.tracker, self.cfg = inv, tracker, cfg
        self.run_id = tracker.start_run(name, {**inv.tags(cfg), **extra_tags}, parent, cfg.flat())
        self.started = time.time()
        tracker.log_metrics(self.run_id, {"data/invalid_rows": len(inv.ws.mols.dropped)})

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step=step)

    def complete(self, run: TrialRun, result, extra_metrics: dict | None = None,
                 tables: dict | None = None) -> None:
        metrics = {**count_params(result.model), "best_epoch": result.best_epoch,
                   "wall_time_s": time.time() - self.started, **(extra_metrics or {})}
        self.tracker.log_metrics(self.run_id, metrics)
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(result.model, run.backbone, self.cfg, Path(tmp) / "checkpoint")
            for name, table in (tables or {}).items():
                table.to_csv(Path(tmp) / f"{name}.csv", index=False)
            (Path(tmp) / "config.json").write_text(self.cfg.to_json())
            self.tracker.log_artifacts(self.run_id, Path(tmp))
        for name, molecules in run.inputs.items():
            self.tracker.log_dataset(self.run_id, molecules, name)
        self.tracker.set_tags(self.run_id, {"lipo.state": "COMPLETE"})
        self.tracker.finish(self.run_id, "FINISHED")

    def end(self, state: str, reason: str, run: TrialRun) -> None:
        if run.param_counts:  # pruned and failed runs keep their parameter counts too
            self.tracker.log_metrics(self.run_id, run.param_counts)
        self.tracker.set_tags(self.run_id, {"lipo.state": state, "lipo.error": reason[:5000]})
        self.tracker.finish(self.run_id, "KILLED" if state == "PRUNED" else "FAILED")


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, LipoError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"


def search(inv: Invocation, accelerator: Accelerator) -> None:
    main = accelerator.is_main_process
    study = tracker = parent = bar = None
    startup = min(4, max(1, inv.trials // 3))
    if main:
        tracker = Tracker(inv.tracking_uri, inv.study)  # an unreachable server fails first
        study = sweep.open_study(inv.optuna_name, inv.storage, inv.base.seed, startup=startup,
                                 objectives=inv.objectives, heartbeat=inv.heartbeat,
                                 pruner=inv.pruner, epochs=inv.base.epochs)
        if inv.warm_start:
            queue_warm_start(inv, study)
        if len(inv.objectives) > 1:
            print(f"objectives {', '.join(inv.objectives)}: pruning is off (Optuna prunes "
                  "single-objective studies only); the Pareto front is kept")
        parent = tracker.start_run(f"{inv.study} search", {**inv.tags(inv.base)},
                                   params={"trials": inv.trials, "epochs": inv.base.epochs,
                                           "pruner": inv.pruner,
                                           "warm_start": inv.warm_start or "none"})
        done = sweep.trials_counted(study)
        bar = tqdm(total=inv.trials, initial=min(done, inv.trials), desc=f"{inv.study} trials",
                   unit="trial", position=0)
    fatal = None
    try:
        while True:
            trial = overrides = None
            if main and fatal is None:
                fail_lost_trials(tracker, sweep.recover_stale(study))
                trial, overrides = next_trial(inv, study, startup)
            overrides = sweep.broadcast(accelerator, overrides)
            if overrides is None:
                break
            fatal = one_trial(inv, accelerator, study, trial, tracker, parent, overrides)
            release(accelerator)  # the trial's model and optimiser, before the next trial
            if main:
                bar.update(0 if fatal else 1)
                bar.set_postfix_str(best_line(study))
    except KeyboardInterrupt:
        if main:
            tracker.finish(parent, "KILLED")
            bar.close()
        raise
    if main:
        bar.close()
        tracker.finish(parent, "FAILED" if fatal else "FINISHED")
        if fatal:
            raise LipoError(fatal)
        summarise_search(inv, study)


def queue_warm_start(inv: Invocation, study) -> None:
    queued = sweep.warm_start(study, inv.optuna_name_of(inv.warm_start), inv.storage,
                              inv.definition.space, inv.warm_start)
    if queued:
        print(f"warm start: the best settings of {inv.warm_start} queued first: "
              + ", ".join(f"{k}={v}" for k, v in queued.items()))


def fail_lost_trials(tracker: Tracker, trials) -> None:
    """Trials whose worker died: their MLflow runs end FAILED too, and the dead worker's
    parent run with them."""
    for trial in trials:
        run_id = trial.user_attrs.get("mlflow_run_id")
        reason = (f"worker {trial.user_attrs.get('lipo.worker', '?')} stopped during trial "
                  f"{trial.number} (killed or lost); re-queued with the same settings")
        tqdm.write(f"trial {trial.number}: {reason}")
        if run_id:
            tracker.fail_lost_run(run_id, reason)


def next_trial(inv: Invocation, study, startup: int) -> tuple:
    """(trial, its settings), or (None, None) when the study has its trials. Settings drawn
    before are not trained again: that draw is closed uncounted and the next one drawn at
    random, up to REDRAWS in a row (then the space counts as exhausted and the search ends)."""
    for redraw in range(REDRAWS):
        if sweep.trials_counted(study) >= inv.trials:
            return None, None
        trial = sweep.ask(study, inv.base.seed, startup, inv.trials, at_random=redraw > 0)
        if trial is None:
            return None, None
        overrides = propose(inv, trial)
        earlier = sweep.duplicate_of(study, trial, overrides)
        if earlier is None:
            return trial, overrides
        sweep.tell(study, trial, "FAIL", duplicate_of=earlier)
        tqdm.write(f"trial {trial.number}: the settings of trial {earlier} again, not re-trained; "
                   "drawing anew")
    tqdm.write(f"{REDRAWS} draws in a row repeated earlier settings: the search space looks "
               f"exhausted at {sweep.trials_counted(study)} trials")
    return None, None


def propose(inv: Invocation, trial) -> dict:
    overrides = {**getattr(inv.definition, "DEFAULTS", {}), **inv.definition.space(trial)}
    trial.set_user_attr("overrides", overrides)
    return overrides


def one_trial(inv: Invocation, accelerator, study, trial, tracker, parent,
              overrides) -> str | None:
    """Train and record one trial; returns (on rank 0) a reason to stop this worker, or None."""
    cfg = inv.base.with_overrides(overrides)
    main = accelerator.is_main_process
    recorder = None
    if main:
        recorder = Recorder(inv, tracker, parent, cfg, f"trial {trial.number}",
                            {"optuna.trial_number": trial.number})
        trial.set_user_attr("mlflow_run_id", recorder.run_id)
    state_root = sweep.broadcast(accelerator, inv.state_root(trial) if main else None)
    reporter = sweep.EpochReporter(accelerator, trial, recorder.log if main else None,
                                   prune=len(inv.objectives) == 1)
    run = TrialRun(cfg, inv.ws, accelerator, reporter, recorder.log if main else None,
                   state_root=state_root, save_every=inv.save_every)
    try:
        with sweep.heartbeat(study, trial) if main else contextlib.nullcontext():
            result = train_trial(run)
            _, val_table = run.evaluate(result.model, "val")  # every rank: the gather needs all
    except sweep.TrialPruned as exc:
        if main:
            recorder.end("PRUNED", str(exc), run)
            sweep.tell(study, trial, "PRUNED")
            tqdm.write(f"trial {trial.number}: {exc} (val/mse behind the median of earlier "
                       f"trials) in {time.time() - recorder.started:.0f} s")
        run.discard_state()
        return None
    except KeyboardInterrupt:
        if main:  # the saved training state stays: the re-queued trial resumes it
            recorder.end("FAIL", "interrupted by the user; re-queued for the next run", run)
            sweep.tell(study, trial, "FAIL", interrupted=True)
            sweep.requeue(study, trial)
        raise
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            return failed(study, trial, recorder, run, exc)
        return stop_on_full_disk(study, trial, recorder, run, error_line(exc)) if main else None
    except Exception as exc:  # a failing trial is recorded and the study goes on
        return failed(study, trial, recorder, run, exc)
    return record_complete(inv, study, trial, recorder, run, result, val_table) if main else None


def failed(study, trial, recorder, run, exc: Exception) -> None:
    if recorder is not None:
        reason = describe_error(exc)
        recorder.end("FAIL", reason, run)
        sweep.tell(study, trial, "FAIL", error=reason.splitlines()[0][:500])
        tqdm.write(f"trial {trial.number} failed: {reason.splitlines()[0]}")
    run.discard_state()


def record_complete(inv, study, trial, recorder, run, result, val_table) -> str | None:
    try:
        recorder.complete(run, result, tables={"predictions_val": val_table, **run.tables})
    except (ArtifactError, OSError) as exc:
        return stop_on_full_disk(study, trial, recorder, run, str(exc) if isinstance(
            exc, ArtifactError) else error_line(exc))
    values = {"mse": result.best["val/mse"], "params": run.param_counts["trainable_params"]}
    sweep.tell(study, trial, "COMPLETE", [values[k] for k in inv.objectives])
    run.discard_state()
    tqdm.write(f"trial {trial.number}: val/mse {result.best['val/mse']:.4f} "
               f"(epoch {result.best_epoch}) in {time.time() - recorder.started:.0f} s")
    return None


def stop_on_full_disk(study, trial, recorder, run, what: str) -> str:
    """A full disk fails every later trial too: stop this worker, keep what is recorded, and
    re-queue the trial (its training state is kept: the re-run resumes it)."""
    reason = (f"trial {trial.number}: {what}; the trial is marked FAIL and re-queued: free "
              "space, then re-run the same command")
    with contextlib.suppress(Exception):  # the tracking store may sit on the same disk
        recorder.end("FAIL", reason, run)
    sweep.tell(study, trial, "FAIL", interrupted=True, error=reason[:500])
    sweep.requeue(study, trial)
    return reason


def error_line(exc: OSError) -> str:
    return f"writing {exc.filename or 'a file'} failed: {exc.strerror or exc}"


def best_line(study) -> str:
    best = sweep.best_trial(study)
    return (f"best val/mse {best.values[0]:.4f} (trial {best.number})" if best
            else "no trial completed")


def summarise_search(inv: Invocation, study) -> None:
    best = sweep.best_trial(study)
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states)))
    print(f"study {inv.optuna_name}: {len(states)} trials ({counts})")
    if best is not None:
        print(f"best val/mse {best.values[0]:.4f} from trial {best.number}: {best.params}")
    if len(inv.objectives) > 1:
        for trial in sweep.pareto_front(study):
            print(f"  Pareto front: trial {trial.number}: val/mse {trial.values[0]:.4f}, "
                  f"{int(trial.values[1])} trainable params")
        print(f"next: python launch.py --study {inv.study} --final --seeds 0,1,2")
