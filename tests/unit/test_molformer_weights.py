"""Finding and reading MoLFormer's published files: the Hugging Face cache at the pinned
revision (no network: a cache laid out as huggingface_hub lays it out), a folder, and the
errors for missing or unfitting weights."""

import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import load_file, save_file

from lipo.config import RunConfig
from lipo.errors import ConfigError
from lipo.models.backbones import load_backbone
from lipo.models.checkpoint import load_checkpoint, save_checkpoint
from lipo.models.regressor import assemble
from lipo.molformer import IMPLEMENTATION, MoLFormerModel
from lipo.molformer.weights import MOLFORMER_ID, MOLFORMER_REVISION, published_folder

TINY = Path(__file__).parents[1] / "fixtures" / "molformer" / "tiny"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An HF cache holding the pinned revision (our tiny reference folder stands in for it)."""
    repo = tmp_path / ("models--" + MOLFORMER_ID.replace("/", "--"))
    shutil.copytree(TINY, repo / "snapshots" / MOLFORMER_REVISION)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_published_weights_come_from_the_cache_without_hub_code(hub_cache):
    backbone = load_backbone("molformer", corpus=[])
    assert isinstance(backbone.encoder, MoLFormerModel)
    assert (backbone.source, backbone.revision) == ("molformer", MOLFORMER_REVISION)
    assert backbone.implementation == IMPLEMENTATION and backbone.pretrained
    stored = load_file(TINY / "model.safetensors")
    assert torch.equal(
        backbone.encoder.encoder.layer[2].output.dense.weight,
        stored["molformer.encoder.layer.2.output.dense.weight"],
    )
    assert backbone.encoder.config.deterministic_eval  # the published config says so or not
    assert backbone.tokenizer("CCO")["input_ids"] == [0, 5, 5, 13, 1]


def test_a_run_on_it_rebuilds_from_its_checkpoint(hub_cache, tmp_path):
    torch.manual_seed(0)
    backbone = load_backbone("molformer", corpus=[])
    cfg = RunConfig(backbone="molformer", adapter="lora", adapter_args={"r": 2})
    model = assemble(backbone, cfg, 1.5, 0.7).eval()
    batch = backbone.tokenizer(["CCO", "c1ccccc1O"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(batch["input_ids"], batch["attention_mask"])
    save_checkpoint(model, backbone, cfg, tmp_path / "ckpt")
    info = (tmp_path / "ckpt" / "backbone.json").read_text()
    assert MOLFORMER_REVISION in info and IMPLEMENTATION in info
    rebuilt, _, _ = load_checkpoint(tmp_path / "ckpt")
    with torch.no_grad():
        after = rebuilt(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(before, after, atol=1e-6)


def test_missing_weights_say_how_to_get_them_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as err:
        load_backbone("molformer", corpus=[])
    message = str(err.value)
    assert f"hf download {MOLFORMER_ID} --revision {MOLFORMER_REVISION}" in message
    assert "HF_HUB_OFFLINE=1" in message and "--backbone PATH" in message


def test_a_copied_folder_works_as_backbone_path(tmp_path):
    folder = tmp_path / "MoLFormer-XL"
    shutil.copytree(TINY, folder)
    backbone = load_backbone(str(folder), corpus=[])
    assert isinstance(backbone.encoder, MoLFormerModel) and backbone.folder == folder


def test_pickled_weights_alone_are_refused(tmp_path):
    folder = tmp_path / "bin-only"
    shutil.copytree(TINY, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ConfigError, match="pytorch_model.bin is refused"):
        load_backbone(str(folder), corpus=[])


def test_weights_of_another_shape_are_named(tmp_path):
    folder = tmp_path / "wrong"
    shutil.copytree(TINY, folder)
    weights = load_file(folder / "model.safetensors")
    weights["molformer.encoder.layer.1.intermediate.dense.weight"] = torch.zeros(7, 24)
    save_file(weights, folder / "model.safetensors")
    with pytest.raises(ConfigError, match=r"shape: molformer|layer\.1\.intermediate\.dense"):
        load_backbone(str(folder), corpus=[])


def test_cache_lookup_is_pinned_to_the_revision(tmp_path, monkeypatch):
    repo = tmp_path / ("models--" + MOLFORMER_ID.replace("/", "--"))
    shutil.copytree(TINY, repo / "snapshots" / ("0" * 40))  # another revision only
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="not in the Hugging Face cache"):
        published_folder(cache_dir=tmp_path)


def test_molformer_tiny_saves_and_loads_by_auto_classes(tmp_path):
    from transformers import AutoModel

    backbone = load_backbone("molformer-tiny", ["CCO", "c1ccccc1"])
    backbone.encoder.save_pretrained(tmp_path / "enc")
    again = AutoModel.from_pretrained(tmp_path / "enc")  # no remote code: our registered class
    assert isinstance(again, MoLFormerModel)
    for (name, a), (_, b) in zip(backbone.encoder.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_weights_without_random_features_load_the_same_every_time(tmp_path):
    folder = tmp_path / "no-features"
    shutil.copytree(TINY, folder)
    weights = load_file(folder / "model.safetensors")
    save_file(
        {k: v for k, v in weights.items() if "feature_map" not in k}, folder / "model.safetensors"
    )
    first, second = (load_backbone(str(folder), corpus=[]).encoder for _ in range(2))
    stored = weights["molformer.encoder.layer.0.attention.self.feature_map.weight"]
    drawn = first.encoder.layer[0].attention.self.feature_map.weight
    assert drawn.shape == stored.shape and not torch.equal(drawn, stored)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
