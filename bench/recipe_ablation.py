"""Fine-tuning recipe ablation: one fixed recipe (the settings a study's final phase trains),
each variant changing a few of its knobs, every variant fine-tuned on seeds 0,1,2 of one split
file; prints validation MSE (which chooses), test MSE of the seeds and of their ensemble (the
seeds' mean prediction, what ``predict --final`` serves), shown beside it and never used.

    OMP_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/recipe_ablation.py \\
        --variants plain,rdkit2d --out runs/recipe [--recipe '{"lr": 4e-4}'] [--parallel 2]

``--recipe``: JSON of RunConfig knobs over RECIPE (the default study's chosen settings).
Variants are named in VARIANTS (``--variant NAME='{"knob": value}'`` adds one). Results are
written to ``OUT/rows.json`` as each fit ends, and a rerun skips the fits already there, so an
interrupted ablation goes on where it stopped. Last line: ``val_mse_best_over_plain=X``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# baseline's search on mini-30500 (random_seed0, 12 epochs) chose these:
# lipo/pretrained/mini-30500/README.md
RECIPE = {
    "lr": 4.1304e-4,
    "weight_decay": 0.014487,
    "dropout": 3.4e-5,
    "batch_size": 16,
    "warmup_frac": 0.037252,
    "augment": 2,
    "tta": 4,
    "epochs": 12,
    "patience": 12,  # baseline's DEFAULTS (the card's tables before it: patience 3)
}
VARIANTS = {
    "plain": {},
    "rdkit2d": {"head_features": "rdkit2d"},
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--variant", action="append", default=[], metavar="NAME=JSON")
    p.add_argument("--recipe", default="{}", help="JSON: knobs over the fixed recipe")
    p.add_argument("--backbone", default="mini")
    p.add_argument("--split", default="splits/random_seed0.json", help="under LIPO_DATA_DIR")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="CPU threads per fine-tuning process")
    return p.parse_args()


def finetune(job: dict) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from lipo.config import RunConfig
    from lipo.runtime.devices import machine_precision
    from lipo.runtime.distributed import make_accelerator, quieten
    from lipo.training.trial_run import TrialRun, Workspace, train_trial

    torch.set_num_threads(job["threads"])
    quieten(True)
    split = str(Path(os.environ["LIPO_DATA_DIR"]) / job["split"])
    cfg = RunConfig(backbone=job["backbone"], split=split, seed=job["seed"], phase="final")
    cfg = cfg.with_overrides(job["knobs"])
    ws = Workspace.load(None, split, 0, strict=False)
    run = TrialRun(cfg, ws, make_accelerator(machine_precision(None)))
    started = time.perf_counter()
    result = train_trial(run)
    seconds = time.perf_counter() - started
    val, _ = run.evaluate(result.model, "val")
    test, table = run.evaluate(result.model, "test")
    return {
        "variant": job["variant"],
        "seed": job["seed"],
        "knobs": job["knobs"],
        "val_mse": val["val/mse"],
        "test_mse": test["test/mse"],
        "best_epoch": result.best_epoch,
        "seconds": seconds,
        "test_rows": table["row"].tolist(),
        "test_true": table["y_true"].tolist(),
        "test_pred": table["y_pred"].tolist(),
    }


def ensemble_mse(rows: list[dict]) -> float:
    """Test MSE of the seeds' mean prediction, molecules matched by table row."""
    preds = [dict(zip(r["test_rows"], r["test_pred"])) for r in rows]
    truth = dict(zip(rows[0]["test_rows"], rows[0]["test_true"]))
    mean = np.array([np.mean([p[row] for p in preds]) for row in truth])
    return float(np.mean((mean - np.array(list(truth.values()))) ** 2))


def spread(values: list[float]) -> str:
    values = np.array(values)
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}"


def table(rows: list[dict], names: list[str]) -> str:
    lines = [
        "| variant | val MSE | test MSE | ensemble test MSE | best epochs | min per fit | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        mine = sorted((r for r in rows if r["variant"] == name), key=lambda r: r["seed"])
        if not mine:
            continue
        lines.append(
            f"| {name} | {spread([r['val_mse'] for r in mine])} "
            f"| {spread([r['test_mse'] for r in mine])} | {ensemble_mse(mine):.3f} "
            f"| {', '.join(str(r['best_epoch']) for r in mine)} "
            f"| {np.mean([r['seconds'] for r in mine]) / 60:.1f} | {len(mine)} |"
        )
    return "\n".join(lines)


def jobs(args, variants: dict, done: list[dict]) -> list[dict]:
    recipe = {**RECIPE, **json.loads(args.recipe)}
    finished = {(r["variant"], r["seed"]) for r in done}
    return [
        {
            "variant": name,
            "seed": int(seed),
            "knobs": {**recipe, **variants[name]},
            "backbone": args.backbone,
            "split": args.split,
            "threads": args.threads,
        }
        for name in variants
        for seed in args.seeds.split(",")
        if (name, int(seed)) not in finished
    ]


def main() -> None:
    args = parse()
    args.out.mkdir(parents=True, exist_ok=True)
    known = {**VARIANTS, **{n: json.loads(v) for n, v in (x.split("=", 1) for x in args.variant)}}
    names = [n for n in args.variants.split(",") if n] + [x.split("=", 1)[0] for x in args.variant]
    unknown = sorted(set(names) - set(known))
    if unknown:
        sys.exit(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    saved = args.out / "rows.json"
    rows = json.loads(saved.read_text()) if saved.exists() else []
    todo = jobs(args, {n: known[n] for n in names}, rows)
    print(f"{len(todo)} fits to run, {len(rows)} already in {saved}; load {os.getloadavg()[0]:.1f}")
    with ProcessPoolExecutor(max(1, args.parallel)) as pool:
        for finished in as_completed([pool.submit(finetune, job) for job in todo]):
            row = finished.result()
            rows.append(row)  # written as they come: a cut run keeps what finished
            saved.write_text(json.dumps(rows))
            print(f"{row['variant']} seed {row['seed']}: val {row['val_mse']:.4f}", flush=True)
    print(table(rows, names))
    by = {n: np.mean([r["val_mse"] for r in rows if r["variant"] == n]) for n in names}
    if "plain" in by:
        sys.path.insert(0, str(ROOT / "bench"))
        from common import headline

        headline("val_mse_best_over_plain", min(by.values()) / by["plain"])


if __name__ == "__main__":
    main()
