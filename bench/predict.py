"""Batch prediction speed (molecules per second) of a trained model, through ``launch.py
predict``'s own path: checkpoint loaded, SMILES canonicalised by RDKit, length-grouped batches.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/predict.py \
        [--quick]

A model is fine-tuned for one epoch (``lipo.training.trial_run``), saved and loaded back as a
checkpoint (``lipo.models.checkpoint``), then, interleaved in rounds:
  batch    ``lipo.inference.predict.predictions_table`` on all 4200 Lipophilicity SMILES (batch 128)
  single   the same path one molecule at a time, on a tenth of them (the baseline)
The last line is ``predict_molecules_per_s=X`` (batch); the line before gives batch / single.
``--quick`` uses the ``tiny`` encoder and 500 molecules.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import headline, interleaved, machine, parser, setup, trial_run, workspace

from lipo.config import RunConfig
from lipo.inference.predict import predictions_table
from lipo.models.checkpoint import load_checkpoint, save_checkpoint


def trained_checkpoint(backbone: str, folder: Path) -> Path:
    run = trial_run(RunConfig(backbone=backbone, epochs=1), workspace())
    result = run.fit(run.new_model(), run.split.train)
    return save_checkpoint(result.model, run.backbone, run.cfg, folder / "checkpoint")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="tiny encoder, 500 molecules")
    p.add_argument("--backbone", help="default mini (quick: tiny)")
    p.add_argument("--batch-size", type=int, default=128, help="as launch.py predict")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    setup(args.threads)
    backbone = args.backbone or ("tiny" if args.quick else "mini")
    smiles = workspace().mols.smiles[: 500 if args.quick else None]
    single = smiles[::10]
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        model, tokenizer, cfg = load_checkpoint(trained_checkpoint(backbone, Path(tmp)))
    tables = {}

    def timed(name, molecules, batch_size):
        def measure() -> float:
            started = time.perf_counter()
            tables[name] = predictions_table(model, tokenizer, cfg, molecules, batch_size)
            return time.perf_counter() - started

        return measure

    spent = interleaved(
        {"batch": timed("batch", smiles, args.batch_size), "single": timed("single", single, 1)},
        args.rounds,
    )
    rate = {
        "batch": args.rounds * len(smiles) / spent["batch"],
        "single": args.rounds * len(single) / spent["single"],
    }
    same = tables["batch"]["logd_pred"].to_numpy()[::10] - tables["single"]["logd_pred"].to_numpy()
    print(
        f"{backbone}: batch of {args.batch_size} {rate['batch']:.1f} molecules/s over "
        f"{len(smiles)}; one at a time {rate['single']:.1f} molecules/s over {len(single)} "
        f"(largest difference between the two predictions {np.abs(same).max():.1e} logD)"
    )
    print(f"batch_vs_single={rate['batch'] / rate['single']:.2f}")
    headline("predict_molecules_per_s", rate["batch"])


if __name__ == "__main__":
    main()
