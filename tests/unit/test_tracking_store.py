"""The MLflow store: a damaged one gets one line saying how to recover (the launcher on a
half-created store: tests/integration/test_concurrent_starts.py); experiments are created as
model-training experiments."""

import pytest

from lipo.tracking.store import EXPERIMENT_KIND, Tracker, open_client, unopenable_store


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # artifacts go under ./mlruns
    return tmp_path / "mlruns" / "mlflow.db"


def test_a_store_of_an_older_mlflow_is_upgraded_not_moved_away(tmp_path):
    error = (
        "Detected out-of-date database schema (found version 451aebb31d03, but expected "
        "dc11669786a5). Take a backup of your database, then run 'mlflow db upgrade'"
    )
    message = unopenable_store(tmp_path / "mlflow.db", error)
    assert f"mlflow db upgrade sqlite:///{tmp_path / 'mlflow.db'}" in message
    assert "mv " not in message


def test_experiments_open_on_runs_in_the_mlflow_ui(store):
    tracker = Tracker(f"sqlite:///{store}", "baseline")
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND] == "custom_model_development"


def test_an_experiment_made_by_an_earlier_version_is_tagged_when_opened(store):
    client = open_client(f"sqlite:///{store}")
    client.create_experiment("old", artifact_location=(store.parent / "a").as_uri())
    tracker = Tracker(f"sqlite:///{store}", "old")
    assert (
        tracker.client.get_experiment(tracker.experiment_id).tags[EXPERIMENT_KIND]
        == "custom_model_development"
    )
