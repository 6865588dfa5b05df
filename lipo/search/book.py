"""``TrialBook``: one object owns the life of a search's trials. It hands out plain
``TrialRecord``s and takes back how each ended; the Optuna study stays inside."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tqdm.auto import tqdm

from lipo.errors import ConfigError
from lipo.search import trials as optuna_trials
from lipo.search.space import Knobs, space_of
from lipo.search.storage import HEARTBEAT_S, load_existing, open_study

REDRAWS = 20  # draws of already-tried settings in a row before the space counts as exhausted


@dataclass(frozen=True)
class TrialRecord:
    """One trial as plain data: what the loop, the final phase and the tracking need."""

    number: int
    origin: int  # the first attempt's number: a retry resumes that attempt's training state
    settings: dict  # the run's overrides: the study's DEFAULTS and the knobs drawn
    params: dict  # the knobs as drawn (what --warm-start and the report compare)
    state: str = "RUNNING"  # RUNNING, COMPLETE, PRUNED, FAIL or WAITING
    values: tuple = ()  # the objectives' values of a completed trial
    worker: str = ""  # host:pid:start of the worker that ran it
    run_id: str = ""  # its MLflow run


def record_of(trial) -> TrialRecord:
    attrs = trial.user_attrs
    state = getattr(trial, "state", None)
    return TrialRecord(
        number=trial.number,
        origin=attrs.get("lipo.origin", trial.number),
        settings=attrs.get("overrides", trial.params),
        params=dict(trial.params),
        state=state.name if state is not None else "RUNNING",
        values=tuple(getattr(trial, "values", None) or ()),
        worker=attrs.get("lipo.worker", ""),
        run_id=attrs.get("mlflow_run_id", ""),
    )


class TrialBook:
    """A study's trials: drawn, reported epoch by epoch, ended, re-queued, recovered."""

    def __init__(self, study, seed: int = 0, startup: int = 1):
        self.study, self.seed, self.startup = study, seed, startup
        self._live: dict[int, Any] = {}  # number -> the Optuna trial this process runs

    @classmethod
    def open(
        cls,
        name: str,
        storage_url: str | None,
        seed: int,
        startup: int,
        objectives: tuple[str, ...] = ("mse",),
        heartbeat: int = HEARTBEAT_S,
        pruner: str = "median",
        epochs: int = 6,
        first: dict | None = None,
    ) -> "TrialBook":
        return cls(
            open_study(
                name, storage_url, seed, startup, objectives, heartbeat, pruner, epochs, first
            ),
            seed,
            startup,
        )

    @classmethod
    def load(cls, name: str, storage_url: str | None) -> "TrialBook | None":
        """The existing study ``name``, or None when the storage has none by that name."""
        try:
            return cls(load_existing(name, storage_url))
        except KeyError:
            return None

    def counted(self) -> int:
        """Trials that count towards --trials (see ``trials.counted``)."""
        return optuna_trials.trials_counted(self.study)

    def draw(self, space: Callable[[Any], dict], defaults: dict, total: int) -> TrialRecord | None:
        """The next trial and its settings, or None when the study has its ``total``. Settings
        tried before are not trained again: they are redrawn before the trial is asked for
        (``trials.untried_params``), up to REDRAWS in a row (then the space counts as
        exhausted). Another worker may start the same settings between that draw and the ask:
        that trial is closed uncounted (``duplicate_of``) and the draw made again."""

        def settings_of(trial) -> dict:
            return {**defaults, **space(Knobs(trial))}

        for _ in range(REDRAWS):
            if self.counted() >= total:
                return None
            fixed = None
            if not optuna_trials.has_queued(self.study):
                fixed = optuna_trials.untried_params(
                    self.study, self.seed, self.startup, settings_of, REDRAWS
                )
                if fixed is None:
                    break
            trial = optuna_trials.ask(self.study, self.seed, self.startup, total, fixed=fixed)
            if trial is None:
                return None
            settings = settings_of(trial)
            trial.set_user_attr("overrides", settings)
            earlier = optuna_trials.duplicate_of(self.study, trial, settings)
            if earlier is None:
                self._live[trial.number] = trial
                return record_of(trial)
            optuna_trials.tell(self.study, trial, "FAIL", duplicate_of=earlier)
            tqdm.write(
                f"trial {trial.number}: another worker started the settings of trial "
                f"{earlier} meanwhile; drawing anew"
            )
        tqdm.write(
            f"{REDRAWS} draws in a row repeated earlier settings: the search space looks "
            f"exhausted at {self.counted()} trials"
        )
        return None

    def link_run(self, record: TrialRecord, run_id: str) -> None:
        """The trial's MLflow run, so a worker that finds it lost can fail that run too."""
        self._live[record.number].set_user_attr("mlflow_run_id", run_id)

    def report(self, record: TrialRecord, epoch: int, value: float) -> bool:
        """Record an epoch's validation MSE; True when the pruner stops the trial."""
        trial = self._live[record.number]
        trial.report(value, epoch)
        return trial.should_prune()

    def heartbeat(self, record: TrialRecord):
        """Context manager: a thread records the trial's heartbeat (RDB storages only)."""
        return optuna_trials.heartbeat(self.study, self._live[record.number])

    def complete(self, record: TrialRecord, values: list[float]) -> None:
        optuna_trials.tell(self.study, self._live.pop(record.number), "COMPLETE", values)

    def prune(self, record: TrialRecord) -> None:
        optuna_trials.tell(self.study, self._live.pop(record.number), "PRUNED")

    def fail(self, record: TrialRecord, error: str) -> None:
        optuna_trials.tell(self.study, self._live.pop(record.number), "FAIL", error=error[:500])

    def interrupt(self, record: TrialRecord, error: str | None = None) -> None:
        """Stopped from outside (Ctrl-C, a full disk): failed uncounted and queued again with
        the same settings, so the re-run resumes its training state."""
        trial = self._live.pop(record.number)
        attrs = {"error": error[:500]} if error else {}
        optuna_trials.tell(self.study, trial, "FAIL", interrupted=True, **attrs)
        optuna_trials.requeue(self.study, trial)

    def recover_lost(self) -> list[TrialRecord]:
        """Trials whose worker died, failed and queued again; each returned once."""
        return [record_of(t) for t in optuna_trials.recover_stale(self.study)]

    def best(self) -> TrialRecord | None:
        best = optuna_trials.best_trial(self.study)
        return record_of(best) if best is not None else None

    def pareto_front(self) -> list[TrialRecord]:
        return [record_of(t) for t in optuna_trials.pareto_front(self.study)]

    def states(self) -> list[str]:
        return [t.state.name for t in self.study.get_trials(deepcopy=False)]

    def trials(self) -> list[TrialRecord]:
        return [record_of(t) for t in self.study.get_trials(deepcopy=False)]

    def warm_start(
        self, source_name: str, storage_url: str | None, space: Callable[[Any], dict], source: str
    ) -> dict:
        """Queue the best settings of the finished study ``source_name`` as this study's next
        trial, once: only the knobs this study's space also has, with values inside its
        ranges. Returns the settings queued ({} when an earlier run of this study queued them)."""
        if any(
            t.user_attrs.get("lipo.warm_start") == source
            for t in self.study.get_trials(deepcopy=False)
        ):
            return {}
        found = TrialBook.load(source_name, storage_url)
        best = found.best() if found is not None else None
        if best is None:
            raise ConfigError(
                f"--warm-start {source}: no completed trial in Optuna study "
                f"{source_name} (same backbone, split and data): run that "
                "study first"
            )
        knobs = space_of(space)
        params = {k: v for k, v in best.params.items() if k in knobs and knobs[k](v)}
        if not params:
            raise ConfigError(
                f"--warm-start {source}: none of its best settings "
                f"({', '.join(best.params)}) is a knob of this study "
                f"({', '.join(knobs)})"
            )
        self.study.enqueue_trial(params, user_attrs={"lipo.warm_start": source})
        return params
