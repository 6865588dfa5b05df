"""Randomised SMILES: training augmentation and test-time averaging."""

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.augment import Spellings, average_by_molecule, randomised
from lipo.data.molecules import canonical
from lipo.data.splits import Split
from lipo.errors import ConfigError
from lipo.models.tokenizer import build_tokenizer
from lipo.training.fit import predict
from lipo.training.trial_run import TrialRun, Workspace

STEREO = "C[C@H](N)C(=O)O"  # a stereocentre and a charge-free acid: both must survive


def test_spellings_are_the_same_molecule(molecules):
    for smi in molecules.smiles[:40] + [STEREO, "C[N+](C)(C)CC(=O)[O-]"]:
        variants = randomised(smi, 3, seed=0, purpose="augment:1")
        assert len(variants) == 3
        assert all(canonical(v) == smi for v in variants), smi


def test_spellings_are_seeded_per_seed_and_epoch(molecules):
    smiles = molecules.smiles[:30]
    first = [randomised(s, 2, 0, "augment:1") for s in smiles]
    assert first == [randomised(s, 2, 0, "augment:1") for s in smiles]
    assert first != [randomised(s, 2, 0, "augment:2") for s in smiles]  # fresh each epoch
    assert first != [randomised(s, 2, 1, "augment:1") for s in smiles]
    # A molecule's spelling does not depend on which other molecules are asked for.
    assert randomised(smiles[7], 2, 0, "augment:1") == first[7]


def test_an_overlong_spelling_falls_back_to_the_canonical_smiles():
    smi = "CC(C)(C)c1ccc(O)cc1"
    tokenizer = build_tokenizer([smi])
    canonical_ids = tokenizer([smi])["input_ids"][0]
    short = Spellings(tokenizer, 0, max_tokens=len(canonical_ids)).ids([smi], 5, "tta")[0]
    roomy = Spellings(tokenizer, 0, max_tokens=512).ids([smi], 5, "tta")[0]
    assert any(len(ids) > len(canonical_ids) for ids in roomy)  # ring-closure digits cost tokens
    assert short == [ids if len(ids) <= len(canonical_ids) else canonical_ids for ids in roomy]


def test_average_by_molecule_means_each_molecules_rows_once():
    positions = np.array([0, 1, 2, 3, 4, 5, 3])  # row 3 gathered twice (padding)
    origin = np.array([10, 11, 10, 11, 10, 11, 11])
    pred = np.array([1.0, 2.0, 3.0, 6.0, 5.0, 7.0, 6.0], dtype=np.float32)
    y = np.array([0.5, 0.25, 0.5, 0.25, 0.5, 0.25, 0.25], dtype=np.float32)
    mean, labels, molecules = average_by_molecule(positions, origin, pred, y)
    assert molecules.tolist() == [10, 11]
    assert mean.tolist() == [3.0, 5.0] and labels.tolist() == [0.5, 0.25]
    single = average_by_molecule(np.arange(3), np.array([5, 3, 4]), pred[:3], y[:3])
    assert [a.tolist() for a in single] == [pred[:3].tolist(), y[:3].tolist(), [5, 3, 4]]


def trial(molecules, **knobs) -> TrialRun:
    few = np.arange(60)
    ws = Workspace(molecules, Split("few", few[:40], few[40:50], few[50:]), "t")
    run = TrialRun(RunConfig(backbone="tiny", dropout=0.0, **knobs), ws, Accelerator(cpu=True))
    run.model = run.new_model()
    return run


def test_tta_zero_is_plain_evaluation(molecules):
    run = trial(molecules, tta=0)
    metrics, table = run.evaluate(run.model, "val")
    plain_pred, _, plain_pos = predict(run.model, run.loader(run.split.val, False))
    assert len(run.data) == len(molecules)
    plain = dict(zip(molecules.rows[plain_pos].tolist(), plain_pred))
    assert table["row"].tolist() == sorted(plain)  # each molecule once, in table-row order
    assert np.array_equal(table["y_pred"].to_numpy(), [plain[r] for r in table["row"]])


def test_tta_averages_the_canonical_and_n_randomised_predictions(molecules):
    run = trial(molecules, tta=3)
    metrics, table = run.evaluate(run.model, "val")
    assert len(run.data) == len(molecules)  # the spelled rows are gone afterwards
    assert len(table) == len(run.split.val) and table["row"].is_unique
    tokenizer = run.backbone.tokenizer
    expected = {}
    for p in run.split.val:
        smi = molecules.smiles[p]
        spellings = [smi] + randomised(smi, 3, seed=0, purpose="tta")
        batch = tokenizer(spellings, padding=True, return_tensors="pt")
        with torch.no_grad():
            z = run.model(batch["input_ids"], batch["attention_mask"])
        expected[molecules.rows[p]] = run.model.to_logd(z).double().mean().item()
    got = dict(zip(table["row"], table["y_pred"]))
    assert got == pytest.approx(expected, abs=1e-5)
    plain = trial(molecules, tta=0).evaluate(run.model, "val")[1]
    assert not np.allclose(np.sort(plain["y_pred"]), np.sort(table["y_pred"]))


def test_augmented_pools_add_fresh_spellings_each_epoch(molecules):
    run = trial(molecules, augment=2, epochs=3)
    with run.respelled():
        pools = run.augmented(run.split.train, None)
        assert [len(p) for p in pools] == [3 * len(run.split.train)] * 3
        origin = [run.data.origin[p] for p in pools]
        for pool, source in zip(pools, origin):  # each molecule: itself and two spellings
            assert np.array_equal(np.bincount(source, minlength=60)[:40], np.full(40, 3))
            assert torch.equal(run.data.targets[pool], run.data.targets[source])
        spelled = [[tuple(run.data.ids[p]) for p in pool[40:]] for pool in pools]
        assert spelled[0] != spelled[1] != spelled[2]
        again = trial(molecules, augment=2, epochs=3)
        with again.respelled():  # a resumed or other-rank trial builds the same rows
            same = again.augmented(again.split.train, None)
            assert [[again.data.ids[p] for p in pool] for pool in same] == [
                [run.data.ids[p] for p in pool] for pool in pools
            ]
    assert len(run.data) == len(molecules) and len(run.data.origin) == len(molecules)


def test_negative_knobs_are_refused():
    with pytest.raises(ConfigError, match="augment"):
        RunConfig(augment=-1)
    with pytest.raises(ConfigError, match="tta"):
        RunConfig().with_overrides({"tta": -2})
