"""LoRA and IA3 checkpoints are PEFT's own format: PEFT alone, on the base model that
``lipo.models.checkpoint.base_model`` builds, reproduces the trained model's predictions."""

import json

import pytest
import torch
from peft import PeftModel

from lipo.config import RunConfig
from lipo.models.backbones import load_backbone
from lipo.models.checkpoint import base_model, save_checkpoint
from lipo.models.regressor import assemble


def trained(adapter: str):
    torch.manual_seed(7)  # not the run's seed: a weight left unloaded would not match by luck
    backbone = load_backbone("tiny", ["CCO", "c1ccccc1O"])
    cfg = RunConfig(backbone="tiny", adapter=adapter, seed=0)
    model = assemble(backbone, cfg, 2.0, 1.2)
    with torch.no_grad():  # move every trainable weight away from its initial value
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return model.eval(), backbone, cfg


@pytest.mark.parametrize("adapter", ["lora", "ia3"])
def test_peft_alone_reproduces_predictions(tmp_path, adapter):
    model, backbone, cfg = trained(adapter)
    batch = backbone.tokenizer(["CCO", "c1ccccc1O"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model.to_logd(model(batch["input_ids"], batch["attention_mask"]))
    folder = save_checkpoint(model, backbone, cfg, tmp_path / "checkpoint")
    assert {p.name for p in (folder / "adapter").iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["head"] and config["base_model_name_or_path"] == "tiny"
    assert not (folder / "weights.safetensors").exists()  # one copy of the weights, PEFT's
    loaded = PeftModel.from_pretrained(base_model(folder), folder / "adapter").eval()
    with torch.no_grad():
        after = loaded.to_logd(loaded(batch["input_ids"], batch["attention_mask"]))
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


def test_bitfit_keeps_lipo_format(tmp_path):
    model, backbone, cfg = trained("bitfit")
    folder = save_checkpoint(model, backbone, cfg, tmp_path / "checkpoint")
    assert (folder / "weights.safetensors").is_file() and not (folder / "adapter").exists()
