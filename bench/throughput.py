"""Training throughput (molecules per second) of lipo's batching against the alternatives.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/throughput.py [--quick]

Contenders, each timed with lipo's own training step (``lipo.train.train_epoch``) on the same
model and the same Lipophilicity training molecules, interleaved in rounds:
  ours      per-batch padding, batches grouped by length (lipo's loaders)
  random    per-batch padding, random order
  pad300    every batch padded to 300 tokens, as the original study did
  trainer   a plain Hugging Face Trainer with length grouping on the same model (our step
            must not be slower)
then a MoLFormer-sized encoder (12 layers, width 768, random weights), ours against pad300 for
a few steps (left out by ``--quick``, which takes under a minute). The last line is
``speedup_vs_pad300=X`` (default backbone, ours / pad300).
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
from transformers import RoFormerModel

from common import (StepTimer, endless, headline, interleaved, machine, parser, setup,
                    trial_run, workspace)
from hf_trainer import TrainerSteps
from lipo.backbones import roformer_config
from lipo.batching import Collate
from lipo.config import RunConfig
from lipo.model import assemble

PAD_TO = 300
LARGE_BATCHES = 3  # a padded MoLFormer-sized step takes most of a minute on one CPU thread
LARGE = {"num_hidden_layers": 12, "hidden_size": 768, "embedding_size": 768,
         "num_attention_heads": 12, "intermediate_size": 3072}


def padded(batch: dict, pad_id: int) -> dict:
    pad = (0, PAD_TO - batch["input_ids"].shape[1])
    return {**batch, "input_ids": torch.nn.functional.pad(batch["input_ids"], pad, value=pad_id),
            "attention_mask": torch.nn.functional.pad(batch["attention_mask"], pad)}


def random_order(run, pad_to_300: bool, seed: int = 0):
    """Per-batch padding in a fresh random order each pass; optionally padded to 300."""
    collate, size = Collate(run.data, run.backbone.tokenizer.pad_token_id), run.cfg.batch_size
    rng = np.random.default_rng(seed)

    def one_pass():
        order = rng.permutation(run.split.train)
        for start in range(0, len(order), size):
            batch = collate(order[start:start + size].tolist())
            yield padded(batch, collate.pad_id) if pad_to_300 else batch
    return one_pass


class Tally:
    """Counts the molecules that pass through, so each rate divides by what was trained."""

    def __init__(self, batches):
        self.batches, self.molecules = batches, 0

    def take(self, n: int):
        for batch in itertools.islice(self.batches, n):
            self.molecules += len(batch["labels"])
            yield batch


def rates(run, model, modes: tuple[str, ...], batches: int, rounds: int,
          trainer: TrainerSteps | None = None) -> dict[str, float]:
    """Molecules per second of each mode: ``batches`` timed batches each, in ``rounds``."""
    sources = {"ours": lambda: run.loader(run.split.train, shuffle=True),
               "random": random_order(run, False), "pad300": random_order(run, True)}
    timer = StepTimer(model, run.cfg, run.accelerator)
    tallies = {m: Tally(endless(sources[m])) for m in modes}
    for tally in tallies.values():  # the first step warms up allocators and kernels
        timer.seconds(tally.take(1), 1)
        tally.molecules = 0
    chunk = max(1, batches // rounds)
    contenders = {m: (lambda t=t: timer.seconds(t.take(chunk), chunk)) for m, t in tallies.items()}
    if trainer is not None:
        contenders["trainer"] = lambda: trainer.seconds(chunk)
    spent = interleaved(contenders, rounds)
    molecules = {m: t.molecules for m, t in tallies.items()}
    molecules["trainer"] = rounds * chunk * run.cfg.batch_size  # full batches: 3360 = 105 x 32
    return {m: molecules[m] / spent[m] for m in contenders}


def report(label: str, found: dict[str, float]) -> None:
    for mode, rate in found.items():
        print(f"{label:10s} {mode:8s} {rate:8.1f} molecules/s  ({rate / found['pad300']:.2f}x pad300,"
              f" {rate / found['ours']:.2f}x ours)", flush=True)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="few batches, no large model: under a minute")
    p.add_argument("--backbone", default="mini")
    p.add_argument("--batches", type=int, help="timed batches per contender (default 40, quick 4)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 4, quick 2)")
    p.add_argument("--no-trainer", action="store_true", help="leave out the HF Trainer")
    args = p.parse_args()
    setup(args.threads)
    batches = args.batches or (4 if args.quick else 40)
    rounds = min(args.rounds or (2 if args.quick else 4), batches)
    run = trial_run(RunConfig(backbone=args.backbone), workspace())
    model = run.new_model()
    tokens = np.array([len(i) for i in run.data.ids])
    print(machine())
    print(f"tokens per molecule: mean {tokens.mean():.1f}, max {tokens.max()}; batch "
          f"{run.cfg.batch_size}; {batches} timed batches per contender in {rounds} rounds")
    trainer = None if args.no_trainer else TrainerSteps(
        model, run.backbone.tokenizer, [run.data.ids[i] for i in run.split.train],
        run.ws.mols.y[run.split.train], run.cfg)
    found = rates(run, model, ("ours", "random", "pad300"), batches, rounds, trainer)
    report(args.backbone, found)
    if trainer is not None:
        print(f"ours_vs_hf_trainer={found['ours'] / found['trainer']:.2f}")
    if not args.quick:  # a MoLFormer-sized step takes seconds on a CPU
        large = large_model(run)
        report("12x768", rates(run, large, ("ours", "pad300"), LARGE_BATCHES, 1))
    headline("speedup_vs_pad300", found["ours"] / found["pad300"])


def large_model(run):
    """MoLFormer-sized: 12 layers, width 768, 12 heads (random weights; speed only)."""
    torch.manual_seed(0)
    config = roformer_config("mini", run.backbone.tokenizer)
    config.update(LARGE)
    run.backbone.encoder = RoFormerModel(config)
    return assemble(run.backbone, run.cfg, 0.0, 1.0)


if __name__ == "__main__":
    main()
