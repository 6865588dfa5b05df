"""Cost of a training step per adapter, against the full fine-tune of the same encoder.

    OMP_NUM_THREADS=2 LIPO_DATA_DIR=../shared/data python bench/adapter_cost.py --threads 2 \
        [--backbone mini] [--batch-size 16] [--batches 60] [--rounds 3] [--quick]

An adapter trains fewer weights, but each step still runs the whole encoder forward and
backward, and LoRA adds its low-rank products beside every targeted layer: on a small encoder
and a CPU the step can cost more than the full fine-tune's. This times lipo's own training
step (``lipo.training.steps.Steps``, through ``bench/common.StepTimer``) on the same
Lipophilicity batches (lipo's loaders, canonical SMILES) for each contender, interleaved in
rounds, and prints molecules per second and the ratio to ``full``. The last line is
``lora_all_r16_vs_full=X`` (step time of LoRA r16 on every layer / the full fine-tune's).
"""

from __future__ import annotations

from common import (
    StepTimer,
    Tally,
    endless,
    headline,
    machine,
    molecule_rates,
    parser,
    setup,
    trial_run,
    workspace,
)

from lipo.config import RunConfig

CONTENDERS = {
    "full": ("full", {}),
    "lora_all_r16": ("lora", {"r": 16, "alpha": 16, "dropout": 0.05, "targets": "all"}),
    "lora_all_r16_nodrop": ("lora", {"r": 16, "alpha": 16, "dropout": 0.0, "targets": "all"}),
    "lora_all_r8": ("lora", {"r": 8, "alpha": 16, "dropout": 0.05, "targets": "all"}),
    "lora_all_r32": ("lora", {"r": 32, "alpha": 32, "dropout": 0.05, "targets": "all"}),
    "lora_attention_r16": (
        "lora",
        {"r": 16, "alpha": 16, "dropout": 0.05, "targets": "attention"},
    ),
    "ia3": ("ia3", {}),
    "bitfit": ("bitfit", {}),
}
QUICK = ("full", "lora_all_r16", "lora_attention_r16")


def timer_of(name: str, backbone: str, batch_size: int, ws):
    adapter, args = CONTENDERS[name]
    cfg = RunConfig(backbone=backbone, adapter=adapter, adapter_args=args, batch_size=batch_size)
    run = trial_run(cfg, ws)
    model = run.new_model()  # a fresh encoder each: PEFT changes the one it wraps
    batches = Tally(endless(lambda: run.loader(run.split.train, shuffle=True)))
    return StepTimer(model, cfg, run.accelerator), batches, run.param_counts


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--backbone", default="mini")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--batches", type=int, help="timed batches per contender (default 60)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}; 6 batches")
    args = p.parse_args()
    setup(args.threads, args.precision)
    names = QUICK if args.quick else tuple(CONTENDERS)
    batches = args.batches or (6 if args.quick else 60)
    rounds = min(args.rounds, batches)
    ws = workspace()
    timers = {name: timer_of(name, args.backbone, args.batch_size, ws) for name in names}
    print(f"{machine()}; precision {args.precision}")
    print(
        f"{args.backbone}, batch {args.batch_size}: {batches} timed batches per contender "
        f"in {rounds} rounds"
    )
    rate = molecule_rates({n: (t, s) for n, (t, s, _) in timers.items()}, batches, rounds)
    for name in names:
        trainable = timers[name][2].get("trainable_params", 0)
        print(
            f"{name:20s} {rate[name]:8.1f} molecules/s  step time {rate['full'] / rate[name]:.2f}x "
            f"full  ({trainable:,} trainable weights)",
            flush=True,
        )
    headline("lora_all_r16_vs_full", rate["full"] / rate["lora_all_r16"])


if __name__ == "__main__":
    main()
