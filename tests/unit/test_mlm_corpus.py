"""The `mlm` adaptation corpus never holds a validation or test molecule, stereo or not."""
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.trial_run import TrialRun, Workspace
from lipo.pool import flat
from lipo.splits import make_split
from lipo.masked_lm.adapt import corpus


def test_pool_molecules_of_validation_and_test_leave_the_corpus_ignoring_stereo(molecules):
    ws = Workspace(molecules, make_split("random", molecules, 0), "t")
    run = TrialRun(RunConfig(backbone="tiny", strategy="mlm"), ws, Accelerator(cpu=True))
    held = {flat(molecules.smiles[i]) for part in ("val", "test") for i in ws.split.part(part)}
    train_only = corpus(run, include_pool=False)
    from_pool = corpus(run, include_pool=True)[len(train_only):]
    assert len(from_pool) > 200  # the pool did join (273 of its 300 are not Lipophilicity's)
    assert not {flat(s) for s in from_pool} & held
