"""Randomised-SMILES augmentation and test-time averaging against plain fine-tuning.

    OMP_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/smiles_recipe.py \\
        [--backbone mini] [--epochs 4] [--augment 1] [--tta 4] [--plain-epochs E] \\
        [--head-lr-mult M] [--split FILE.json]

Fine-tunes the backbone (every weight, RunConfig's defaults otherwise) once with ``augment=0``
(for ``--plain-epochs``, default ``--epochs``: an epoch with ``augment`` N costs N+1 plain
ones, so ``--plain-epochs`` (N+1)E compares at equal compute) and once with ``--augment``,
one seed, then scores each best epoch on the validation split with and without ``--tta``
randomised SMILES averaged in. Never touches the test split. One
seed on ~420 validation molecules: differences under ~0.03 are noise. Last line:
``val_mse_recipe_minus_plain=X`` (augment and tta on, minus both off).
"""

from __future__ import annotations

import os
import time

from common import headline, machine, parser, setup, trial_run, workspace

from lipo.config import RunConfig


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--backbone", default="mini")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--augment", type=int, default=1)
    p.add_argument("--tta", type=int, default=4)
    p.add_argument("--plain-epochs", type=int, default=None)
    p.add_argument("--head-lr-mult", type=float, default=1.0)
    p.add_argument(
        "--split",
        default=os.path.join(os.environ.get("LIPO_DATA_DIR", "."), "splits", "random_seed0.json"),
    )
    args = p.parse_args()
    setup(args.threads)
    print(machine())
    ws = workspace(args.split)
    scores = {}
    for augment in (0, args.augment):
        epochs = args.plain_epochs or args.epochs if augment == 0 else args.epochs
        cfg = RunConfig(
            backbone=args.backbone,
            epochs=epochs,
            augment=augment,
            split=args.split,
            head_lr_mult=args.head_lr_mult,
        )
        run = trial_run(cfg, ws)
        started, before = time.perf_counter(), load()
        result = run.fit(run.new_model(), run.split.train)
        seconds = time.perf_counter() - started
        for tta in (0, args.tta):
            run.cfg = cfg.replace(tta=tta)
            scores[augment, tta] = run.evaluate(result.model, "val")[0]["val/mse"]
            print(
                f"augment={augment} tta={tta} epochs={epochs}: val/mse "
                f"{scores[augment, tta]:.4f} (best epoch {result.best_epoch}; fit "
                f"{seconds:.0f} s, load average {before} -> {load()})",
                flush=True,
            )
    headline("val_mse_recipe_minus_plain", scores[args.augment, args.tta] - scores[0, 0])


if __name__ == "__main__":
    main()
