"""Flag errors: one line on stderr, exit status 2, nothing started."""

import pytest

from lipo.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--study", "nope"], "unknown study 'nope': expected one of active, baseline, bitfit"),
        (["--study", "baseline", "--seeds", "0,1"], "--seeds applies to --final only"),
        (["--study", "baseline", "--final", "--trials", "3"], "--trials and --final conflict"),
        (["--study", "baseline", "--trials", "0"], "--trials must be at least 1"),
        (["--study", "baseline", "--final", "--seeds", "a,b"], "--seeds 'a,b'"),
        ([], "give --study NAME"),
        (["--study", "baseline", "--data", "/no/such.csv"], "/no/such.csv: no such file"),
        (["--study", "lora", "--adapter", "ia3"], "--adapter ia3: study 'lora' tunes its own"),
        (
            ["--study", "influence", "--control", "random-k"],
            "--control random-k applies to --final",
        ),
        (
            ["--study", "baseline", "--final", "--control", "random-k"],
            "--control: strategy 'all' has no control; the strategies with controls are curriculum",
        ),
        (
            ["--study", "active", "--final", "--control", "random-k"],
            "--control random-k: strategy 'active' has the controls random-acquisition, one-shot",
        ),
    ],
)
def test_bad_flags(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_list(capsys):
    assert main(["--list"]) == 0
    assert "baseline" in capsys.readouterr().out


def test_adapter_help_lists_the_full_fine_tune_studies_from_their_files(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text(
        'STRATEGY = "all"\nADAPTER = "full"\nTRIALS = 1\n'
        "EPOCHS = 1\n\n\ndef space(trial):\n    return {}\n"
    )
    (tmp_path / "broken.py").write_text("ADAPTER = \n")  # left out, not fatal
    monkeypatch.setenv("LIPO_STUDIES", str(tmp_path))
    from lipo.flags import adapter_help

    listed = adapter_help().split("(")[1].split(")")[0].split(", ")
    assert listed == ["active", "baseline", "curriculum", "influence", "mine", "mlm"]
