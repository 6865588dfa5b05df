"""Fine-tuning cost of encoder sizes, as ratios to the shipped ``mini`` (4 layers, width 128).

    python bench/model_size.py [--batches N]

Times N training batches (32 Lipophilicity training molecules each, per-batch padding, grouped
by length) of full fine-tuning for each size, interleaved so that a shared CPU slows them
alike, and prints parameters and time per batch relative to ``mini``. The default ``lora``
study spends ~17 min on ``mini`` on a 2-core CPU; a size whose ratio exceeds 20/17 would break
its 20-minute budget. Last line: ``next_size_cost_vs_mini=X``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import RoFormerModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipo.backbones import load_backbone, roformer_config  # noqa: E402
from lipo.batching import EncodedMolecules, make_loader  # noqa: E402
from lipo.config import RunConfig  # noqa: E402
from lipo.data import load_molecules, locate  # noqa: E402
from lipo.experiment import count_params  # noqa: E402
from lipo.model import assemble  # noqa: E402
from lipo.splits import make_split  # noqa: E402

SIZES = {"mini 4x128": (4, 128, 4), "6x192": (6, 192, 6), "8x256": (8, 256, 8)}


def build(tokenizer, layers, width, heads):
    config = roformer_config("mini", tokenizer)
    config.update({"num_hidden_layers": layers, "hidden_size": width, "embedding_size": width,
                   "num_attention_heads": heads, "intermediate_size": 4 * width})
    backbone = load_backbone("mini", [])
    backbone.encoder = RoFormerModel(config)
    return assemble(backbone, RunConfig(), 0.0, 1.0)


def step(model, optimizer, batch) -> None:
    loss = torch.nn.functional.mse_loss(model(batch["input_ids"], batch["attention_mask"]),
                                        batch["labels"] * 0)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=20)
    args = p.parse_args()
    transformers.logging.set_verbosity_error()  # the MLM head left out of the encoder is expected
    mols = load_molecules(locate(None))
    train = make_split("random", mols, 0).train
    tokenizer = load_backbone("mini", []).tokenizer
    data = EncodedMolecules(tokenizer(mols.smiles)["input_ids"], mols.y)
    batches = list(make_loader(data, train, 32, tokenizer.pad_token_id, True))[:args.batches + 1]
    torch.manual_seed(0)
    models = {name: build(tokenizer, *shape) for name, shape in SIZES.items()}
    optimisers = {n: torch.optim.AdamW(m.parameters(), lr=1e-4) for n, m in models.items()}
    spent = {name: 0.0 for name in models}
    for i, batch in enumerate(batches):
        for name, model in models.items():  # interleaved: the same load for every size
            started = time.perf_counter()
            step(model.train(), optimisers[name], batch)
            if i > 0:  # the first batch warms up
                spent[name] += time.perf_counter() - started
    base = spent["mini 4x128"]
    for name, model in models.items():
        params = count_params(model)["total_params"]
        print(f"{name:11s} {params / 1e6:6.2f} M parameters  {spent[name] / args.batches * 1000:7.1f}"
              f" ms/batch  {spent[name] / base:5.2f}x mini")
    print(f"next_size_cost_vs_mini={spent['6x192'] / base:.2f}")


if __name__ == "__main__":
    main()
