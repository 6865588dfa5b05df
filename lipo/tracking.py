"""MLflow, and the only module that imports it.

Schema (DESIGN.md): one experiment per study, one parent run per invocation, one nested run
per trial with the ``lipo.*`` tags; per-epoch metrics use step = epoch.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from lipo.errors import LipoError

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
ARTIFACT_ROOT = Path("mlruns") / "artifacts"
PARAM_LIMIT = 6000  # MLflow rejects longer param values

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

# MLflow announces every schema migration at INFO; a study's output should be its trials.
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """Thin wrapper over ``MlflowClient`` for one experiment (one study)."""

    def __init__(self, uri: str, experiment: str):
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        try:
            self.experiment_id = self._experiment(experiment)
        except MlflowException as exc:
            raise LipoError(f"MLflow tracking at {uri} is not usable: "
                            f"{str(exc).splitlines()[0]}") from None

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        # MLflow 3 wants an absolute artifact location next to a database store.
        location = None
        if not self.uri.startswith(("http://", "https://", "databricks")):
            location = (ARTIFACT_ROOT.resolve()).as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:  # another worker created it first
            return self.client.get_experiment_by_name(name).experiment_id

    def start_run(self, name: str, tags: dict[str, Any], parent: str | None = None,
                  params: dict[str, Any] | None = None) -> str:
        tags = {k: str(v) for k, v in tags.items()}
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        if params:
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = [Param(k, str(v)[:PARAM_LIMIT]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=items[i:i + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        stamp = now_ms()
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), stamp, step)
                                               for k, v in metrics.items()])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        """status: FINISHED, FAILED or KILLED (pruned)."""
        self.client.set_terminated(run_id, status)

    def runs(self, filter_string: str) -> list:
        return list(self.client.search_runs([self.experiment_id], filter_string,
                                            max_results=5000))

    def metric_history(self, run_id: str, key: str) -> list[float]:
        return [m.value for m in sorted(self.client.get_metric_history(run_id, key),
                                        key=lambda m: m.step)]

    def artifact_uri(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.artifact_uri

    def download(self, run_id: str, path: str, dst: Path) -> Path:
        return Path(self.client.download_artifacts(run_id, path, str(dst)))


def download_artifacts(uri: str, run_id: str, path: str, dst: Path) -> Path:
    """One run's artifact folder, by run id alone (no experiment needed)."""
    client = MlflowClient(tracking_uri=uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise LipoError(f"no MLflow run {run_id!r} at {uri}") from None
    try:
        return Path(client.download_artifacts(run_id, path, str(dst)))
    except (MlflowException, OSError):
        raise LipoError(f"run {run_id} has no '{path}' artifact (a failed or pruned trial "
                        "keeps none)") from None
