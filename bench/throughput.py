"""Training throughput (molecules per second) of lipo's batching against the alternatives.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/throughput.py \
        [--quick]
    [--precision bf16]   # lipo's contenders in bf16 autocast (a GPU; leave out the Trainer)

Contenders, each timed with lipo's own training step (``lipo.training.steps.Steps``) on the same
model and the same Lipophilicity training molecules, interleaved in rounds:
  ours      per-batch padding, batches grouped by length (lipo's loaders)
  random    per-batch padding, random order
  pad300    every batch padded to 300 tokens, as the original study did
and, in whole passes over the same 1600 training molecules (one length group of 50 batches
for both samplers; 192 with ``--quick``), interleaved in 4 rounds:
  trainer   a plain Hugging Face Trainer with length grouping on the same model, against our
            loop and loaders (ours must not be slower)
then a MoLFormer-sized encoder (12 layers, width 768, random weights), ours against pad300 for
a few batches of 8 (left out by ``--quick``, which takes under a minute). The last line is
``speedup_vs_pad300=X`` (default backbone, ours / pad300).
"""

from __future__ import annotations

import numpy as np
import torch
from common import (
    StepTimer,
    Tally,
    endless,
    headline,
    interleaved,
    machine,
    molecule_rates,
    parser,
    setup,
    trial_run,
    workspace,
)
from hf_trainer import TrainerEpochs
from transformers import RoFormerModel

from lipo.config import RunConfig
from lipo.data.batching import Collate
from lipo.models.backbones import roformer_config
from lipo.models.regressor import assemble

PAD_TO = 300
# A padded MoLFormer-sized step of 32 took 185 s on one shared CPU thread: fewer, smaller batches.
LARGE_BATCHES, LARGE_BATCH_SIZE = 4, 8
LARGE = {
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "embedding_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}


def padded(batch: dict, pad_id: int) -> dict:
    pad = (0, PAD_TO - batch["input_ids"].shape[1])
    return {
        **batch,
        "input_ids": torch.nn.functional.pad(batch["input_ids"], pad, value=pad_id),
        "attention_mask": torch.nn.functional.pad(batch["attention_mask"], pad),
    }


def random_order(run, pad_to_300: bool, seed: int = 0):
    """Per-batch padding in a fresh random order each pass; optionally padded to 300."""
    collate, size = Collate(run.data, run.backbone.tokenizer.pad_token_id), run.cfg.batch_size
    rng = np.random.default_rng(seed)

    def one_pass():
        order = rng.permutation(run.split.train)
        for start in range(0, len(order), size):
            batch = collate(order[start : start + size].tolist())
            yield padded(batch, collate.pad_id) if pad_to_300 else batch

    return one_pass


def rates(run, model, modes: tuple[str, ...], batches: int, rounds: int) -> dict[str, float]:
    """Molecules per second of each mode: ``batches`` timed batches each, in ``rounds``."""
    sources = {
        "ours": lambda: run.loader(run.split.train, shuffle=True),
        "random": random_order(run, False),
        "pad300": random_order(run, True),
    }
    timer = StepTimer(model, run.cfg, run.accelerator)
    return molecule_rates({m: (timer, Tally(endless(sources[m]))) for m in modes}, batches, rounds)


def versus_trainer(run, model, n_molecules: int, rounds: int) -> float:
    """Our epoch over ``n_molecules`` training molecules / the HF Trainer's, in molecules per
    second, each timed from its first step to its last."""
    size = run.cfg.batch_size
    subset = run.split.train[: n_molecules // size * size]  # whole batches: both count alike
    trainer = TrainerEpochs(
        model,
        run.backbone.tokenizer,
        [run.data.ids[i] for i in subset],
        run.ws.mols.y[subset],
        run.cfg,
    )
    timer = StepTimer(model, run.cfg, run.accelerator)
    steps = len(subset) // size

    def ours() -> float:
        return timer.seconds(run.loader(subset, shuffle=True), steps)

    spent = interleaved({"ours": ours, "trainer": trainer.seconds}, rounds)
    rate = {name: rounds * steps * size / seconds for name, seconds in spent.items()}
    print(
        f"{run.cfg.backbone:10s} whole epochs over {len(subset)} molecules, {rounds} rounds: "
        f"ours {rate['ours']:.1f}, HF Trainer {rate['trainer']:.1f} molecules/s",
        flush=True,
    )
    return rate["ours"] / rate["trainer"]


def report(label: str, found: dict[str, float]) -> None:
    for mode, rate in found.items():
        print(
            f"{label:10s} {mode:8s} {rate:8.1f} molecules/s  ({rate / found['pad300']:.2f}x "
            f"pad300, {rate / found['ours']:.2f}x ours)",
            flush=True,
        )


def main() -> None:
    p = parser(__doc__)
    p.add_argument(
        "--quick", action="store_true", help="few batches, no large model: under a minute"
    )
    p.add_argument("--backbone", default="mini")
    p.add_argument("--batches", type=int, help="timed batches per contender (default 40, quick 4)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 4, quick 2)")
    p.add_argument(
        "--trainer-molecules",
        type=int,
        help="molecules per epoch in the HF Trainer "
        "comparison (default 1600, quick 192; 0 leaves it out)",
    )
    p.add_argument("--trainer-rounds", type=int, help="default 4, quick 2")
    args = p.parse_args()
    setup(args.threads, args.precision)
    batches = args.batches or (4 if args.quick else 40)
    rounds = min(args.rounds or (2 if args.quick else 4), batches)
    run = trial_run(RunConfig(backbone=args.backbone), workspace())
    model = run.new_model()
    tokens = np.array([len(i) for i in run.data.ids])
    print(f"{machine()}; precision {args.precision}")
    print(
        f"tokens per molecule: mean {tokens.mean():.1f}, max {tokens.max()}; batch "
        f"{run.cfg.batch_size}; {batches} timed batches per contender in {rounds} rounds"
    )
    found = rates(run, model, ("ours", "random", "pad300"), batches, rounds)
    report(args.backbone, found)
    trainer_molecules = 192 if args.quick else 1600
    if args.trainer_molecules is not None:
        trainer_molecules = args.trainer_molecules
    if trainer_molecules:
        rounds = args.trainer_rounds or (2 if args.quick else 4)
        ratio = versus_trainer(run, model, trainer_molecules, rounds)
        print(f"ours_vs_hf_trainer={ratio:.2f}")
    if not args.quick:  # a MoLFormer-sized step takes seconds on a CPU
        large_run = trial_run(run.cfg.replace(batch_size=LARGE_BATCH_SIZE), run.ws)
        large = large_model(large_run)
        report("12x768", rates(large_run, large, ("ours", "pad300"), LARGE_BATCHES, 2))
    headline("speedup_vs_pad300", found["ours"] / found["pad300"])


def large_model(run):
    """MoLFormer-sized: 12 layers, width 768, 12 heads (random weights; speed only)."""
    run.new_model()  # lipo's tokenizer and encoded molecules
    torch.manual_seed(0)
    config = roformer_config("mini", run.backbone.tokenizer)
    config.update(LARGE)
    run.backbone.encoder = RoFormerModel(config)
    return assemble(run.backbone, run.cfg, 0.0, 1.0)


if __name__ == "__main__":
    main()
