"""Refit members (lipo.final.refit): what a refit trains on, the epoch it keeps, which
strategies refit, and how the served ensemble takes their checkpoints."""

from pathlib import Path
from types import SimpleNamespace

from lipo.config import RunConfig
from lipo.final.card import refit_lines
from lipo.final.refit import refit_workspace, refits
from lipo.inference.bundle import VAL_TABLE, gather_members
from lipo.training.fit import keeps_last, record_epoch
from lipo.training.resume import Progress
from lipo.training.trial_run import Workspace


def test_a_refit_keeps_its_last_epoch_however_it_scores():
    kept, plain = Progress(), Progress()
    for epoch, mse in enumerate([0.5, 0.4, 0.6], 1):
        record_epoch(kept, epoch, {"val/mse": mse}, counts=True, last=True)
        record_epoch(plain, epoch, {"val/mse": mse}, counts=True)
    assert (kept.best_epoch, kept.waited) == (3, 0)
    assert (plain.best_epoch, plain.waited) == (2, 1)
    assert keeps_last(RunConfig(phase="refit")) and not keeps_last(RunConfig(phase="final"))


def test_refit_trains_on_training_and_validation_molecules(data_dir):
    ws = Workspace.load(str(data_dir / "lipophilicity.csv"), "random", 0, False)
    refit = refit_workspace(ws)
    split, joined = ws.split, refit.split
    assert sorted(joined.train) == sorted([*split.train, *split.val])
    assert list(joined.val) == list(split.val) and list(joined.test) == list(split.test)
    assert not set(joined.train) & set(joined.test)
    assert joined.name == f"{split.name}+val" and joined.sha256 != split.sha256
    assert len(ws.split.train) == len(split.train)  # the search's workspace is untouched
    assert refit.mols is ws.mols


def test_only_plain_fits_refit():
    inv = SimpleNamespace(refit=True)
    assert refits(inv, RunConfig(strategy="all"))
    for strategy in ("influence", "curriculum", "active", "mlm"):
        assert not refits(inv, RunConfig(strategy=strategy))
    assert not refits(SimpleNamespace(refit=False), RunConfig(strategy="all"))  # --no-refit


def test_members_serve_the_refit_checkpoints(tmp_path):
    fetched = []

    def download(run_id: str, artifact: str, into: Path) -> Path:
        fetched.append((run_id, artifact))
        (into / artifact).write_text(run_id)  # the artifact says which run it came from
        return into / artifact

    members = gather_members(download, [(0, "final0"), (1, "final1")], tmp_path, {"final0": "r0"})
    assert [(m.run_id, m.refit_run_id) for m in members] == [("final0", "r0"), ("final1", None)]
    assert fetched == [
        ("r0", "checkpoint"),
        ("final0", VAL_TABLE),  # the weight and the interval: the final run's validation
        ("final1", "checkpoint"),
        ("final1", VAL_TABLE),
    ]
    assert (members[0].folder / "checkpoint").read_text() == "r0"


def test_the_card_says_which_members_are_refits():
    summary = {"run_ids": ["a", "b"], "refit_run_ids": ["ra", None]}
    served = {"served/ensemble_test_mse": 0.3512, "served/unrefitted_test_mse": 0.3631}
    (line,) = refit_lines(summary, served)
    assert line.startswith("- Refitted members: 1 of 2") and "`ra`" in line
    assert "0.3512" in line and "0.3631" in line
    assert refit_lines({"run_ids": ["a"], "refit_run_ids": [None]}, None) == []
    assert refit_lines({"run_ids": ["a"]}, None) == []  # a bundle written before refits
