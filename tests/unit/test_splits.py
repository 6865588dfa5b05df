import json

import numpy as np
import pytest

from lipo.data.molecules import load_molecules
from lipo.data.splits import PARTS, make_split, scaffold_of
from lipo.errors import DataError
from tests.conftest import write_csv


def rows_of(split, mols, part):
    return sorted(mols.rows[split.part(part)].tolist())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_split_matches_the_canonical_files(molecules, data_dir, seed):
    split = make_split("random", molecules, seed)
    canonical = json.loads((data_dir / "splits" / f"random_seed{seed}.json").read_text())
    for part in PARTS:
        assert rows_of(split, molecules, part) == sorted(canonical[part])


def test_random_split_is_deterministic_and_disjoint(molecules):
    a, b = make_split("random", molecules, 7), make_split("random", molecules, 7)
    assert a.sha256 == b.sha256
    assert a.sha256 != make_split("random", molecules, 8).sha256
    together = np.concatenate([a.train, a.val, a.test])
    assert len(together) == len(set(together.tolist())) == len(molecules)
    assert (len(a.train), len(a.val), len(a.test)) == (3360, 420, 420)


def test_scaffold_split_matches_canonical_and_never_straddles(molecules, data_dir):
    split = make_split("scaffold", molecules, 0)
    canonical = json.loads((data_dir / "splits" / "scaffold.json").read_text())
    for part in PARTS:
        assert rows_of(split, molecules, part) == sorted(canonical[part])
    owner = {}
    for part in PARTS:
        for pos in split.part(part):
            scaffold = scaffold_of(molecules.smiles[pos])
            assert owner.setdefault(scaffold, part) == part, scaffold


def test_split_file_is_read(molecules, data_dir):
    path = data_dir / "splits" / "random_seed1.json"
    split = make_split(str(path), molecules, 0)
    assert split.name == "random_seed1"
    assert split.sha256 == make_split("random", molecules, 1).sha256


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"train": [0, 1], "val": [2], "test": [4200]}, "row 4200, outside 0..4199"),
        ({"train": [0, 1], "val": [1], "test": [3]}, "row 1 is in both 'train' and 'val'"),
        ({"train": [0, 1], "val": [2]}, "needs lists under"),
        ({"train": [0, "1"], "val": [2], "test": [3]}, "integer row indices"),
        ({"train": [-1], "val": [2], "test": [3]}, "row -1"),
    ],
)
def test_malformed_split_files_are_rejected(tmp_path, molecules, spec, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(DataError, match=message):
        make_split(str(path), molecules, 0)


def test_not_json(tmp_path, molecules):
    path = write_csv(tmp_path / "bad.json", "{nope")
    with pytest.raises(DataError, match="not a readable JSON split file"):
        make_split(str(path), molecules, 0)


def test_unknown_split_name(molecules):
    with pytest.raises(DataError, match="expected random, scaffold or a split file"):
        make_split("stratified", molecules, 0)


def test_dropped_rows_leave_every_part(tmp_path):
    mols = load_molecules(
        write_csv(tmp_path / "d.csv", "smiles,exp\nCCO,1\nbad(,2\nCCN,3\nCCC,4\n")
    )
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"train": [0, 1], "val": [2], "test": [3]}))
    split = make_split(str(path), mols, 0)
    assert mols.rows[split.train].tolist() == [0]
