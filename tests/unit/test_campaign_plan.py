"""Campaign files ──► pieces and launcher command lines (no training, no stores)."""

import pytest

from lipo.campaign.plan import check, launcher_argv, load_campaign, plan
from lipo.errors import ConfigError
from tests.conftest import DATA_DIR


def write(tmp_path, text):
    path = tmp_path / "mine.py"
    path.write_text(text)
    return path


def test_the_default_campaign_is_the_original_studys_table():
    campaign = load_campaign(None)
    assert campaign.studies == {
        "baseline": (),
        "mlm": (),
        "influence": ("random-k",),
        "curriculum": ("no-curriculum",),
        "active": ("random-acquisition",),
        "bitfit": (),
        "lora": (),
        "ia3": (),
    }
    assert campaign.splits == [
        str(DATA_DIR / "splits" / "random_seed0.json"),
        str(DATA_DIR / "splits" / "scaffold.json"),
    ]
    assert campaign.seeds == [0, 1, 2, 3, 4]
    check(campaign)  # every control exists
    pieces = plan(campaign)
    assert len(pieces) == 2 * (8 + 8 + 3) + 2 + 1
    assert [p.label for p in pieces[:3]] == [
        "baseline search on random_seed0",
        "baseline final on random_seed0",
        "mlm search on random_seed0",
    ]
    assert pieces[6].label == "influence final control=random-k on random_seed0"
    assert [p.kind for p in pieces[-3:]] == ["references", "references", "report"]


def test_pieces_are_launcher_command_lines(tmp_path):
    campaign = load_campaign(
        str(
            write(
                tmp_path,
                (
                    "STUDIES = {'curriculum': ('no-curriculum',)}\nSPLITS = ('scaffold',)\n"
                    "SEEDS = (3, 4)\nTRIALS = {'curriculum': 2}\nEPOCHS = 1\nBACKBONE = 'tiny'\n"
                ),
            )
        )
    )
    campaign.workers, campaign.storage = 3, "/shared/optuna.journal"
    search, final, control = plan(campaign)[:3]
    common = [
        "--study",
        "curriculum",
        "--split",
        "scaffold",
        "--backbone",
        "tiny",
        "--epochs",
        "1",
        "--storage",
        "/shared/optuna.journal",
    ]
    assert launcher_argv(campaign, search) == [*common, "--trials", "2", "--workers", "3"]
    assert launcher_argv(campaign, final) == [*common, "--final", "--seeds", "3,4"]
    assert launcher_argv(campaign, control) == [
        *common,
        "--final",
        "--seeds",
        "3,4",
        "--control",
        "no-curriculum",
    ]
    campaign.split_per_seed = True
    assert launcher_argv(campaign, final)[-1] == "--split-per-seed"
    assert "--split-per-seed" not in launcher_argv(campaign, search)


def test_a_wrong_control_or_split_is_named_before_anything_runs(tmp_path):
    bad = load_campaign(
        str(
            write(
                tmp_path,
                "STUDIES = {'influence': ('no-curriculum',)}\nSPLITS = ('random',)\nSEEDS = (0,)\n",
            )
        )
    )
    with pytest.raises(ConfigError, match="influence .*no control 'no-curriculum'.*random-k"):
        check(bad)
    with pytest.raises(ConfigError, match="split 'nowhere.json'"):
        load_campaign(
            str(
                write(
                    tmp_path, "STUDIES = ['baseline']\nSPLITS = ('nowhere.json',)\nSEEDS = (0,)\n"
                )
            )
        )
    with pytest.raises(ConfigError, match="unknown campaign 'nope'.*default"):
        load_campaign("nope")
    with pytest.raises(ConfigError, match="lacks SEEDS"):
        load_campaign(str(write(tmp_path, "STUDIES = ['baseline']\nSPLITS = ('random',)\n")))
