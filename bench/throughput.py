"""Training throughput (molecules per second) of our batching against the original study's.

    python bench/throughput.py [--quick] [--backbone mini]

Modes, each timed on the same model and the same Lipophilicity training molecules:
  ours      per-batch padding, batches grouped by length (lipo's loaders)
  random    per-batch padding, random order
  pad300    every batch padded to 300 tokens, as the original study did
and, for a MoLFormer-sized encoder (12 layers, width 768, random weights), ours against pad300
for a few steps (left out by ``--quick``, which takes under a minute). Ratios are measured side by side in one run; absolute figures mean little on a
shared CPU. The last line is ``speedup_vs_pad300=X`` (default backbone, ours / pad300).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import RoFormerModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipo.backbones import load_backbone, roformer_config  # noqa: E402
from lipo.batching import Collate, EncodedMolecules, make_loader  # noqa: E402
from lipo.config import RunConfig  # noqa: E402
from lipo.data import load_molecules, locate  # noqa: E402
from lipo.model import assemble  # noqa: E402
from lipo.splits import make_split  # noqa: E402

PAD_TO = 300


def batches(mode: str, data: EncodedMolecules, positions, size: int, pad_id: int, seed: int):
    if mode == "ours":
        yield from make_loader(data, positions, size, pad_id, shuffle=True, seed=seed)
        return
    order = np.random.default_rng(seed).permutation(positions)
    collate = Collate(data, pad_id)
    for start in range(0, len(order), size):
        batch = collate(order[start:start + size].tolist())
        if mode == "pad300":
            width = batch["input_ids"].shape[1]
            pad = (0, PAD_TO - width)
            batch["input_ids"] = torch.nn.functional.pad(batch["input_ids"], pad, value=pad_id)
            batch["attention_mask"] = torch.nn.functional.pad(batch["attention_mask"], pad)
        yield batch


def molecules_per_second(model, mode, data, positions, size, pad_id, max_batches) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    seen, started = 0, None
    for i, batch in enumerate(batches(mode, data, positions, size, pad_id, seed=0)):
        if i == 1:  # the first step warms up allocators and kernels
            seen, started = 0, time.perf_counter()
        if i > max_batches:
            break
        loss = torch.nn.functional.mse_loss(
            model(batch["input_ids"], batch["attention_mask"]), batch["labels"] * 0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        seen += len(batch["labels"])
    return seen / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few batches: under a minute")
    p.add_argument("--backbone", default="mini")
    args = p.parse_args()
    transformers.logging.set_verbosity_error()  # the MLM head left out of the encoder is expected
    mols = load_molecules(locate(None))
    train = make_split("random", mols, 0).train
    n_batches = 4 if args.quick else 40
    backbone = load_backbone(args.backbone, [mols.smiles[i] for i in train])
    ids = backbone.tokenizer(mols.smiles)["input_ids"]
    data = EncodedMolecules(ids, mols.y)
    pad = backbone.tokenizer.pad_token_id
    model = assemble(backbone, RunConfig(backbone=args.backbone), 0.0, 1.0)
    rates = {m: molecules_per_second(model, m, data, train, 32, pad, n_batches)
             for m in ("ours", "random", "pad300")}
    tokens = np.array([len(i) for i in ids])
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; tokens per molecule mean {tokens.mean():.1f}, "
          f"max {tokens.max()}")
    for mode, rate in rates.items():
        print(f"{args.backbone:10s} {mode:7s} {rate:8.1f} molecules/s  "
              f"({rate / rates['pad300']:.2f}x pad300)")
    if not args.quick:  # a MoLFormer-sized step takes seconds on a CPU: not in --quick
        large_model_ratio(backbone, data, train, pad)
    print(f"speedup_vs_pad300={rates['ours'] / rates['pad300']:.2f}")


def large_model_ratio(backbone, data, train, pad) -> None:
    """MoLFormer-sized: 12 layers, width 768, 12 heads (random weights; speed only)."""
    torch.manual_seed(0)
    config = roformer_config("mini", backbone.tokenizer)
    config.update({"num_hidden_layers": 12, "hidden_size": 768, "embedding_size": 768,
                   "num_attention_heads": 12, "intermediate_size": 3072})
    backbone.encoder = RoFormerModel(config)
    large = assemble(backbone, RunConfig(), 0.0, 1.0)
    ours = molecules_per_second(large, "ours", data, train, 32, pad, 6)
    padded = molecules_per_second(large, "pad300", data, train, 32, pad, 6)
    print(f"{'12x768':10s} ours    {ours:8.1f} molecules/s  ({ours / padded:.2f}x pad300)")


if __name__ == "__main__":
    main()
