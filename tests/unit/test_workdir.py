"""``--workdir`` / ``LIPO_HOME``: where this machine keeps its resumable states and caches."""

import os
from pathlib import Path

from lipo.runtime import workdir


def test_without_a_work_folder_everything_stays_where_it_was(monkeypatch):
    monkeypatch.delenv(workdir.ENV, raising=False)
    assert workdir.state_root() == Path("mlruns") / "state"
    assert workdir.cache("reports", Path("reports/.cache")) == Path("reports/.cache")


def test_lipo_home_places_states_and_caches(monkeypatch, tmp_path):
    monkeypatch.setenv(workdir.ENV, str(tmp_path))
    assert workdir.state_root() == tmp_path / "state"
    assert workdir.cache("reports", Path("reports/.cache")) == tmp_path / "cache" / "reports"
    from lipo.data.molecules import cache_dir

    assert cache_dir() == tmp_path / "cache" / "lipo"


def test_the_flag_wins_and_is_handed_to_the_processes_it_starts(monkeypatch, tmp_path):
    monkeypatch.setenv(workdir.ENV, "/elsewhere")
    monkeypatch.chdir(tmp_path)
    workdir.use("work")  # relative to where the launcher was started
    assert workdir.home() == tmp_path / "work"
    assert os.environ[workdir.ENV] == str(tmp_path / "work")
