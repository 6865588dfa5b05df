"""``python launch.py predict``: rebuild a run's model from its checkpoint and predict logD.

Several runs (``--run A --run B``, or ``--study NAME --final``: every final seed of the study's
best settings) predict as an ensemble: their mean, their spread, and with ``--mc-dropout N``
the MC-dropout spread. Rows that cannot be read are kept in the output with the reason.
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
from lipo.devices import inference_device, loader_options
from lipo.errors import ConfigError, DataError
from lipo.trial_run import MAX_TOKENS
from lipo.features import compute


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launch.py predict",
                                description="Predict logD for SMILES with a trained run.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--run", action="extend", nargs="+",
                       help="MLflow run id of a finished trial or final run; several (--run A B, "
                            "or --run A --run B) predict as an ensemble")
    where.add_argument("--checkpoint", help="a checkpoint folder (the run's 'checkpoint' artifact)")
    where.add_argument("--study", help="with --final: every final run (one per seed) of the "
                                       "study's best settings, as an ensemble")
    p.add_argument("--final", action="store_true", help="with --study: its final runs")
    p.add_argument("--mc-dropout", type=int, default=0, metavar="N",
                   help="N forward passes per member with dropout on: adds logd_mc_std")
    p.add_argument("--smiles", required=True,
                   help="CSV with a SMILES column, or a text file with one SMILES per line")
    p.add_argument("--out", help="CSV to write (default: standard output)")
    p.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto",
                   help="auto (default: the GPU when there is one), cpu, cuda or cuda:N")
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
    device = next(model.parameters()).device  # where the model is, the batches go
    for batch in make_loader(data, positions, batch_size, tokenizer.pad_token_id,
                             shuffle=False, **loader_options(device)):
        z = model(*(on(batch.get(k), device) for k in ("input_ids", "attention_mask", "features")))
        np.add.at(sums, batch["origin"].numpy(), model.to_logd(z).double().cpu().numpy())
    return sums / (1 + tta)


def on(tensor, device):
    return None if tensor is None else tensor.to(device, non_blocking=True)


def parse(raw: list[str]) -> tuple[list, list[int]]:
    """Canonical SMILES (None where RDKit fails) and the positions of the valid rows."""
    canon = [canonical(s) if s.strip() else None for s in raw]
    return canon, [i for i, c in enumerate(canon) if c]


def table(raw: list[str], canon: list, valid: list[int], columns: dict) -> pd.DataFrame:
    """The output: one row per input row; predicted columns are NaN for unparsable rows."""
    out = {"row": range(len(raw)), "smiles": raw, "canonical_smiles": canon}
    for name, values in columns.items():
        full = np.full(len(raw), np.nan)
        full[valid] = values
        out[name] = full
    out["error"] = ["" if c else "RDKit cannot parse this SMILES" for c in canon]
    return pd.DataFrame(out)


def predictions_table(model, tokenizer, cfg, raw: list[str], batch_size: int) -> pd.DataFrame:
    canon, valid = parse(raw)
    pred = (predict_logd(model, tokenizer, cfg, [canon[i] for i in valid], batch_size)
            if valid else np.empty(0))
    return table(raw, canon, valid, {"logd_pred": pred})


def check(args) -> None:
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if args.mc_dropout < 0 or args.mc_dropout == 1:
        raise ConfigError(f"--mc-dropout {args.mc_dropout}: give 2 or more passes (0: off)")
    if bool(args.study) != args.final:
        raise ConfigError("--study NAME and --final go together: predict with the study's "
                          "final runs")


def main(argv: list[str]) -> None:
    from lipo.ensemble import combine, mc_dropout  # it builds on predict_logd, defined here
    args = parser().parse_args(argv)
    check(args)
    device = inference_device(args.device)  # a GPU that is not there fails before any work
    raw = read_smiles(Path(args.smiles))
    canon, valid = parse(raw)
    smiles = [canon[i] for i in valid]
    preds, draws = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in checkpoints(args, Path(tmp)):
            model, tokenizer, cfg = load_checkpoint(folder)
            model.to(device)
            if smiles:
                preds.append(predict_logd(model, tokenizer, cfg, smiles, args.batch_size))
                if args.mc_dropout:
                    draws.append(mc_dropout(model, tokenizer, cfg, smiles, args.mc_dropout,
                                            args.batch_size))
            else:
                preds.append(np.empty(0))
                draws.append(np.empty((args.mc_dropout, 0)))
    out = table(raw, canon, valid, combine(np.stack(preds), draws if args.mc_dropout else None))
    bad = int((out["error"] != "").sum())
    if bad:
        print(f"warning: {bad} of {len(out)} rows could not be parsed; kept with the reason",
              file=sys.stderr)
    out.to_csv(args.out if args.out else sys.stdout, index=False)


def checkpoints(args, tmp: Path) -> list[Path]:
    """The checkpoint folder of each member, downloaded from MLflow where needed."""
    if args.checkpoint:
        return [Path(args.checkpoint)]
    from lipo.ensemble import final_members
    from lipo.tracking import download_artifacts
    run_ids = final_members(args.tracking_uri, args.study) if args.study else args.run
    if args.study:
        print(f"ensemble of {len(run_ids)} final runs of {args.study}: {', '.join(run_ids)}",
              file=sys.stderr)
    return [download_artifacts(args.tracking_uri, run_id, "checkpoint", tmp / run_id)
            for run_id in dict.fromkeys(run_ids)]
