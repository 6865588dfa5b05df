"""``--final --split-per-seed``: seed S trains and is tested on the random split of seed S, so
the report's ± spans the split too; its runs are a row of their own, resumed on their own."""

import pandas as pd
import pytest

from tests.conftest import DATA_DIR
from tests.integration.helpers import launch, trial_runs

pytestmark = pytest.mark.slow


def test_final_seeds_on_their_own_random_splits(tmp_path):
    small = tmp_path / "small.csv"
    pd.read_csv(DATA_DIR / "lipophilicity.csv").head(300).to_csv(small, index=False)
    common = ("--study", "baseline", "--backbone", "tiny", "--epochs", "1", "--data", str(small))
    launch(tmp_path, *common, "--trials", "1")
    final = (*common, "--final", "--seeds", "0,1")
    launch(tmp_path, *final, "--split-per-seed")
    runs = {r.data.tags["lipo.seed"]: r for r in trial_runs(tmp_path, "baseline", "final")}
    assert {s: r.data.tags["lipo.split"] for s, r in runs.items()} == {
        "0": "random_seed0",
        "1": "random_seed1",
    }
    assert runs["0"].data.tags["lipo.split_sha256"] != runs["1"].data.tags["lipo.split_sha256"]
    assert all(r.data.tags["lipo.split_per_seed"] == "1" for r in runs.values())
    assert runs["1"].data.params["split_seed"] == "1"
    again = launch(tmp_path, *final, "--split-per-seed")  # finished: nothing trained
    assert again.stdout.count("already finished") == 2
    launch(tmp_path, *final)  # the search's split: its own seeds, trained anew
    assert len(trial_runs(tmp_path, "baseline", "final")) == 4
    launch(tmp_path, "--report", LIPO_REPORT_TREES="5")
    table = pd.read_csv(tmp_path / "reports" / "report.csv")
    finals = table[table.status == "final"].set_index("split")
    per_seed = finals.loc["random per seed (searched on random_seed0)"]
    assert per_seed.seeds_vary == "initialisation + split" and per_seed.n_seeds == 2
    assert finals.loc["random_seed0", "seeds_vary"] == "initialisation"


def test_split_per_seed_needs_the_final_phase(tmp_path):
    done = launch(tmp_path, "--study", "baseline", "--split-per-seed", ok=False)
    assert done.returncode == 2 and "--split-per-seed applies to --final only" in done.stderr
