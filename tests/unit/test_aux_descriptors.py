"""aux_descriptors: the pre-training descriptors as an auxiliary fine-tuning loss. The loss
adds the descriptor term, the shipped head predicts in pre-training's units, the head trains
with every adapter, a killed fit resumes to the same epochs, and what a model predicts (and
how its checkpoint and predictions table look) is as without it."""

import math

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.batching import EncodedMolecules, make_loader
from lipo.data.features import pretraining_descriptors
from lipo.data.splits import Split
from lipo.errors import ConfigError
from lipo.inference.predict import predictions_table
from lipo.masked_lm.continued import read_card
from lipo.masked_lm.descriptor_targets import NAMES
from lipo.models.backbones import SHIPPED, load_backbone
from lipo.models.checkpoint import load_checkpoint, save_checkpoint
from lipo.models.regressor import assemble
from lipo.training.fit import Regression, param_groups
from lipo.training.trial_run import TrialRun, Workspace

FEW = np.arange(120)  # 96 to train on (6 batches of 16), 24 to validate on


@pytest.mark.parametrize("weight", [-0.1, math.nan, math.inf, "0.5", True, None])
def test_a_weight_that_is_no_finite_number_at_least_zero_is_refused(weight):
    with pytest.raises(ConfigError, match="aux_descriptors"):
        RunConfig(aux_descriptors=weight)


def test_the_weight_is_a_knob_of_the_run():
    assert RunConfig().aux_descriptors == 0.0  # off: training as before
    cfg = RunConfig().with_overrides({"aux_descriptors": 0.5})
    assert cfg.flat()["aux_descriptors"] == 0.5
    assert RunConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="aux_descriptors"):
        RunConfig().with_overrides({"aux_descriptors": -1.0})


def a_batch(molecules, backbone, n=16):
    smiles = list(molecules.smiles[:n])
    ids = backbone.tokenizer(smiles)["input_ids"]
    data = EncodedMolecules(
        ids, molecules.y[:n], smiles=smiles, descriptors=pretraining_descriptors(smiles)
    )
    return next(iter(make_loader(data, np.arange(n), n, backbone.tokenizer.pad_token_id, False)))


def pooled(model, batch):
    hidden = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)


def test_the_loss_adds_the_weighted_descriptor_mse(molecules):
    torch.manual_seed(0)
    backbone = load_backbone("tiny", list(molecules.smiles[:16]))
    cfg = RunConfig(backbone="tiny", aux_descriptors=0.5, dropout=0.0)
    stats = (np.full(len(NAMES), 3.0), np.full(len(NAMES), 5.0))
    model = assemble(backbone, cfg, 2.0, 1.2, descriptor_stats=stats).eval()
    batch = a_batch(molecules, backbone)
    accelerator = Accelerator(cpu=True)
    with torch.no_grad():
        logd_only = Regression(model, accelerator, 1e-3).loss(batch)
        with_aux = Regression(model, accelerator, 1e-3, aux_weight=0.5)
        loss = with_aux.loss(batch)
        double = Regression(model, accelerator, 1e-3, aux_weight=1.0).loss(batch)
        # the descriptor term, computed here from the encoding and the table
        standardised = (batch["descriptors"] - 3.0) / 5.0
        mse = ((model.descriptor_head.net(pooled(model, batch)) - standardised) ** 2).mean()
    assert with_aux.aux_loss == pytest.approx(float(mse), rel=1e-5)
    assert float(loss) == pytest.approx(float(logd_only) + 0.5 * float(mse), rel=1e-5)
    assert float(loss - logd_only) > 0.1  # not a term that vanishes
    assert float(double - logd_only) == pytest.approx(float(mse), rel=1e-4)


def test_the_shipped_mini_head_predicts_in_pretrainings_units(molecules):
    """mini's head with the statistics in its card: the descriptors of Lipophilicity
    molecules, which pre-training never saw, within a fraction of their spread."""
    backbone = load_backbone("mini", [])
    model = assemble(backbone, RunConfig(aux_descriptors=1.0), 2.0, 1.2).eval()
    card = read_card(SHIPPED / "mini")["descriptors"]
    assert card["names"] == list(NAMES)
    assert model.descriptor_head.mean.tolist() == pytest.approx(card["mean"])
    assert model.descriptor_head.std.tolist() == pytest.approx(card["std"])
    batch = a_batch(molecules, backbone, n=64)
    with torch.no_grad():
        _, aux = model(batch["input_ids"], batch["attention_mask"], None, batch["descriptors"])
    assert float(aux) < 0.25  # a new head starts near 1 or above


def test_a_backbone_without_a_descriptor_head_gets_a_new_linear_one():
    backbone = load_backbone("tiny", ["CCO"])
    model = assemble(backbone, RunConfig(backbone="tiny", aux_descriptors=0.5), 0.0, 1.0)
    assert isinstance(model.descriptor_head.net, torch.nn.Linear)
    assert model.descriptor_head.net.out_features == len(NAMES)
    off = assemble(backbone, RunConfig(backbone="tiny"), 0.0, 1.0)
    assert off.descriptor_head is None and "descriptor_head" not in str(off.state_dict().keys())


