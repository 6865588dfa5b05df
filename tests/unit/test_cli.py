"""Flag errors: one line on stderr, exit status 2, nothing started."""
import pytest

from lipo.cli import main


@pytest.mark.parametrize("argv, message", [
    (["--study", "nope"], "unknown study 'nope': expected one of active, baseline, bitfit"),
    (["--study", "baseline", "--seeds", "0,1"], "--seeds applies to --final only"),
    (["--study", "baseline", "--final", "--trials", "3"], "--trials and --final conflict"),
    (["--study", "baseline", "--trials", "0"], "--trials must be at least 1"),
    (["--study", "baseline", "--final", "--seeds", "a,b"], "--seeds 'a,b'"),
    ([], "give --study NAME"),
    (["--study", "baseline", "--data", "/no/such.csv"], "/no/such.csv: no such file"),
    (["--study", "lora", "--adapter", "ia3"], "--adapter ia3: study 'lora' tunes its own"),
    (["--study", "influence", "--control", "random-k"], "--control random-k applies to --final"),
    (["--study", "baseline", "--final", "--control", "random-k"],
     "--control: strategy 'all' has no control; the strategies with controls are curriculum"),
    (["--study", "active", "--final", "--control", "random-k"],
     "--control random-k: strategy 'active' has the controls random-acquisition, one-shot"),
])
def test_bad_flags(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_list(capsys):
    assert main(["--list"]) == 0
    assert "baseline" in capsys.readouterr().out
