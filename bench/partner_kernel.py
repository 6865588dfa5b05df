"""The descriptor partner's kernel model, chosen on validation: for each candidate (the SVR's C
and the descriptor RBF's share of the kernel) the partner (the boosters' mean averaged with the
kernel model, ``lipo.inference.partner``) is fitted on each split file's training molecules and
scored by its validation MSE; the mean over the split files chooses. The boosters alone are the
baseline, measured in the same run. Test MSE (the partner refitted on training + validation, as
served) is printed beside and never used.

    LIPO_DATA_DIR=../shared/data python bench/partner_kernel.py \\
        [--splits splits/random_seed0.json,splits/scaffold.json] [--c 10,30] [--share 0,0.3,0.5]

Last line: ``val_mse_chosen_over_boosters=X`` (the chosen candidate's mean validation MSE over
the boosters' alone).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import headline, machine  # noqa: E402

from lipo.data.molecules import data_dir  # noqa: E402
from lipo.inference.kernel import KERNEL, fit_kernel  # noqa: E402
from lipo.inference.partner import cached_boosters, partner_features, predict  # noqa: E402
from lipo.training.trial_run import Workspace  # noqa: E402

SPLITS = ",".join(
    f"splits/{name}.json" for name in ("random_seed0", "random_seed1", "random_seed2", "scaffold")
)


def parts(split: str) -> dict:
    """Per part of the split file (a path, else under LIPO_DATA_DIR): SMILES, logD and the
    partner's feature rows."""
    path = Path(split)
    if not path.is_file() and data_dir() is not None:
        path = data_dir() / split
    ws = Workspace.load(None, str(path), 0, strict=False)
    out = {}
    for name in ("train", "val", "test"):
        rows = ws.split.part(name)
        smiles = [ws.mols.smiles[i] for i in rows]
        out[name] = (smiles, ws.mols.y[rows], partner_features(smiles, cached=True))
    return out


def mse(pred, y) -> float:
    return float(np.mean((np.asarray(pred) - y) ** 2))


def score_split(data: dict, candidates: list[dict]) -> dict:
    """{candidate index or 'boosters': (val MSE, test MSE)} on one split file."""
    (ts, ty, tx), (vs, vy, vx), (_, sy, sx) = data["train"], data["val"], data["test"]
    seen, seen_y, seen_x = ts + vs, np.concatenate([ty, vy]), np.vstack([tx, vx])
    boosters_val = predict(cached_boosters(ts, ty, rows=lambda: tx), vx)
    boosters_test = predict(cached_boosters(seen, seen_y, rows=lambda: seen_x), sx)
    scores = {"boosters": (mse(boosters_val, vy), mse(boosters_test, sy))}
    for i, params in enumerate(candidates):
        val = (boosters_val + fit_kernel(tx, ty, params).predict(vx)) / 2
        test = (boosters_test + fit_kernel(seen_x, seen_y, params).predict(sx)) / 2
        scores[i] = (mse(val, vy), mse(test, sy))
    return scores


def label(params: dict) -> str:
    return f"SVR C {params['C']:g}, descriptor share {params['descriptor_share']:g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--splits", default=SPLITS, help="comma-separated split files")
    p.add_argument("--c", default="10,30", help="the SVR's C values")
    p.add_argument("--share", default="0,0.3,0.5", help="the descriptor RBF's shares")
    args = p.parse_args()
    splits = args.splits.split(",")
    candidates = [
        {**KERNEL, "C": float(c), "descriptor_share": float(s)}
        for c, s in itertools.product(args.c.split(","), args.share.split(","))
    ]
    print(machine(), flush=True)
    start, table = time.time(), {}
    for split in splits:
        table[split] = score_split(parts(split), candidates)
        print(f"{split}: scored in {time.time() - start:.0f} s", flush=True)
    keys = ["boosters", *range(len(candidates))]
    names = {"boosters": "the boosters alone (baseline)", **dict(enumerate(map(label, candidates)))}
    mean_val = {k: statistics.mean(table[s][k][0] for s in splits) for k in keys}
    print("| partner | val MSE: " + " | ".join(splits) + " | mean | test MSE (not used) |")
    print("|---|" + "---|" * (len(splits) + 2))
    for k in keys:
        vals = " | ".join(f"{table[s][k][0]:.4f}" for s in splits)
        tests = ", ".join(f"{table[s][k][1]:.4f}" for s in splits)
        print(f"| {names[k]} | {vals} | {mean_val[k]:.4f} | {tests} |")
    chosen = min(range(len(candidates)), key=mean_val.get)
    print(f"chosen on validation: {names[chosen]}")
    headline("val_mse_chosen_over_boosters", mean_val[chosen] / mean_val["boosters"])


if __name__ == "__main__":
    main()
