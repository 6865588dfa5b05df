"""Bad input at every edge: one line naming the flag, file or row, or a logged skip; nothing
starts training on it. (Split files: test_splits.py; empty pools: test_pool.py.)"""

import logging

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from lipo.cli import main
from lipo.config import RunConfig
from lipo.data.molecules import load_molecules
from lipo.data.splits import Split
from lipo.errors import ConfigError, DataError, LipoError
from lipo.models.backbones import load_backbone
from lipo.models.checkpoint import load_checkpoint, save_checkpoint
from lipo.models.regressor import assemble
from lipo.training.resume import TrainingState
from lipo.training.trial_run import TrialRun, Workspace
from tests.conftest import write_csv

STUDY = '''"""A study naming a {kind} that does not exist."""
STRATEGY = "{strategy}"
ADAPTER = "{adapter}"
TRIALS = 1
EPOCHS = 1


def space(trial):
    return {{}}
'''


def one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--study", "baseline", "--backbone", "bert"],
            "unknown backbone 'bert': expected one of tiny, mini, mini-scratch, mini-30500, "
            "mini-22500, mini-13500, mini-5500, mini-moses",
        ),
        (["--study", "baseline", "--workers", "2", "--final"], "--workers shares a search"),
        (["--study", "baseline", "--workers", "0"], "--workers must be at least 1"),
        (["--study", "baseline", "--heartbeat", "0"], "--heartbeat must be at least 1"),
        (["--study", "baseline", "--save-every", "-1"], "--save-every must be 0 or more"),
        (["--report", "--workers", "2"], "--workers shares a search"),
        (
            ["--study", "baseline", "--workers", "2", "--storage", "sqlite:///o.db"],
            "SQLite locks under parallel workers",
        ),
    ],
)
def test_unknown_names_and_conflicting_flags(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert message in one_line_error(argv, capsys)
    assert not (tmp_path / "mlruns").exists()  # nothing recorded, nothing trained


@pytest.mark.parametrize(
    "kind, strategy, adapter, message",
    [
        (
            "adapter",
            "all",
            "lora2",
            "unknown adapter 'lora2': expected one of bitfit, full, ia3, lora",
        ),
        ("strategy", "random", "full", "unknown strategy 'random': expected one of active, all"),
    ],
)
def test_study_naming_unknown_parts(
    kind, strategy, adapter, message, capsys, tmp_path, monkeypatch
):
    (tmp_path / "broken.py").write_text(STUDY.format(kind=kind, strategy=strategy, adapter=adapter))
    monkeypatch.setenv("LIPO_STUDIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert message in one_line_error(["--study", "broken", "--backbone", "tiny"], capsys)
    assert not (tmp_path / "mlruns").exists()


def test_label_column_of_strings(tmp_path):
    path = write_csv(tmp_path / "text.csv", "smiles,exp\nCCO,high\nc1ccccc1,low\n")
    with pytest.raises(
        DataError,
        match=r"text.csv: no valid rows: label column 'exp' holds "
        r"text, not numbers \(row 0: 'high'\)",
    ) as info:
        load_molecules(path)
    assert "\n" not in str(info.value)


def test_ten_percent_invalid_smiles_are_skipped_and_named(tmp_path, lipo_csv, caplog):
    lines = lipo_csv.read_text().splitlines()[:101]
    rows = [line + "((" if i % 10 == 0 else line for i, line in enumerate(lines[1:])]
    path = write_csv(tmp_path / "noisy.csv", "\n".join([lines[0], *rows]) + "\n")
    with caplog.at_level(logging.WARNING):
        mols = load_molecules(path)
    assert len(mols) == 90 and [row for row, _ in mols.dropped] == list(range(0, 100, 10))
    assert "dropped 10 of 100 rows: row 0: RDKit cannot parse SMILES" in caplog.text
    with pytest.raises(DataError, match=r"noisy.csv: row 0: RDKit cannot parse .*10 invalid"):
        load_molecules(path, strict=True)


def tiny_model(molecules):
    backbone = load_backbone("tiny", molecules.smiles[:50])
    cfg = RunConfig(backbone="tiny")
    return assemble(backbone, cfg, 2.0, 1.0), backbone, cfg


@pytest.mark.parametrize("damage", ["truncate", "garbage", "remove"])
def test_corrupted_checkpoint_is_one_line(tmp_path, molecules, damage):
    model, backbone, cfg = tiny_model(molecules)
    folder = save_checkpoint(model, backbone, cfg, tmp_path / "checkpoint")
    weights = folder / "weights.safetensors"
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        weights.write_bytes(b"\x80\x04not a safetensors file" * 10)  # a pickle opcode first
    else:
        weights.unlink()
    with pytest.raises(LipoError, match="not a usable lipo checkpoint") as info:
        load_checkpoint(folder)
    assert str(folder) in str(info.value) and "\n" not in str(info.value)


def test_pickled_weights_in_a_backbone_folder_are_refused(tmp_path, molecules):
    _, backbone, _ = tiny_model(molecules)
    backbone.encoder.save_pretrained(tmp_path)
    backbone.tokenizer.save_pretrained(tmp_path)
    # The same weights as a pickle: loading it could run code, so it is never read.
    torch.save(backbone.encoder.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="safetensors"):
        load_backbone(str(tmp_path), [])


def fit_once(molecules, root, save_every=2):
    few = np.arange(64)
    ws = Workspace(molecules, Split("few", few[:48], few[48:], few[48:]), "test")
    cfg = RunConfig(backbone="tiny", epochs=2, patience=5, batch_size=16)
    run = TrialRun(cfg, ws, Accelerator(cpu=True), state_root=root, save_every=save_every)
    return run.fit(run.new_model(), ws.split.train)


def test_damaged_training_state_is_skipped_not_half_loaded(tmp_path, molecules, caplog):
    straight = fit_once(molecules, None)
    fit_once(molecules, tmp_path)  # leaves its finished state behind
    current = tmp_path / "fit-1" / "current"
    assert TrainingState(tmp_path / "fit-1", Accelerator(cpu=True), 2).usable() == current
    weights = current / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])
    with caplog.at_level(logging.WARNING):
        again = fit_once(molecules, tmp_path)  # starts afresh, ends where a fresh fit ends
    assert "training state damaged" in caplog.text and "skipped" in caplog.text
    assert [h["val/mse"] for h in again.history] == pytest.approx(
        [h["val/mse"] for h in straight.history], rel=1e-6
    )
