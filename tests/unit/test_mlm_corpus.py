"""The `mlm` adaptation corpus never holds a validation or test molecule, stereo or not; the
pre-training corpus's coverage of the task counts molecules as often as training sees them."""

import pytest
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.pool import flat
from lipo.data.splits import make_split
from lipo.masked_lm.adapt import corpus
from lipo.training.trial_run import TrialRun, Workspace


def test_pool_molecules_of_validation_and_test_leave_the_corpus_ignoring_stereo(molecules):
    ws = Workspace(molecules, make_split("random", molecules, 0), "t")
    run = TrialRun(RunConfig(backbone="tiny", strategy="mlm"), ws, Accelerator(cpu=True))
    held = {flat(molecules.smiles[i]) for part in ("val", "test") for i in ws.split.part(part)}
    train_only = corpus(run, include_pool=False)
    from_pool = corpus(run, include_pool=True)[len(train_only) :]
    assert len(from_pool) > 200  # the pool did join (273 of its 300 are not Lipophilicity's)
    assert not {flat(s) for s in from_pool} & held


def test_coverage_counts_a_repeated_molecule_as_often_as_it_appears():
    from lipo.masked_lm.corpus import coverage

    corpus = ["CCO"] * 5 + ["c1ccccc1"]  # C: 10 times, O: 5, c: 6, 1: 2; longest 8 pieces
    got = coverage(corpus, ["CCCC", "CCO", "c1ccccc1", "C" * 9])
    # CCCC and C9 have only C (10 times); CCO's O and benzene's c fall short; C9 is too long
    assert got["coverage/tokens"] == pytest.approx(2 / 4)
    assert got["coverage/length"] == pytest.approx(3 / 4)
    assert got["corpus/longest_tokens"] == 8 and got["corpus/distinct_tokens"] == 4
