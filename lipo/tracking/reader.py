"""Read-only queries over every experiment of one tracking server: what the report and
``predict --final`` read of the store."""

from __future__ import annotations

import os
from pathlib import Path

from mlflow.exceptions import MlflowException

from lipo.errors import LipoError
from lipo.tracking.store import RunRecord, open_client, record_of


class StoreReader:
    """Read-only queries over every experiment of one tracking server."""

    def __init__(self, uri: str):
        self.uri = uri
        self.client = open_client(uri)
        # one progress bar per downloaded file would bury the report's table
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    def study_runs(self, exclude: tuple[str, ...] = ("pretrain", "report")) -> list[RunRecord]:
        """Runs tagged ``lipo.study`` in every experiment but ``exclude``."""
        try:
            experiments = {
                e.experiment_id: e.name
                for e in self._pages(self.client.search_experiments)
                if e.name not in exclude
            }
        except MlflowException as exc:
            raise LipoError(
                f"MLflow tracking at {self.uri} is not usable: {str(exc).splitlines()[0]}"
            ) from None
        if not experiments:
            return []
        runs = self._pages(
            lambda **kw: self.client.search_runs(list(experiments), "tags.`lipo.study` != ''", **kw)
        )
        return [record_of(r, experiments[r.info.experiment_id]) for r in runs]

    @staticmethod
    def _pages(search) -> list:
        found, token = [], None
        while True:
            page = search(max_results=1000, page_token=token)
            found += list(page)
            token = page.token
            if not token:
                return found

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of one metric, by step."""
        return sorted((m.step, m.value) for m in self.client.get_metric_history(run_id, key))

    def download(self, run_id: str, path: str, dst: Path) -> Path | None:
        """An artifact of one run, or None when the run has none by that name."""
        try:
            return Path(self.client.download_artifacts(run_id, path, str(dst)))
        except (MlflowException, OSError):
            return None

    def artifact_names(self, run_id: str) -> list[str]:
        try:
            return [f.path for f in self.client.list_artifacts(run_id) if not f.is_dir]
        except (MlflowException, OSError):
            return []
