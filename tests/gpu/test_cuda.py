"""Mixed precision on a CUDA GPU: the real model, training loop and launcher. Skipped without
a GPU; ``bench/gpu_check.sh`` runs them (``pytest -m gpu``) and, with LIPO_GPU_FIGURES set to
a file, each test appends what it measured there (one JSON object a line)."""

import gc
import json
import os
import weakref

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from lipo.cli import main
from lipo.config import RunConfig
from lipo.models.backbones import BACKBONES
from lipo.runtime.devices import PRECISIONS
from lipo.training import trial_run as experiment
from lipo.training.trial_run import TrialRun, Workspace
from tests.conftest import DATA_DIR

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
NAMES = [n for n in ("tiny", "molformer-tiny") if n in BACKBONES]  # molformer-tiny once registered
N_TRAIN = 512  # molecules per fit: enough batches for the loss to mean something, seconds


def figure(test: str, **values) -> None:
    path = os.environ.get("LIPO_GPU_FIGURES")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"test": test, **values}) + "\n")


@pytest.fixture(autouse=True)
def fresh_accelerate():
    """Accelerate's state is one per process: each test sets its own precision."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    torch.cuda.empty_cache()


@pytest.fixture(scope="module")
def ws(data_dir) -> Workspace:
    return Workspace.load(None, "random", 0, strict=False)


def accelerator(precision: str) -> Accelerator:
    AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(mixed_precision=PRECISIONS[precision])


@pytest.mark.parametrize("backbone", NAMES)
def test_bf16_forward_and_backward(backbone, ws):
    acc = accelerator("bf16")
    run = TrialRun(RunConfig(backbone=backbone), ws, acc)
    model = run.new_model()
    seen = []
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    model, loader = acc.prepare(model, run.loader(run.split.train[:64], shuffle=True))
    batch = next(iter(loader))
    pred = model(batch["input_ids"], batch["attention_mask"])
    loss = torch.nn.functional.mse_loss(pred, acc.unwrap_model(model).standardise(batch["labels"]))
    acc.backward(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert pred.device.type == "cuda" and torch.isfinite(loss)
    assert seen and set(seen) == {torch.bfloat16}  # every linear layer ran in bf16
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # weights stay fp32
    figure(f"forward_backward[{backbone}]", loss=float(loss))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("backbone", NAMES)
def test_fit_one_epoch(backbone, precision, ws):
    run = TrialRun(RunConfig(backbone=backbone, epochs=1), ws, accelerator(precision))
    torch.cuda.reset_peak_memory_stats()
    result = run.fit(run.new_model(), run.split.train[:N_TRAIN])
    epoch = result.history[0]
    assert np.isfinite(epoch["train/loss"]) and np.isfinite(epoch["val/mse"])
    assert next(result.model.parameters()).device.type == "cuda"
    figure(
        f"fit_one_epoch[{backbone}-{precision}]",
        train_loss=epoch["train/loss"],
        val_mse=epoch["val/mse"],
        peak_mib=torch.cuda.max_memory_allocated() / 2**20,
    )


@pytest.mark.parametrize("backbone", NAMES)
def test_bf16_evaluation_equals_fp32(backbone, ws):
    """The same trained weights evaluated in fp32 and in bf16 autocast."""
    cfg = RunConfig(backbone=backbone, epochs=1)
    run32 = TrialRun(cfg, ws, accelerator("fp32"))
    trained = run32.fit(run32.new_model(), run32.split.train[:N_TRAIN]).model
    mse32, table32 = run32.evaluate(trained, "val")
    weights = {k: v.detach().cpu().clone() for k, v in trained.state_dict().items()}
    run16 = TrialRun(cfg, ws, accelerator("bf16"))
    model16 = run16.new_model()
    model16.load_state_dict(weights)
    mse16, table16 = run16.evaluate(run16.accelerator.prepare(model16), "val")
    both = table32.merge(table16, on="row", suffixes=("32", "16"))
    diff = (both["y_pred32"] - both["y_pred16"]).abs()
    figure(
        f"bf16_vs_fp32_eval[{backbone}]",
        val_mse_fp32=mse32["val/mse"],
        val_mse_bf16=mse16["val/mse"],
        mean_abs_diff=float(diff.mean()),
        max_abs_diff=float(diff.max()),
    )
    assert len(both) == len(table32) == len(ws.split.val)
    # bf16 keeps 8 significant bits (0.4%): predictions move by hundredths of a logD unit
    assert diff.mean() < 0.05
    assert abs(mse16["val/mse"] - mse32["val/mse"]) <= 0.03 * mse32["val/mse"]


def test_gpu_memory_flat_across_trials(tmp_path, monkeypatch, data_dir):
    """Three trials of one invocation: what is allocated when each trial starts must not grow
    (before the fix each trial's model and AdamW state stayed on the GPU)."""
    allocated, made = [], []
    build = experiment.TrialRun.new_model

    def new_model(self, *args, **kwargs):
        gc.collect()
        allocated.append(torch.cuda.memory_allocated())
        model = build(self, *args, **kwargs)
        made.append(weakref.ref(model))
        return model

    monkeypatch.setattr(experiment.TrialRun, "new_model", new_model)
    monkeypatch.chdir(tmp_path)
    small = tmp_path / "small.csv"
    small.write_text(
        "".join((DATA_DIR / "lipophilicity.csv").read_text().splitlines(keepends=True)[:801])
    )
    assert (
        main(
            [
                "--study",
                "baseline",
                "--backbone",
                NAMES[-1],
                "--epochs",
                "1",
                "--trials",
                "3",
                "--precision",
                "bf16",
                "--data",
                str(small),
                "--tracking-uri",
                f"sqlite:///{tmp_path}/mlruns/mlflow.db",
            ]
        )
        == 0
    )
    figure("memory_across_trials", allocated_mib=[round(a / 2**20, 2) for a in allocated])
    assert len(allocated) == 3
    assert allocated[2] <= allocated[1] + 2**20 and allocated[1] <= allocated[0] + 2**20
