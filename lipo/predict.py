"""``python launch.py predict``: rebuild a run's model from its checkpoint and predict logD.

Rows that cannot be read are kept in the output with the reason, so nothing is lost.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lipo.augment import Spellings
from lipo.batching import EncodedMolecules, make_loader
from lipo.checkpoint import load_checkpoint
from lipo.data import SMILES_COLUMNS, canonical, read_table
from lipo.errors import ConfigError, DataError
from lipo.experiment import MAX_TOKENS
from lipo.features import compute


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launch.py predict",
                                description="Predict logD for SMILES with a trained run.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--run", help="MLflow run id of a finished trial or final run")
    where.add_argument("--checkpoint", help="a checkpoint folder (the run's 'checkpoint' artifact)")
    p.add_argument("--smiles", required=True,
                   help="CSV with a SMILES column, or a text file with one SMILES per line")
    p.add_argument("--out", help="CSV to write (default: standard output)")
    p.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    p.add_argument("--batch-size", type=int, default=128)
    return p


def read_smiles(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: no such file (given by --smiles)")
    frame = read_table(path)
    for column in SMILES_COLUMNS:
        if column in frame.columns:
            return [str(s) if isinstance(s, str) else "" for s in frame[column]]
    # No header: one SMILES per line, the first line included.
    lines = path.read_text().splitlines()
    return [line.split(",")[0].strip() for line in lines]


@torch.no_grad()
def predict_logd(model, tokenizer, cfg, smiles: list[str], batch_size: int = 128) -> np.ndarray:
    """logD per SMILES; with the run's ``tta``, the mean over the canonical SMILES and the
    same randomised spellings the run's evaluation averaged over."""
    ids = tokenizer(smiles, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    data = EncodedMolecules(ids, np.zeros(len(smiles), dtype=np.float32),
                            compute(cfg.head_features, smiles), list(smiles))
    positions = np.arange(len(smiles))
    tta = cfg.tta
    if tta > 0:
        spell_ids, origin = Spellings(tokenizer, cfg.seed, MAX_TOKENS).rows(
            smiles, positions, tta, "tta")
        positions = np.concatenate([positions, data.respell(origin, spell_ids)])
    sums = np.zeros(len(smiles), dtype=np.float64)
    for batch in make_loader(data, positions, batch_size, tokenizer.pad_token_id,
                             shuffle=False):
        z = model(batch["input_ids"], batch["attention_mask"], batch.get("features"))
        np.add.at(sums, batch["origin"].numpy(), model.to_logd(z).double().numpy())
    return sums / (1 + tta)


def predictions_table(model, tokenizer, cfg, raw: list[str], batch_size: int) -> pd.DataFrame:
    canon = [canonical(s) if s.strip() else None for s in raw]
    valid = [i for i, c in enumerate(canon) if c]
    pred = np.full(len(raw), np.nan)
    if valid:
        pred[valid] = predict_logd(model, tokenizer, cfg, [canon[i] for i in valid], batch_size)
    return pd.DataFrame({"row": range(len(raw)), "smiles": raw, "canonical_smiles": canon,
                         "logd_pred": pred,
                         "error": ["" if c else "RDKit cannot parse this SMILES" for c in canon]})


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    raw = read_smiles(Path(args.smiles))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.checkpoint) if args.checkpoint else fetch(args, Path(tmp))
        model, tokenizer, cfg = load_checkpoint(folder)
        table = predictions_table(model, tokenizer, cfg, raw, args.batch_size)
    bad = int((table["error"] != "").sum())
    if bad:
        print(f"warning: {bad} of {len(table)} rows could not be parsed; kept with the reason",
              file=sys.stderr)
    table.to_csv(args.out if args.out else sys.stdout, index=False)


def fetch(args, tmp: Path) -> Path:
    from lipo.tracking import download_artifacts
    return download_artifacts(args.tracking_uri, args.run, "checkpoint", tmp)
