"""Evaluation scores every molecule of a split part exactly once, whatever the sizes."""

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from lipo.data.batching import EncodedMolecules, make_loader
from lipo.metrics import regression_metrics
from lipo.runtime.gathering import PAD, gather_by_position
from lipo.training.fit import evaluate


class MeanTokenRegressor(torch.nn.Module):
    """Mean token embedding through a linear layer: enough to give each molecule its own
    prediction."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(130, 8)
        self.out = torch.nn.Linear(8, 1)

    def forward(self, input_ids, attention_mask, features=None):
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return self.out(pooled).squeeze(-1)

    def to_logd(self, z):
        return 2.0 * z + 1.0


def table(n: int = 450, seed: int = 0) -> EncodedMolecules:
    rng = np.random.default_rng(seed)
    ids = [list(range(3, 3 + int(k))) for k in rng.integers(5, 120, size=n)]
    return EncodedMolecules(ids, rng.normal(size=n).astype(np.float32))


@pytest.mark.parametrize("batch_size", [40, 64, 128])
def test_a_part_of_417_is_scored_once_per_molecule_in_one_process(batch_size):
    data, model = table(), MeanTokenRegressor()
    part = np.sort(np.random.default_rng(1).choice(450, size=417, replace=False))
    accelerator = Accelerator(cpu=True)
    loader = accelerator.prepare(make_loader(data, part, batch_size, pad_id=0, shuffle=False))
    metrics, (pred, y, positions) = evaluate(model, loader, accelerator, "val")
    assert sorted(positions.tolist()) == part.tolist()  # each once, none lost
    # The same molecules one at a time, without Accelerate: the same metrics.
    with torch.no_grad():
        single = [
            float(
                model.to_logd(
                    model(
                        torch.tensor([data.ids[p]]),
                        torch.ones(1, len(data.ids[p]), dtype=torch.long),
                    )
                )
            )
            for p in part
        ]
    expected = regression_metrics(data.targets[part].numpy(), single, "val")
    assert metrics == pytest.approx(expected, abs=1e-6)


def test_padding_rows_and_repeated_positions_are_dropped_in_first_seen_order():
    positions = torch.tensor([7, 3, 9, PAD, 3, 7])  # gathered: real rows, padding, copies
    values = torch.tensor([0.7, 0.3, 0.9, 0.0, 0.31, 0.71])
    pos, kept = gather_by_position(None, positions, values)
    assert pos.tolist() == [7, 3, 9]
    assert kept.tolist() == pytest.approx([0.7, 0.3, 0.9])
