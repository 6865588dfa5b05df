import logging

import numpy as np
import pytest

from lipo.data.molecules import LIPO_FILE, check_lipophilicity, download, load_molecules, locate
from lipo.errors import DataError
from tests.conftest import write_csv

GOOD = "smiles,exp\nCCO,1.0\nc1ccccc1,2.0\nCC(=O)O,0.5\n"


def test_reads_and_canonicalises(tmp_path):
    mols = load_molecules(write_csv(tmp_path / "a.csv", "smiles,exp\nOCC,1.0\nC1=CC=CC=C1,2.0\n"))
    assert mols.smiles == ["CCO", "c1ccccc1"]
    assert mols.y.tolist() == [1.0, 2.0]
    assert mols.rows.tolist() == [0, 1]


def test_bad_smiles_and_nan_label_are_dropped_and_named(tmp_path, caplog):
    text = "smiles,exp\nCCO,1.0\nC1CC(,2.0\nCCN,\nCCC,abc\nCCCl,3.0\n"
    with caplog.at_level(logging.WARNING):
        mols = load_molecules(write_csv(tmp_path / "bad.csv", text))
    assert mols.rows.tolist() == [0, 4]
    assert [row for row, _ in mols.dropped] == [1, 2, 3]
    assert "dropped 3 of 5 rows" in caplog.text
    assert "row 1: RDKit cannot parse SMILES 'C1CC('" in caplog.text
    assert "row 3: label 'abc' is not a number" in caplog.text


def test_strict_rejects_with_the_row(tmp_path):
    path = write_csv(tmp_path / "bad.csv", "smiles,exp\nCCO,1.0\nnot_a_smiles,2.0\n")
    with pytest.raises(DataError, match=r"bad.csv: row 1: RDKit cannot parse"):
        load_molecules(path, strict=True)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("smiles,exp\n", "header but no data rows"),
        ("name,value\nCCO,1.0\n", "no SMILES column .*found name, value"),
        ("smiles,weight\nCCO,1.0\n", "no label column"),
        ("smiles;exp\nCCO;1.0\n", "semicolon-separated"),
        ("smiles\texp\nCCO\t1.0\n", "tab-separated"),
        ("smiles,exp\nxx,yy\nzz,ww\n", "no valid rows"),
    ],
)
def test_unusable_files_get_one_line_errors(tmp_path, text, message):
    path = write_csv(tmp_path / "f.csv", text)
    with pytest.raises(DataError, match=message) as info:
        load_molecules(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_duplicates_are_reported(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        mols = load_molecules(write_csv(tmp_path / "d.csv", "smiles,exp\nCCO,1\nOCC,2\n"))
    assert len(mols) == 2
    assert "1 duplicate molecules" in caplog.text and "rows 0 and 1" in caplog.text


def test_lipophilicity_is_clean(molecules):
    assert len(molecules) == 4200 and not molecules.dropped
    assert np.isclose(molecules.y.mean(), 2.186, atol=1e-3)


def test_locate_order(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("LIPO_DATA_DIR", str(data_dir))
    assert locate(None) == data_dir / LIPO_FILE
    given = write_csv(tmp_path / "x.csv", GOOD)
    assert locate(str(given)) == given
    with pytest.raises(DataError, match="no such file"):
        locate(str(tmp_path / "missing.csv"))
    monkeypatch.setenv("LIPO_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="LIPO_DATA_DIR"):
        locate(None)


def test_download_checks_before_keeping(tmp_path, lipo_csv):
    # file:// goes through the same urllib code path as the MoleculeNet URL.
    target = tmp_path / "cache" / LIPO_FILE
    download(lipo_csv.as_uri(), target)
    check_lipophilicity(target)
    broken = write_csv(tmp_path / "broken.csv", lipo_csv.read_text().replace("3.54", "3.55", 1))
    with pytest.raises(DataError, match="checksum"):
        download(broken.as_uri(), tmp_path / "cache2" / LIPO_FILE)
    assert not (tmp_path / "cache2" / LIPO_FILE).exists()


def test_cached_download_used_when_nothing_else(tmp_path, monkeypatch, lipo_csv):
    monkeypatch.delenv("LIPO_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr("lipo.data.molecules.LIPO_URL", lipo_csv.as_uri())
    path = locate(None)
    assert path == tmp_path / "lipo" / LIPO_FILE and path.is_file()
