"""MLflow, and the only module that imports it.

Schema (ARCHITECTURE.md): one experiment per study, one parent run per invocation, one nested run
per trial with the ``lipo.*`` tags; per-epoch metrics use step = epoch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.data
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from lipo.errors import ArtifactError, LipoError, TrackingUnreachable
from lipo.runtime.locks import sqlite_file, store_lock
from lipo.tracking.schema import DEFAULT_TRACKING_URI, current_names

ARTIFACT_ROOT = Path("mlruns") / "artifacts"
# A unique key taken by a concurrent insert, as PostgreSQL, SQLite and MySQL word it.
DUPLICATE_KEY = re.compile(r"UniqueViolation|UNIQUE constraint failed|Duplicate entry")
PARAM_LIMIT = 6000  # MLflow rejects longer param values

# MLflow announces every schema migration at INFO, and every finished run's URL on an HTTP
# server; a study's output should be its trials.
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


# MLflow 3's UI opens an experiment by its kind; untagged ones it may guess to be GenAI
# and open on the traces overview. This tag makes it open on the runs table ("Machine
# learning"); the key and value are those of MLflow 3's UI (mlflow/server/js).
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_TAG = (EXPERIMENT_KIND, "custom_model_development")
# Seconds between samples of a run's system metrics (CPU, memory, disk, network; the GPU with
# nvidia-ml-py installed): a sample costs one run lookup, a logged one a batch of ~10 metrics.
# 0 turns them off (the test suite does: its runs last seconds).
SYSTEM_METRICS_S = "LIPO_SYSTEM_METRICS"


def open_client(uri: str) -> MlflowClient:
    """A client on ``uri``. The first client creates (and migrates) a SQLite store: under
    ``store_lock`` a launch started at the same time waits for it, then finds it whole. A store
    that still fails to open was left half-created, by an older lipo or a kill meanwhile."""
    path = sqlite_file(uri)
    try:
        with store_lock(path):
            return MlflowClient(tracking_uri=uri)
    except (MlflowException, SQLAlchemyError) as exc:
        if path is None:
            raise
        raise LipoError(unopenable_store(path, str(exc))) from None


def unopenable_store(path: Path, error: str) -> str:
    """One line: what is wrong with a SQLite store MLflow cannot open, and how to recover."""
    reason = error.splitlines()[0].removeprefix("(sqlite3.OperationalError) ").split(". ")[0]
    older = re.search(r"found version (\w+)", reason)
    if older and older.group(1) != "None":  # whole, from an older MLflow: keep its runs
        return (
            f"the MLflow store {path} has an older MLflow's schema ({older.group(1)}): "
            f"back it up, then run 'mlflow db upgrade sqlite:///{path}'"
        )
    return (
        f"the MLflow store {path} cannot be opened ({reason}): it was left half-created "
        "(launches started together by an older lipo, or a kill while it was created); "
        f"move it away (mv {path} {path}.broken) and start again"
    )


def now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """Thin wrapper over ``MlflowClient`` for one experiment (one study)."""

    def __init__(self, uri: str, experiment: str):
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        check_reachable(uri)
        self.client = open_client(uri)
        self.monitors: dict[str, Any] = {}  # run id -> its system metrics thread
        self.experiment_name = experiment
        try:
            self.experiment_id = self._experiment(experiment)
        except MlflowException as exc:
            raise LipoError(
                f"MLflow tracking at {uri} is not usable: {str(exc).splitlines()[0]}"
            ) from None

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if EXPERIMENT_KIND not in found.tags:  # created by an earlier lipo
                self.client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND_TAG)
            return found.experiment_id
        # MLflow 3 wants an absolute artifact location next to a database store.
        location = None
        if not self.uri.startswith(("http://", "https://", "databricks")):
            location = (ARTIFACT_ROOT.resolve()).as_uri()
        try:
            return self.client.create_experiment(
                name, artifact_location=location, tags=dict([EXPERIMENT_KIND_TAG])
            )
        except MlflowException:  # another worker created it first
            return self.client.get_experiment_by_name(name).experiment_id

    def start_run(
        self,
        name: str,
        tags: dict[str, Any],
        parent: str | None = None,
        params: dict[str, Any] | None = None,
        system_metrics: bool = False,
    ) -> str:
        """``system_metrics``: sample the machine's load into the run until ``finish``."""
        tags = {k: str(v) for k, v in tags.items()}
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        if params:
            self.log_params(run.info.run_id, params)
        if system_metrics:
            self.watch_system(run.info.run_id)
        return run.info.run_id

    def watch_system(self, run_id: str) -> None:
        seconds = float(os.environ.get(SYSTEM_METRICS_S, "10"))
        if seconds <= 0:
            return
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(run_id, sampling_interval=seconds, tracking_uri=self.uri)
        monitor.start()
        self.monitors[run_id] = monitor

    def log_data_inputs(
        self,
        run_id: str,
        data: str,
        data_sha256: str,
        split: str,
        split_sha256: str,
        sizes: dict[str, int],
    ) -> None:
        """The data file and split parts a run trained and was scored on, as MLflow dataset
        inputs: the runs table's Dataset column shows ``<file>:<split>:<part>`` with the
        file's content digest, and the part (train, val, test) as its context."""
        inputs = []
        for part, rows in sizes.items():
            profile = {
                "num_rows": rows,
                "data_sha256": data_sha256,
                "split": split,
                "split_sha256": split_sha256,
            }
            dataset = Dataset(
                name=f"{Path(data).name}:{split}:{part}",
                digest=data_sha256[:12],
                source_type="local",
                source=json.dumps({"uri": data}),
                profile=json.dumps(profile),
            )
            inputs.append(DatasetInput(dataset, [InputTag("mlflow.data.context", part)]))
        self.log_inputs(run_id, inputs)

    def log_dataset(self, run_id: str, frame, name: str, context: str = "training") -> None:
        """Molecules a trial trained on beyond its split (influence-selected, actively
        acquired) as an MLflow dataset input: the run page lists its digest and row count,
        and runs that trained on the same molecules share the digest."""
        dataset = mlflow.data.from_pandas(frame, name=name)
        tag = InputTag(key="mlflow.data.context", value=context)
        self.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), [tag])])

    def log_inputs(self, run_id: str, inputs: list[DatasetInput], tries: int = 4) -> None:
        """MLflow adds a dataset to the experiment with the first run that logs it: it looks
        the dataset up, then inserts it, in one transaction. Workers whose trials start
        together all miss it, all insert it, and all but one fail on its unique key (their
        transaction rolled back, nothing written): each of those finds it on a second try."""
        for attempt in range(tries):
            try:
                self.client.log_inputs(run_id, datasets=inputs)
                return
            except MlflowException as exc:
                if attempt == tries - 1 or not DUPLICATE_KEY.search(str(exc)):
                    raise
                time.sleep(0.1 * (attempt + 1))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = [Param(k, str(v)[:PARAM_LIMIT]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        stamp = now_ms()
        self.client.log_batch(
            run_id, metrics=[Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        )

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        try:
            self.client.log_artifacts(run_id, str(folder), artifact_path)
        except OSError as exc:
            where = exc.filename or self.artifact_uri(run_id)
            raise ArtifactError(
                f"writing artifacts of run {run_id} to {where} failed: {exc.strerror or exc}"
            ) from None
        except MlflowException as exc:
            raise ArtifactError(
                f"writing artifacts of run {run_id} to "
                f"{self.artifact_uri(run_id)} failed: "
                f"{str(exc).splitlines()[0]}"
            ) from None

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        """status: FINISHED, FAILED or KILLED (pruned)."""
        monitor = self.monitors.pop(run_id, None)
        if monitor is not None:
            monitor.finish()  # stops at once, and logs what it still holds
        self.client.set_terminated(run_id, status)

    def runs_view(self) -> str:
        """Where to look at this study's runs. MLflow 3's UI may open an experiment on its
        GenAI overview (traces, token usage) whatever its kind tag: this is the runs table."""
        page = f"#/experiments/{self.experiment_id}/runs"
        if self.uri.startswith(("http://", "https://")):
            return f"runs: {self.uri.rstrip('/')}/{page}"
        return (
            f"runs: mlflow ui --backend-store-uri {self.uri}, then open "
            f"http://127.0.0.1:5000/{page}"
        )

    def fail_lost_run(self, run_id: str, reason: str) -> None:
        """A run whose worker died: FAILED with the reason, and its parent run too."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return  # the worker died before MLflow knew the run
        self.set_tags(run_id, {"lipo.state": "FAIL", "lipo.error": reason})
        if run.info.status not in ("FAILED", "KILLED"):
            self.finish(run_id, "FAILED")
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent and self.client.get_run(parent).info.status == "RUNNING":
            self.set_tags(parent, {"lipo.error": f"worker lost: {reason}"})
            self.finish(parent, "FAILED")

    def runs(self, filter_string: str) -> list[RunRecord]:
        """This study's runs that match ``filter_string`` (MLflow's search syntax)."""
        found = self.client.search_runs([self.experiment_id], filter_string, max_results=5000)
        return [record_of(r, self.experiment_name) for r in found]

    def run(self, run_id: str) -> RunRecord:
        return record_of(self.client.get_run(run_id), self.experiment_name)

    def metric_history(self, run_id: str, key: str) -> list[float]:
        return [
            m.value
            for m in sorted(self.client.get_metric_history(run_id, key), key=lambda m: m.step)
        ]

    def artifact_uri(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.artifact_uri

    def download(self, run_id: str, path: str, dst: Path) -> Path:
        return Path(self.client.download_artifacts(run_id, path, str(dst)))

    def register_model(
        self, name: str, run_id: str, path: str, description: str, alias: str | None = None
    ) -> str:
        """A new version of registered model ``name`` from a run's logged model; its version.
        ``alias`` (e.g. champion) moves to the new version."""
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise LipoError(f"--register {name}: {str(exc).splitlines()[0]}") from None
        version = self.client.create_model_version(
            name, f"runs:/{run_id}/{path}", run_id=run_id, description=description
        )
        if alias:
            self.client.set_registered_model_alias(name, alias, version.version)
        return version.version


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """An HTTP tracking server that does not answer fails at once, before any training:
    MlflowClient alone would retry for minutes, then fail after the first trial trained."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answers (a proxy may not route /health)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnreachable(
            f"--tracking-uri {uri}: the MLflow server does not answer "
            f"({reason}); start it (mlflow server --host 127.0.0.1 ...) "
            "or drop --tracking-uri to track into "
            f"{DEFAULT_TRACKING_URI}"
        ) from None


def download_artifacts(uri: str, run_id: str, path: str, dst: Path) -> Path:
    """One run's artifact folder, by run id alone (no experiment needed)."""
    client = open_client(uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise LipoError(f"no MLflow run {run_id!r} at {uri}") from None
    try:
        return Path(client.download_artifacts(run_id, path, str(dst)))
    except (MlflowException, OSError):
        raise LipoError(
            f"run {run_id} has no '{path}' artifact (a failed or pruned trial keeps none)"
        ) from None


@dataclass(frozen=True)
class RunRecord:
    """One MLflow run as plain data: what code outside this module reads of a run."""

    run_id: str
    experiment: str
    name: str
    status: str
    start_time: int  # ms since the epoch
    tags: dict
    params: dict
    metrics: dict  # latest value of each metric


def record_of(run, experiment: str) -> RunRecord:
    return RunRecord(
        run.info.run_id,
        experiment,
        run.info.run_name or "",
        run.info.status,
        run.info.start_time or 0,
        current_names(run.data.tags),
        dict(run.data.params),
        dict(run.data.metrics),
    )
