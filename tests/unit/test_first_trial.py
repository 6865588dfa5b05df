"""A study file's FIRST_TRIAL: queued as trial 0 of a new study, once, on a real journal
storage; a value outside the space is refused with the file's name."""

import pytest

from lipo.errors import ConfigError
from lipo.search.book import TrialBook
from lipo.search.storage import open_study
from lipo.study_files import load_study

FIRST = {"lr": 4.13e-4, "weight_decay": 0.0145}


def space(knobs):
    return {
        "lr": knobs.suggest_float("lr", 2e-4, 1e-3, log=True),
        "weight_decay": knobs.suggest_float("weight_decay", 1e-4, 0.1, log=True),
        "dropout": knobs.suggest_float("dropout", 0.0, 0.2),
    }


def book(path):
    return TrialBook(open_study("s", path, seed=0, startup=1, first=FIRST))


def test_a_new_study_trains_the_first_trial_settings_then_draws(tmp_path):
    path = str(tmp_path / "optuna.journal")
    first = book(path).draw(space, {"batch_size": 16}, total=4)
    assert first.number == 0
    assert first.settings["lr"] == 4.13e-4 and first.settings["weight_decay"] == 0.0145
    assert 0.0 <= first.settings["dropout"] <= 0.2  # the knob it leaves out is drawn
    assert first.settings["batch_size"] == 16
    second = book(path).draw(space, {}, total=4)  # a second launch of the same study
    assert second.number == 1 and second.settings["lr"] != 4.13e-4


def test_launches_started_together_queue_it_once(tmp_path):
    path = str(tmp_path / "optuna.journal")
    one, two = book(path), book(path)
    assert len(one.study.get_trials()) == 1
    assert two.draw(space, {}, total=4).settings["lr"] == 4.13e-4
    assert one.draw(space, {}, total=4).settings["lr"] != 4.13e-4


def test_a_first_trial_outside_the_space_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "wide.py").write_text(
        'STRATEGY = "all"\nADAPTER = "full"\nTRIALS = 2\nEPOCHS = 1\n'
        'FIRST_TRIAL = {"lr": 0.5, "rank": 8}\n'
        "def space(trial):\n"
        '    return {"lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True)}\n'
    )
    monkeypatch.setenv("LIPO_STUDIES", str(tmp_path))
    with pytest.raises(ConfigError, match=r"wide\.py: FIRST_TRIAL lr=0\.5, rank=8 is not"):
        load_study("wide")


def test_the_shipped_baseline_starts_from_a_recipe_inside_its_space():
    assert set(load_study("baseline").FIRST_TRIAL) == {
        "lr",
        "weight_decay",
        "dropout",
        "warmup_frac",
    }
