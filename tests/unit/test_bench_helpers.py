"""The benchmarks' shared pieces: the headline form, interleaved rounds, padding to 300,
the budget a search needed. Behaviour only: nothing here times anything."""

import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

common = pytest.importorskip("common")


def test_headline_is_one_name_value_line(capsys):
    common.headline("speedup_vs_pad300", 6.4321)
    name, value = capsys.readouterr().out.strip().split("=")
    assert name == "speedup_vs_pad300" and float(value) == pytest.approx(6.43)


def test_interleaved_runs_every_contender_once_per_round_in_turn():
    calls = []
    spent = common.interleaved(
        {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 2.0}, rounds=3
    )
    assert calls == ["a", "b"] * 3
    assert spent == {"a": 3.0, "b": 6.0}


def test_sized_loader_takes_the_next_n_batches_and_restarts_nothing():
    source = common.endless(lambda: [{"x": torch.tensor([i])} for i in range(3)])
    first = [b["x"].item() for b in common.Sized(source, 2, "cpu")]
    second = common.Sized(source, 4, "cpu")
    assert len(second) == 4
    assert first == [0, 1] and [b["x"].item() for b in second] == [2, 0, 1, 2]


def test_pad300_keeps_the_molecules_and_masks_the_padding():
    throughput = pytest.importorskip("throughput")
    batch = {
        "input_ids": torch.tensor([[5, 6, 7], [5, 6, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
        "labels": torch.ones(2),
    }
    out = throughput.padded(batch, pad_id=0)
    assert out["input_ids"].shape == (2, 300) and out["attention_mask"].shape == (2, 300)
    assert out["input_ids"][:, :3].tolist() == batch["input_ids"].tolist()
    assert out["attention_mask"].sum().item() == 5 and out["input_ids"][:, 3:].eq(0).all()


def test_budget_needed_is_the_first_point_at_or_below_the_target():
    sweep_efficiency = pytest.importorskip("sweep_efficiency")
    curve = [(6, 1.2), (9, 0.9), (15, 0.8)]
    assert sweep_efficiency.needed(curve, 0.9) == 9
    assert sweep_efficiency.needed(curve, 0.5) is None


def test_budget_ratio_averages_needs_over_seeds_and_counts_a_miss_as_the_budget(capsys):
    sweep_efficiency = pytest.importorskip("sweep_efficiency")
    curves = {
        (0, "random"): [(6, 1.0), (12, 0.8), (24, 0.8)],  # target 1.02 x 0.8
        (0, "hyperband"): [(6, 0.81), (24, 0.81)],
        (1, "random"): [(12, 1.0), (24, 0.9)],
        (1, "hyperband"): [(24, 1.0)],
    }  # never within 1.02 x 0.9
    ratio = sweep_efficiency.summarise(curves, [0, 1], ["random", "hyperband"], 24, "hyperband")
    assert ratio == pytest.approx((12 + 24) / 2 / ((6 + 24) / 2))
    assert ">24" in capsys.readouterr().out


@pytest.mark.parametrize(
    "script",
    sorted(p.name for p in BENCH.glob("*.py") if p.name not in ("common.py", "hf_trainer.py")),
)
def test_every_benchmark_documents_its_one_command(script):
    import ast

    doc = ast.get_docstring(ast.parse((BENCH / script).read_text()))
    assert f"python bench/{script}" in doc
    assert "headline(" in (BENCH / script).read_text()  # its last line is name=value
