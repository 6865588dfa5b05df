"""``launch.py campaign`` end to end on `tiny`: two studies (one with its control), both split
files, two seeds, one trial of one epoch each. A second run trains nothing; a campaign
interrupted after its first piece resumes to the same table as one never interrupted.

To keep it short, the molecules are a few hundred rows of Lipophilicity: the first rows of
each part of both split files, and the two split files restricted to them (same parts)."""

import json
import shutil

import pandas as pd
import pytest

from tests.conftest import DATA_DIR
from tests.integration.helpers import launch, mlflow_runs

pytestmark = pytest.mark.slow
CAMPAIGN = '''"""A campaign small enough for the test suite."""
STUDIES = {"baseline": (), "curriculum": ("no-curriculum",)}
SPLITS = ("random_seed0.json", "scaffold.json")  # beside this file: the restricted ones
SEEDS = (0, 1)
TRIALS = 1
EPOCHS = 1
BACKBONE = "tiny"
'''
STUDIES = ("baseline", "curriculum")
SPLIT_FILES = ("random_seed0.json", "scaffold.json")
PER_PART = {"train": 160, "val": 40, "test": 40}
FAST = {"LIPO_REPORT_TREES": "5"}  # reference models: 5 trees or rounds, not 100 or 1000


def study_runs(cwd):
    return {r.info.run_id for study in STUDIES for r in mlflow_runs(cwd, study)}


def table(cwd) -> pd.DataFrame:
    frame = pd.read_csv(cwd / "reports" / "report.csv")
    frame["control"] = frame["control"].fillna("")
    return frame.set_index(["study", "control", "split"]).sort_index()


def restrict(folder):
    """A small CSV of rows from every part of both split files, and both files on it."""
    splits = {name: json.loads((DATA_DIR / "splits" / name).read_text()) for name in SPLIT_FILES}
    rows = sorted(
        {i for spec in splits.values() for part, n in PER_PART.items() for i in spec[part][:n]}
    )
    frame = pd.read_csv(DATA_DIR / "lipophilicity.csv")
    frame.iloc[rows].to_csv(folder / "small.csv", index=False)
    new = {old: i for i, old in enumerate(rows)}
    for name, spec in splits.items():
        parts = {part: [new[i] for i in spec[part] if i in new] for part in PER_PART}
        (folder / name).write_text(json.dumps(parts))
    return folder / "small.csv"


@pytest.fixture(scope="module")
def campaign_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("campaigns")
    restrict(folder)
    path = folder / "tiny_campaign.py"
    path.write_text(CAMPAIGN)
    return path


def run(cwd, campaign, *args, **kw):
    return launch(
        cwd, "campaign", str(campaign), "--data", str(campaign.parent / "small.csv"), *args, **kw
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory, campaign_file):
    cwd = tmp_path_factory.mktemp("whole")
    done = run(cwd, campaign_file, **FAST)
    return cwd, done.stdout


def test_campaign_runs_every_piece_and_reports_them(finished):
    cwd, stdout = finished
    assert stdout.count(" ran: ") == 13  # 2 splits x (2 searches, 3 final phases), 2 refs, report
    frame = table(cwd)
    finals = frame[frame.status == "final"]
    expected = {
        (s, c, split)
        for split in ("random_seed0", "scaffold")
        for s, c in (("baseline", ""), ("curriculum", ""), ("curriculum", "no-curriculum"))
    }
    assert set(finals.index) == expected
    assert (finals.n_seeds == 2).all() and (finals.seeds_vary == "initialisation").all()
    curriculum = finals.loc[("curriculum", "", "scaffold")]
    assert curriculum.vs_control.startswith("vs no-curriculum: ")
    assert curriculum.verdict_vs_baseline in ("helps", "within noise", "hurts")
    refs = frame[frame.status == "reference"].reset_index()
    assert {"lightgbm (reference)", "hist_gradient_boosting (reference)"} <= set(refs.study)


def test_a_second_run_trains_nothing(finished, campaign_file):
    cwd, _ = finished
    before = study_runs(cwd)
    done = run(cwd, campaign_file, **FAST)
    assert study_runs(cwd) == before
    assert done.stdout.count(" done: ") == 12 and done.stdout.count(" ran: ") == 1  # the report
    plan = run(cwd, campaign_file, "--dry-run", **FAST).stdout  # FAST: the same cache keys
    assert plan.count(" done ") == 12 and "mean of" not in plan  # nothing left to estimate


def test_dry_run_estimates_from_history(finished, campaign_file, tmp_path):
    """A fresh campaign on the same tracking store: the estimates come from its runs."""
    cwd, _ = finished
    other = campaign_file.parent / "other.py"
    other.write_text(CAMPAIGN.replace("SEEDS = (0, 1)", "SEEDS = (0, 1, 2)"))
    plan = run(cwd, other, "--dry-run").stdout
    line = next(x for x in plan.splitlines() if "baseline final on scaffold" in x)
    assert (
        "1 of 3 seeds left" in line and "1 seeds x" in line and "mean of 4 runs" in line
    )  # 2 seeds x 2 splits


def test_interrupted_campaign_resumes_to_the_same_table(finished, campaign_file, tmp_path):
    cwd, _ = finished
    # the features of the reference models are the same: reuse them
    (tmp_path / "reports" / ".cache").mkdir(parents=True)
    for features in (cwd / "reports" / ".cache").glob("features_*.npy"):
        shutil.copy(features, tmp_path / "reports" / ".cache")
    stopped = run(tmp_path, campaign_file, ok=False, LIPO_CAMPAIGN_STOP_AFTER="1", **FAST)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert stopped.stdout.count(" ran: ") == 1 and len(study_runs(tmp_path)) == 2  # parent+trial
    resumed = run(tmp_path, campaign_file, **FAST)
    assert resumed.stdout.count(" done: ") == 1
    ours, theirs = table(tmp_path), table(cwd)
    assert list(ours.index) == list(theirs.index)
    columns = ["n_seeds", "test_mse_mean", "test_r2_mean", "best_val_mse"]
    pd.testing.assert_frame_equal(ours[columns], theirs[columns], rtol=1e-5)
