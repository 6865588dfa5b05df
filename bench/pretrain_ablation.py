"""Pre-training ablation at equal compute: each variant pre-trained for the same optimiser
steps and batch size, then fine-tuned the same way (full fine-tune, fixed recipe, seeds
0,1,2) on a split file; prints validation and test MSE per variant, mean ± std over seeds.

    LIPO_DATA_DIR=../shared/data python bench/pretrain_ablation.py --steps 8000 --out runs/

Variants: the new mix (MOSES train + ChEMBL x5) with and without the descriptor objective,
the old corpus (MOSES test split) with and without it, and ``--reference`` folders (for
example the shipped ``mini``) fine-tuned the same way. Pre-training runs as parallel
processes (one GPU holds them all; on a CPU run one at a time with ``--parallel 1``).
Selection between variants is by validation MSE; test MSE is shown beside it, never used.
Last line: ``descriptor_gain_val=X`` (val MSE without descriptors / with, new mix).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: pretrain flags
    "mix+desc": ["--descriptors", "1.0"],
    "mix": ["--descriptors", "0"],
    "old+desc": ["--corpus", "{data}/moses_test_smiles.csv.gz", "--descriptors", "1.0"],
    "old": ["--corpus", "{data}/moses_test_smiles.csv.gz", "--descriptors", "0"],
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", default="small")
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--reference", action="append", default=[], metavar="NAME=FOLDER|BACKBONE")
    p.add_argument("--split", default="splits/random_seed0.json", help="under LIPO_DATA_DIR")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr-finetune", type=float, default=3e-4)
    p.add_argument("--head-features", default="")
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--threads", type=int, default=2, help="CPU threads per fine-tuning process")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=0,
        help="wall-time safety per pre-training (its card says the steps it took)",
    )
    p.add_argument("--skip-pretrain", action="store_true")
    p.add_argument("--pretrain-only", action="store_true")
    p.add_argument("--limit", type=int, help="first N SMILES of each corpus (a quick check)")
    return p.parse_args()


def pretrain(name: str, args) -> Path:
    out = args.out / name
    data = os.environ["LIPO_DATA_DIR"]
    flags = [f.format(data=data) for f in VARIANTS[name]]
    cmd = [
        sys.executable,
        str(ROOT / "launch.py"),
        "pretrain",
        "--size",
        args.size,
        "--epochs",
        "100",
        "--max-steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--lr",
        str(args.lr),
        "--save-every",
        "1000",
        "--tracking-uri",
        "none",
        "--max-minutes",
        str(args.max_minutes),
        "--out",
        str(out),
        *flags,
    ] + (["--limit", str(args.limit)] if args.limit else [])
    with open(args.out / f"{name}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=args.out)
    return out


def finetune(job: tuple[str, str, int, dict]) -> dict:
    name, backbone, seed, opts = job
    sys.path.insert(0, str(ROOT))
    import torch

    from lipo.config import RunConfig
    from lipo.runtime.devices import machine_precision
    from lipo.runtime.distributed import make_accelerator
    from lipo.training.trial_run import TrialRun, Workspace, train_trial

    torch.set_num_threads(opts["threads"])
    split = str(Path(os.environ["LIPO_DATA_DIR"]) / opts["split"])
    cfg = RunConfig(
        backbone=backbone,
        split=split,
        seed=seed,
        epochs=opts["epochs"],
        patience=5,
        lr=opts["lr"],
        phase="final",
        head_features=opts["head_features"],
    )
    ws = Workspace.load(None, split, 0, strict=False)
    run = TrialRun(cfg, ws, make_accelerator(machine_precision(None)))
    result = train_trial(run)
    val, _ = run.evaluate(result.model, "val")
    test, _ = run.evaluate(result.model, "test")
    return {
        "variant": name,
        "seed": seed,
        "val_mse": val["val/mse"],
        "test_mse": test["test/mse"],
        "best_epoch": result.best_epoch,
    }


def table(rows: list[dict]) -> str:
    lines = ["| variant | val MSE | test MSE | seeds |", "|---|---|---|---|"]
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        val = np.array([r["val_mse"] for r in mine])
        test = np.array([r["test_mse"] for r in mine])
        lines.append(
            f"| {name} | {val.mean():.3f} ± {val.std(ddof=1) if len(val) > 1 else 0:.3f}"
            f" | {test.mean():.3f} ± {test.std(ddof=1) if len(test) > 1 else 0:.3f}"
            f" | {len(mine)} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.variants.split(",") if n]
    with ProcessPoolExecutor(max(1, min(args.parallel, len(names)))) as pool:
        if args.skip_pretrain:
            folders = {n: args.out / n for n in names}
        else:
            folders = dict(zip(names, pool.map(pretrain, names, [args] * len(names))))
    if args.pretrain_only:
        return
    backbones = {n: str(f) for n, f in folders.items()}
    backbones.update(dict(r.split("=", 1) for r in args.reference))
    opts = {
        "split": args.split,
        "epochs": args.epochs,
        "lr": args.lr_finetune,
        "head_features": args.head_features,
        "threads": args.threads,
    }
    jobs = [(n, b, int(s), opts) for n, b in backbones.items() for s in args.seeds.split(",")]
    rows = []
    with ProcessPoolExecutor(args.parallel) as pool:
        for done in as_completed([pool.submit(finetune, job) for job in jobs]):
            rows.append(done.result())  # written as they come: a cut run keeps what finished
            (args.out / "finetune.json").write_text(json.dumps(rows, indent=2))
    print(table(rows))
    by = {n: np.mean([r["val_mse"] for r in rows if r["variant"] == n]) for n in backbones}
    if "mix" in by and "mix+desc" in by:
        from common import headline

        headline("descriptor_gain_val", by["mix"] / by["mix+desc"])


if __name__ == "__main__":
    main()
