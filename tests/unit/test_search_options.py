"""--warm-start and --pruner on a real journal storage: a finished study's best settings
queued once as the next study's first trial, on the knobs the two share."""

import optuna
import pytest

from lipo.errors import ConfigError
from lipo.search import trials as optuna_trials
from lipo.search.book import TrialBook
from lipo.search.space import space_of
from lipo.search.storage import open_study
from lipo.study_files import load_study


def finished(path, name, params, value):
    """A study with one completed trial of ``params``, as a search leaves it."""
    study = open_study(name, path, seed=0, startup=1)
    study.enqueue_trial(params)
    trial = optuna_trials.ask(study, seed=0, startup=1, total=1)
    for knob, v in params.items():
        (
            trial.suggest_categorical(knob, [v])
            if isinstance(v, (bool, str))
            else trial.suggest_float(knob, v / 10, v * 10)
        )
    optuna_trials.tell(study, trial, "COMPLETE", value)


def lora_space(trial):
    return load_study("lora").space(trial)


def test_the_best_settings_are_queued_once_on_shared_knobs_within_range(tmp_path):
    path = str(tmp_path / "optuna.journal")
    finished(path, "baseline", {"lr": 1e-3, "dropout": 0.5, "weight_decay": 0.01}, 0.7)
    study = open_study("lora", path, seed=0, startup=1)
    book = TrialBook(study)
    queued = book.warm_start("baseline", path, lora_space, "baseline")
    # lr is a lora knob and inside its range; dropout 0.5 is outside lora's 0-0.2;
    # weight_decay is not a lora knob
    assert queued == {"lr": 1e-3}
    assert book.warm_start("baseline", path, lora_space, "baseline") == {}  # resumed

    trial = optuna_trials.ask(study, seed=0, startup=1, total=3)
    settings = lora_space(trial)
    assert settings["lr"] == 1e-3 and trial.user_attrs["lipo.warm_start"] == "baseline"
    assert optuna_trials.duplicate_of(study, trial, settings) is None


def test_a_warm_start_without_a_finished_source_or_shared_knob_is_refused(tmp_path):
    path = str(tmp_path / "optuna.journal")
    book = TrialBook(open_study("lora", path, seed=0, startup=1))
    with pytest.raises(ConfigError, match="--warm-start baseline: no completed trial"):
        book.warm_start("baseline", path, lora_space, "baseline")
    finished(path, "influence", {"k": 500.0}, 0.7)
    with pytest.raises(ConfigError, match="none of its best settings \\(k\\) is a knob"):
        book.warm_start("influence", path, lora_space, "influence")


def test_the_space_probe_knows_every_knob_of_a_study_and_its_range():
    knobs = space_of(lora_space)
    assert set(knobs) == {"adapter.alpha", "lr", "dropout"}
    assert knobs["adapter.alpha"](32) and not knobs["adapter.alpha"](8)
    assert knobs["lr"](3e-4) and not knobs["lr"](1e-5)
    assert knobs["dropout"](0.1) and not knobs["dropout"](0.5)
    baseline = space_of(load_study("baseline").space)
    assert set(baseline) == {"lr", "weight_decay", "dropout", "warmup_frac"}
    assert baseline["lr"](4e-4) and not baseline["lr"](3e-3)
    ia3 = space_of(load_study("ia3").space)  # an int range
    assert ia3["epochs"](5) and not ia3["epochs"](5.5)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("median", optuna.pruners.MedianPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("none", optuna.pruners.NopPruner),
    ],
)
def test_each_pruner_flag_builds_its_pruner(tmp_path, name, kind):
    study = open_study("s", str(tmp_path / "j"), seed=0, startup=1, pruner=name, epochs=6)
    assert isinstance(study.pruner, kind)
    two = open_study(
        "t", str(tmp_path / "j"), seed=0, startup=1, pruner=name, objectives=("mse", "params")
    )
    assert isinstance(two.pruner, optuna.pruners.NopPruner)  # Optuna prunes one objective
