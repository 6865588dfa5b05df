"""`launch.py pretrain` on `tiny`: reloadable through AutoModel/AutoTokenizer, a model card
that matches its files, and a resume after SIGKILL that ends where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from transformers import AutoModel, AutoTokenizer

from tests.conftest import DATA_DIR, ROOT
from tests.integration.helpers import env, launch, mlflow_runs

pytestmark = pytest.mark.slow
ARGS = (
    "pretrain",
    "--size",
    "tiny",
    "--limit",
    "600",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--save-every",
    "5",
)


def card(folder):
    return json.loads((folder / "lipo_card.json").read_text())


def test_pretrain_reload_and_card(tmp_path):
    launch(tmp_path, *ARGS, "--heldout-every", "50", "--out", str(tmp_path / "p"))
    out = tmp_path / "p"
    model, tokenizer = AutoModel.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert model.config.num_hidden_layers == 2
    assert tokenizer("c1ccccc1")["input_ids"][0] == tokenizer.cls_token_id
    info = card(out)
    # the default mix, 600 of each corpus, 2% of each held out: MOSES once, ChEMBL 5 times
    assert info["heldout_smiles"] == 24 and info["train_smiles"] == 588 + 5 * 588
    assert [(c["file"], c["weight"]) for c in info["corpora"]] == [
        ("moses_train_smiles.csv.gz", 1),
        ("chembl_moleculeace_smiles.csv.gz", 5),
    ]
    assert info["objective"].startswith("masked-LM + 1.0 x descriptors")
    assert (out / "descriptor_head.safetensors").is_file()
    assert info["command"].startswith("python launch.py pretrain --size tiny")
    shipped = (out / "lipo_card.json").read_text() + (out / "README.md").read_text()
    for folder in (tmp_path, DATA_DIR):  # no path of the machine that trained: it ships
        assert str(folder) not in shipped
    assert 0 < info["heldout/mlm_loss"] < 10
    import hashlib

    for name, digest in json.loads((out / "checksums.json").read_text()).items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert "| moses_train_smiles.csv.gz | `" in (out / "README.md").read_text()
    heldout_curve_is_logged(tmp_path, info)


def heldout_curve_is_logged(cwd, info):
    """Every --heldout-every steps, at each epoch's end and at the end, the held-out metrics
    at their step; the last point is the card's."""
    from mlflow import MlflowClient

    (run,) = mlflow_runs(cwd, "pretrain")
    client = MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")
    steps_per_epoch = -(-info["train_smiles"] // 32)
    for key in ("heldout/mlm_loss", "heldout/accuracy", "heldout/descriptor_mse"):
        history = client.get_metric_history(run.info.run_id, key)
        steps = sorted({m.step for m in history})
        assert steps == sorted({50, 100, 150, 200, steps_per_epoch, info["steps"]}), key
        last = [m.value for m in history if m.step == info["steps"]]
        assert info[key] in last, key


def saved_step(progress) -> int:
    try:  # the state folder is swapped in whole; it may be mid-swap when read
        return json.loads(progress.read_text())["step"]
    except (OSError, ValueError):
        return -1


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    launch(tmp_path, *ARGS, "--out", str(tmp_path / "straight"))
    target = tmp_path / "resumed"
    cmd = [sys.executable, str(ROOT / "launch.py"), *ARGS, "--out", str(target)]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    progress = target / "state" / "current" / "progress.json"
    deadline = time.time() + 300
    while saved_step(progress) < 10:
        assert proc.poll() is None and time.time() < deadline, "no state saved in time"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (target / "lipo_card.json").exists()
    launch(tmp_path, *ARGS, "--out", str(target))  # the same command continues
    assert card(target)["heldout/mlm_loss"] == pytest.approx(
        card(tmp_path / "straight")["heldout/mlm_loss"], abs=1e-5
    )
    assert len(mlflow_runs(tmp_path, "pretrain")) == 2  # straight and resumed: one run each


def test_init_continues_an_encoder_with_its_tokenizer_and_heads(tmp_path):
    """`--init FOLDER` starts from the folder's weights and descriptor head: at a vanishing
    learning rate the continued encoder is the starting one."""
    from safetensors.torch import load_file

    first, continued = tmp_path / "first", tmp_path / "continued"
    launch(tmp_path, *ARGS, "--max-steps", "12", "--out", str(first))
    launch(
        tmp_path,
        "pretrain",
        "--init",
        str(first),
        "--limit",
        "600",
        "--max-steps",
        "2",
        "--batch-size",
        "32",
        "--lr",
        "1e-12",
        "--tracking-uri",
        "none",
        "--out",
        str(continued),
    )
    assert (continued / "tokenizer.json").read_bytes() == (first / "tokenizer.json").read_bytes()
    for name in ("model.safetensors", "descriptor_head.safetensors"):
        before, after = load_file(first / name), load_file(continued / name)
        assert before.keys() == after.keys()
        assert all((before[k] - after[k]).abs().max() < 1e-6 for k in before), name
    info = card(continued)
    assert info["size"] == "tiny" and info["steps"] == 2
    assert info["continued_from"].startswith("first (12 steps; model.safetensors ")
    assert info["total_steps"] == 12 + 2 and card(first)["total_steps"] == 12
    assert "| continued_from | `first (12 steps" in (continued / "README.md").read_text()
