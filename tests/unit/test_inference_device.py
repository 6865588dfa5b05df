"""``predict --device``, and the loaders of batches bound for a GPU (pinned memory, worker
processes). On a CPU everything stays as it was: the same device, the same loader."""

import numpy as np
import pytest
import torch

from lipo.config import RunConfig
from lipo.data.batching import EncodedMolecules, make_loader
from lipo.errors import ConfigError
from lipo.inference.predict import predict_logd
from lipo.models.backbones import load_backbone
from lipo.models.regressor import assemble
from lipo.runtime.devices import inference_device, loader_options

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "OC(=O)c1ccccc1", "C1CCCCC1"]
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible")


@no_gpu
def test_auto_is_the_cpu_without_a_gpu_and_a_missing_gpu_is_an_error():
    assert inference_device("auto") == inference_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device cuda:1: no CUDA GPUs visible here"):
        inference_device("cuda:1")


def test_unknown_device_names_the_choices():
    with pytest.raises(ConfigError, match="--device tpu: expected auto, cpu, cuda or cuda:N"):
        inference_device("tpu")


def test_pinned_memory_and_workers_for_a_gpu_only():
    assert loader_options(torch.device("cpu")) == {}
    assert loader_options(torch.device("cuda", 0)) == {"pin_memory": True, "num_workers": 2}


def test_worker_processes_make_the_same_batches():
    """The loader a GPU gets (two processes padding batches) hands over the same batches."""
    tokenizer = load_backbone("tiny", SMILES).tokenizer
    ids = tokenizer(SMILES)["input_ids"]
    data = EncodedMolecules(ids, np.arange(len(SMILES), dtype=np.float32), None, SMILES)

    def batches(**options):
        return [
            (b["input_ids"].tolist(), b["origin"].tolist())
            for b in make_loader(data, np.arange(len(SMILES)), 2, 0, False, **options)
        ]

    assert batches(num_workers=2) == batches()


@no_gpu
def test_predict_with_a_gpu_asked_for_and_none_here_is_one_line(tmp_path, capsys):
    from lipo.cli import main

    (tmp_path / "one.smi").write_text("CCO\n")
    code = main(
        [
            "predict",
            "--checkpoint",
            str(tmp_path),
            "--smiles",
            str(tmp_path / "one.smi"),
            "--device",
            "cuda",
        ]
    )
    assert code == 2 and "--device cuda: no CUDA GPUs visible" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.gpu
def test_prediction_on_the_gpu_matches_the_cpu():
    backbone = load_backbone("tiny", SMILES)
    cfg = RunConfig(backbone="tiny")
    model = assemble(backbone, cfg, 2.0, 1.0).eval()
    on_cpu = predict_logd(model, backbone.tokenizer, cfg, SMILES, 4)
    on_gpu = predict_logd(model.to("cuda"), backbone.tokenizer, cfg, SMILES, 4)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4)
