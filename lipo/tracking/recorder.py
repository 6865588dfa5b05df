"""Rank 0's record of one training run (a search trial or a final seed) in MLflow: the run,
its epochs, its artifacts and how it ended; and the per-epoch hook every rank runs."""

from __future__ import annotations

import contextlib
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

from lipo.config import RunConfig
from lipo.data.splits import PARTS
from lipo.errors import LipoError, TrialPruned
from lipo.models.checkpoint import save_checkpoint
from lipo.runtime.distributed import broadcast
from lipo.tracking import schema
from lipo.tracking.store import Tracker
from lipo.training.trial_run import TrialRun, count_params


class Recorder:
    """Rank 0's side of a run: the MLflow run, its epochs, artifacts and end state."""

    def __init__(
        self,
        inv,
        tracker: Tracker,
        parent: str,
        cfg: RunConfig,
        name: str,
        extra_tags: dict,
        split=None,
    ):
        """``split``: the split the run trains on, where it is not the search's (a refit's)."""
        self.inv, self.tracker, self.cfg = inv, tracker, cfg
        self.split = split if split is not None else inv.ws.split
        self.run_id = tracker.start_run(
            name, {**inv.tags(cfg), **extra_tags}, parent, cfg.flat(), system_metrics=True
        )
        self.started = time.time()
        try:
            self.describe_data()
        except BaseException as exc:
            # The run exists: left RUNNING, the UI would show a trial training forever.
            with contextlib.suppress(Exception):  # a store that refused this may refuse more
                self.end("FAIL", describe_error(exc))
            raise

    def describe_data(self) -> None:
        inv, cfg = self.inv, self.cfg
        self.tracker.log_metrics(self.run_id, {"data/invalid_rows": len(inv.ws.mols.dropped)})
        # What it trains and is scored on; a search trial never sees the test part.
        split = self.split
        parts = ("train", "val") if cfg.phase == "search" else PARTS
        self.tracker.log_data_inputs(
            self.run_id,
            inv.ws.mols.source,
            inv.ws.data_sha256,
            split.name,
            split.sha256,
            {part: len(split.part(part)) for part in parts},
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step=step)

    def complete(
        self, run: TrialRun, result, extra_metrics: dict | None = None, tables: dict | None = None
    ) -> None:
        metrics = {
            **count_params(result.model),
            "best_epoch": result.best_epoch,
            # a refit trained on its validation molecules: their scores chose nothing
            **(best_val_metrics(result.best) if self.cfg.phase != "refit" else {}),
            "wall_time_s": time.time() - self.started,
            **result.seconds,
            **(extra_metrics or {}),
        }
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

    def end(self, state: str, reason: str, run: TrialRun | None = None) -> None:
        if run is not None and run.param_counts:  # pruned and failed runs keep them too
            self.tracker.log_metrics(self.run_id, run.param_counts)
        self.tracker.set_tags(self.run_id, {"lipo.state": state, "lipo.error": reason[:5000]})
        self.tracker.finish(self.run_id, "KILLED" if state == "PRUNED" else "FAILED")


def best_val_metrics(best: dict[str, float]) -> dict[str, float]:
    """The best epoch's val/<m> as best/val_<m>: the figure that chose the run's weights, one
    column in the MLflow UI (val/<m>'s latest value is the last epoch's)."""
    return {f"best/val_{m}": best[f"val/{m}"] for m in schema.REGRESSION if f"val/{m}" in best}


# should_stop(epoch, val_mse) -> True to stop the run: the search's pruner, on rank 0
StopRule = Callable[[int, float], bool]


class EpochReporter:
    """Per-epoch hook: rank 0 logs and asks the pruner, every rank learns the decision."""

    def __init__(self, accelerator, should_stop: StopRule | None, log):
        """``log(metrics, step)``: rank 0's MLflow logger (None on other ranks)."""
        self.accelerator, self.should_stop, self.log = accelerator, should_stop, log

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        stop = False
        if self.accelerator.is_main_process:
            self.log(metrics, epoch)
            if self.should_stop is not None:
                stop = self.should_stop(epoch, metrics["val/mse"])
        if broadcast(self.accelerator, stop):
            raise TrialPruned(f"pruned after epoch {epoch}")


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, LipoError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