@pytest.mark.parametrize("adapter", ["full", "lora", "ia3", "bitfit"])
def test_the_descriptor_head_trains_with_every_adapter(adapter):
    backbone = load_backbone("tiny", ["CCO"])
    cfg = RunConfig(backbone="tiny", adapter=adapter, aux_descriptors=0.5, head_lr_mult=10.0)
    model = assemble(backbone, cfg, 0.0, 1.0)
    used = [
        (n, p)
        for n, p in model.named_parameters()
        if "descriptor_head" in n and ".original_module." not in n
    ]
    assert len(used) == 2 and all(p.requires_grad for _, p in used)  # weight and bias
    rest, heads = param_groups(model, cfg)  # in the heads' group, at lr x head_lr_mult
    assert {id(p) for _, p in used} <= {id(p) for p in heads["params"]}


def fine_tune(molecules, root=None, accelerator=None, **changes):
    ws = Workspace(molecules, Split("few", FEW[:96], FEW[96:], FEW[96:]), "test")
    cfg = RunConfig(
        **{"backbone": "tiny", "epochs": 2, "patience": 5, "batch_size": 16, "lr": 1e-3, **changes}
    )
    run = TrialRun(cfg, ws, accelerator or Accelerator(cpu=True), state_root=root, save_every=4)
    return run, run.fit(run.new_model(), ws.split.train)


def test_a_tiny_fit_with_the_auxiliary_loss_predicts_as_any_fit(molecules, tmp_path):
    run, result = fine_tune(molecules, aux_descriptors=0.5, augment=1)
    assert [sorted(h) for h in result.history] == [
        ["train/aux_loss", "train/loss", "val/mae", "val/mse", "val/r2", "val/rmse"]
    ] * 2
    aux = [h["train/aux_loss"] for h in result.history]
    assert all(math.isfinite(a) and a > 0 for a in aux) and aux[1] < aux[0]  # it learns
    plain_run, plain = fine_tune(molecules)
    assert "train/aux_loss" not in plain.history[0]

    metrics, table = run.evaluate(result.model, "val")
    plain_metrics, plain_table = plain_run.evaluate(plain.model, "val")
    assert sorted(metrics) == sorted(plain_metrics) and list(table) == list(plain_table)
    assert table.shape == plain_table.shape

    folder = save_checkpoint(result.model, run.backbone, run.cfg, tmp_path / "checkpoint")
    model, tokenizer, cfg = load_checkpoint(folder)
    smiles = list(table["smiles"])
    out = predictions_table(model, tokenizer, cfg, smiles, 16)
    assert list(out) == ["row", "smiles", "canonical_smiles", "logd_pred", "error"]
    # the rebuilt model predicts what the trained one evaluated (no tta here)
    assert out["logd_pred"].to_numpy() == pytest.approx(table["y_pred"].to_numpy(), abs=1e-5)


def test_augmented_rows_share_their_molecules_descriptors(molecules):
    smiles = list(molecules.smiles[:4])
    table = pretraining_descriptors(smiles)
    data = EncodedMolecules([[1, 2]] * 4, np.zeros(4), smiles=smiles, descriptors=table)
    again = data.respell(np.array([2, 0]), [[3], [4]])
    batch = next(iter(make_loader(data, again, 2, 0, False)))
    assert batch["descriptors"].numpy().tolist() == table[[2, 0]].tolist()
    data.truncate(4)
    assert len(data.descriptors) == 4


class Interrupted(Exception):
    """Stands for a kill in the middle of a step."""


class StopsAt(Accelerator):
    def __init__(self, step: int):
        super().__init__(cpu=True)
        self.steps, self.stop_at = 0, step

    def backward(self, loss, **kwargs):
        self.steps += 1
        if self.steps == self.stop_at:
            raise Interrupted
        super().backward(loss, **kwargs)


def test_a_fit_killed_mid_epoch_resumes_to_the_same_auxiliary_losses(molecules, tmp_path):
    _, whole = fine_tune(molecules, aux_descriptors=0.5)
    with pytest.raises(Interrupted):  # during step 10 (epoch 2): the last state is step 8's
        fine_tune(molecules, tmp_path, StopsAt(10), aux_descriptors=0.5)
    _, resumed = fine_tune(molecules, tmp_path, aux_descriptors=0.5)
    for got, expected in zip(resumed.history, whole.history, strict=True):
        assert got == pytest.approx(expected, rel=1e-5)


def test_molecules_from_outside_the_table_bring_their_descriptors(molecules):
    ws = Workspace(molecules, Split("few", FEW[:96], FEW[96:], FEW[96:]), "test")
    run = TrialRun(RunConfig(backbone="tiny", aux_descriptors=0.5), ws, Accelerator(cpu=True))
    run.new_model()
    pool = ["CCO", "c1ccccc1O"]
    with run.extended(pool, np.zeros(2, dtype=np.float32)) as positions:
        batch = next(iter(run.loader(positions, False)))
        order = batch["positions"].numpy() - positions[0]  # batches go by token count
        expected = pretraining_descriptors(pool)[order]
        assert batch["descriptors"].numpy().tolist() == expected.tolist()
    assert len(run.data.descriptors) == len(molecules.smiles)
