"""The search: the book draws a trial, every rank trains it, rank 0 records it in MLflow and
tells the book how it ended; until the study has its trials.

Every side effect (Optuna, MLflow, files, printing) sits behind ``is_main_process``.
"""

from __future__ import annotations

import contextlib
import errno
import time

from accelerate import Accelerator
from tqdm.auto import tqdm

from lipo.errors import ArtifactError, LipoError, TrialPruned
from lipo.invocation import Invocation
from lipo.runtime.devices import release
from lipo.runtime.distributed import broadcast
from lipo.search.book import TrialBook, TrialRecord
from lipo.tracking.recorder import EpochReporter, Recorder, describe_error
from lipo.tracking.store import Tracker
from lipo.training.trial_run import TrialRun, train_trial

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def open_book(inv: Invocation, startup: int) -> TrialBook:
    return TrialBook.open(
        inv.optuna_name,
        inv.storage,
        inv.base.seed,
        startup=startup,
        objectives=inv.objectives,
        heartbeat=inv.heartbeat,
        pruner=inv.pruner,
        epochs=inv.base.epochs,
        first=first_trial(inv) or None,
    )


def search(inv: Invocation, accelerator: Accelerator) -> None:
    main = accelerator.is_main_process
    book = tracker = parent = bar = None
    startup = min(4, max(1, inv.trials // 3))
    if main:
        tracker = Tracker(inv.tracking_uri, inv.study)  # an unreachable server fails first
        book = open_book(inv, startup)
        announce_first_trial(inv, book)
        if inv.warm_start:
            queue_warm_start(inv, book)
        if len(inv.objectives) > 1:
            print(
                f"objectives {', '.join(inv.objectives)}: pruning is off (Optuna prunes "
                "single-objective studies only); the Pareto front is kept"
            )
        parent = start_parent(inv, tracker)
        bar = tqdm(
            total=inv.trials,
            initial=min(book.counted(), inv.trials),
            desc=f"{inv.study} trials",
            unit="trial",
            position=0,
        )
    fatal = None
    try:
        while True:
            record = None
            if main and fatal is None:
                fail_lost_trials(tracker, book.recover_lost())
                record = book.draw(
                    inv.definition.space, getattr(inv.definition, "DEFAULTS", {}), inv.trials
                )
            record = broadcast(accelerator, record)
            if record is None:
                break
            fatal = one_trial(inv, accelerator, book, record, tracker, parent)
            release(accelerator)  # the trial's model and optimiser, before the next trial
            if main:
                bar.update(0 if fatal else 1)
                bar.set_postfix_str(best_line(book))
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
        summarise_search(inv, book)
        print(tracker.runs_view())


def start_parent(inv: Invocation, tracker: Tracker) -> str:
    return tracker.start_run(
        f"{inv.study} search",
        {**inv.tags(inv.base)},
        params={
            "trials": inv.trials,
            "epochs": inv.base.epochs,
            "pruner": inv.pruner,
            "warm_start": inv.warm_start or "none",
            "first_trial": first_trial_line(inv) or "none",
        },
    )


def first_trial(inv: Invocation) -> dict:
    """The study file's FIRST_TRIAL, unless --warm-start names the first trial in its place."""
    return {} if inv.warm_start else getattr(inv.definition, "FIRST_TRIAL", None) or {}


def first_trial_line(inv: Invocation) -> str:
    return ", ".join(f"{k}={v}" for k, v in first_trial(inv).items())


def announce_first_trial(inv: Invocation, book: TrialBook) -> None:
    if first_trial_line(inv) and book.counted() == 0:
        print(f"trial 0 trains the study file's FIRST_TRIAL: {first_trial_line(inv)}")


def queue_warm_start(inv: Invocation, book: TrialBook) -> None:
    queued = book.warm_start(
        inv.optuna_name_of(inv.warm_start), inv.storage, inv.definition.space, inv.warm_start
    )
    if queued:
        print(
            f"warm start: the best settings of {inv.warm_start} queued first: "
            + ", ".join(f"{k}={v}" for k, v in queued.items())
        )


def fail_lost_trials(tracker: Tracker, records: list[TrialRecord]) -> None:
    """Trials whose worker died: their MLflow runs end FAILED too, and the dead worker's
    parent run with them."""
    for record in records:
        reason = (
            f"worker {record.worker or '?'} stopped during trial {record.number} "
            "(killed or lost); re-queued with the same settings"
        )
        tqdm.write(f"trial {record.number}: {reason}")
        if record.run_id:
            tracker.fail_lost_run(record.run_id, reason)


class TrialEnd:
    """How a trial ended, told to the book and to MLflow (rank 0 only: ``recorder`` is None
    on other ranks, and so is ``book``)."""

    def __init__(
        self, book: TrialBook | None, record: TrialRecord, recorder: Recorder | None, run: TrialRun
    ):
        self.book, self.record, self.recorder, self.run = book, record, recorder, run

    def pruned(self, reason: str) -> None:
        if self.recorder is not None:
            self.recorder.end("PRUNED", reason, self.run)
            self.book.prune(self.record)
            tqdm.write(
                f"trial {self.record.number}: {reason} (val/mse behind the median of "
                f"earlier trials) in {time.time() - self.recorder.started:.0f} s"
            )
        self.run.discard_state()

    def interrupted(self) -> None:
        """The saved training state stays: the re-queued trial resumes it."""
        if self.recorder is not None:
            self.recorder.end(
                "FAIL", "interrupted by the user; re-queued for the next run", self.run
            )
            self.book.interrupt(self.record)

    def failed(self, exc: Exception) -> None:
        if self.recorder is not None:
            reason = describe_error(exc)
            self.recorder.end("FAIL", reason, self.run)
            self.book.fail(self.record, reason.splitlines()[0])
            tqdm.write(f"trial {self.record.number} failed: {reason.splitlines()[0]}")
        self.run.discard_state()

    def disk_full(self, what: str) -> str:
        """A full disk fails every later trial too: stop this worker, keep what is recorded,
        and re-queue the trial (its training state is kept: the re-run resumes it)."""
        reason = (
            f"trial {self.record.number}: {what}; the trial is marked FAIL and "
            "re-queued: free space, then re-run the same command"
        )
        with contextlib.suppress(Exception):  # the tracking store may sit on the same disk
            self.recorder.end("FAIL", reason, self.run)
        self.book.interrupt(self.record, reason)
        return reason


def one_trial(
    inv: Invocation, accelerator, book: TrialBook | None, record: TrialRecord, tracker, parent
) -> str | None:
    """Train and record one trial; returns (on rank 0) a reason to stop this worker, or None."""
    cfg = inv.base.with_overrides(record.settings)
    main = accelerator.is_main_process
    recorder = None
    if main:
        recorder = Recorder(
            inv,
            tracker,
            parent,
            cfg,
            f"trial {record.number}",
            {"optuna.trial_number": record.number},
        )
        book.link_run(record, recorder.run_id)
    pruner = (
        (lambda epoch, mse: book.report(record, epoch, mse))
        if main and len(inv.objectives) == 1
        else None
    )
    reporter = EpochReporter(accelerator, pruner, recorder.log if main else None)
    run = TrialRun(
        cfg,
        inv.ws,
        accelerator,
        reporter,
        recorder.log if main else None,
        state_root=inv.state_root(record),
        save_every=inv.save_every,
    )
    end = TrialEnd(book, record, recorder, run)
    try:
        with book.heartbeat(record) if main else contextlib.nullcontext():
            result = train_trial(run)
            val_table = run.val_table(result)  # every rank: a resumed fit's gathers
    except TrialPruned as exc:
        return end.pruned(str(exc))
    except KeyboardInterrupt:
        end.interrupted()
        raise
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            return end.failed(exc)
        return end.disk_full(error_line(exc)) if main else None
    except Exception as exc:  # a failing trial is recorded and the study goes on
        return end.failed(exc)
    return record_complete(inv, end, result, val_table) if main else None


def record_complete(inv: Invocation, end: TrialEnd, result, val_table) -> str | None:
    run = end.run
    try:
        end.recorder.complete(run, result, tables={"predictions_val": val_table, **run.tables})
    except (ArtifactError, OSError) as exc:
        return end.disk_full(str(exc) if isinstance(exc, ArtifactError) else error_line(exc))
    values = {"mse": result.best["val/mse"], "params": run.param_counts["trainable_params"]}
    end.book.complete(end.record, [values[k] for k in inv.objectives])
    run.discard_state()
    tqdm.write(
        f"trial {end.record.number}: val/mse {result.best['val/mse']:.4f} "
        f"(epoch {result.best_epoch}) in {time.time() - end.recorder.started:.0f} s"
    )
    return None


def error_line(exc: OSError) -> str:
    return f"writing {exc.filename or 'a file'} failed: {exc.strerror or exc}"


def best_line(book: TrialBook) -> str:
    best = book.best()
    return (
        f"best val/mse {best.values[0]:.4f} (trial {best.number})" if best else "no trial completed"
    )


def summarise_search(inv: Invocation, book: TrialBook) -> None:
    best = book.best()
    states = book.states()
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states)))
    print(f"study {inv.optuna_name}: {len(states)} trials ({counts})")
    if best is not None:
        print(f"best val/mse {best.values[0]:.4f} from trial {best.number}: {best.params}")
    if len(inv.objectives) > 1:
        for record in book.pareto_front():
            print(
                f"  Pareto front: trial {record.number}: val/mse {record.values[0]:.4f}, "
                f"{int(record.values[1])} trainable params"
            )
        print(f"next: python launch.py --study {inv.study} --final --seeds 0,1,2")
