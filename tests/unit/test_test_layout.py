"""pytest's default import mode imports test files by basename: two files of the same name
in different folders stop the whole run at collection."""

from collections import Counter

from tests.conftest import ROOT


def test_test_file_basenames_are_unique():
    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
