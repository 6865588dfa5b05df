"""Fine-tuning cost of encoder sizes, as ratios to the shipped ``mini`` (4 layers, width 128).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/model_size.py \
        [--batches N]

Times N training batches (32 Lipophilicity training molecules each, per-batch padding, grouped
by length) of full fine-tuning for each size, interleaved so that a shared CPU slows them
alike, and prints parameters and time per batch relative to ``mini``. The default ``lora``
study spends ~17 min on ``mini`` on a 2-core CPU; a size whose ratio exceeds 20/17 would break
its 20-minute budget. Last line: ``next_size_cost_vs_mini=X``.
"""

from __future__ import annotations

import torch
from common import StepTimer, headline, interleaved, machine, parser, setup, trial_run, workspace
from transformers import RoFormerModel

from lipo.config import RunConfig
from lipo.models.backbones import load_backbone, roformer_config
from lipo.models.regressor import assemble
from lipo.training.trial_run import count_params

SIZES = {"mini 4x128": (4, 128, 4), "6x192": (6, 192, 6), "8x256": (8, 256, 8)}


def build(tokenizer, layers, width, heads):
    config = roformer_config("mini", tokenizer)
    config.update(
        {
            "num_hidden_layers": layers,
            "hidden_size": width,
            "embedding_size": width,
            "num_attention_heads": heads,
            "intermediate_size": 4 * width,
        }
    )
    backbone = load_backbone("mini", [])
    backbone.encoder = RoFormerModel(config)
    return assemble(backbone, RunConfig(), 0.0, 1.0)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batches", type=int, default=20)
    args = p.parse_args()
    setup(args.threads)
    run = trial_run(RunConfig(), workspace())
    run.new_model()  # lipo's tokenizer and encoded molecules
    batches = list(run.loader(run.split.train, shuffle=True))[: args.batches + 1]
    torch.manual_seed(0)
    models = {name: build(run.backbone.tokenizer, *shape) for name, shape in SIZES.items()}
    timers = {name: StepTimer(model, run.cfg, run.accelerator) for name, model in models.items()}
    print(machine())
    for timer in timers.values():  # the first batch warms up
        timer.seconds(batches[:1], 1)
    spent = dict.fromkeys(models, 0.0)
    for batch in batches[1:]:  # interleaved: the same load for every size
        step = interleaved({n: (lambda t=t: t.seconds([batch], 1)) for n, t in timers.items()}, 1)
        spent = {n: spent[n] + step[n] for n in spent}
    base = spent["mini 4x128"]
    for name, model in models.items():
        params = count_params(model)["total_params"]
        per_batch = spent[name] / args.batches * 1000
        print(
            f"{name:11s} {params / 1e6:6.2f} M parameters  {per_batch:7.1f}"
            f" ms/batch  {spent[name] / base:5.2f}x mini"
        )
    headline("next_size_cost_vs_mini", spent["6x192"] / base)


if __name__ == "__main__":
    main()
