"""``python launch.py predict``: logD for SMILES with a trained run, several runs, or a study's
final seeds.

``--run`` / ``--checkpoint``: one model, or several runs as an ensemble (their mean, spread and
with ``--mc-dropout N`` the MC-dropout spread). ``--study NAME --final``: every final seed of
the study's best settings, as the registered ensemble model predicts (``lipo.inference.bundle``):
also a conformal interval (``--coverage``) and the similarity to the training molecules. Rows
that cannot be read are kept in the output with the reason.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from lipo.data.molecules import SMILES_COLUMNS, read_table
from lipo.errors import ConfigError, DataError
from lipo.inference.conformal import DEFAULT_COVERAGE, check_coverage
from lipo.inference.ensemble import combine, final_member_runs, mc_dropout
from lipo.inference.predict import parse, predict_logd, table
from lipo.models.checkpoint import load_checkpoint
from lipo.runtime.devices import inference_device
from lipo.tracking.schema import DEFAULT_TRACKING_URI


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launch.py predict", description="Predict logD for SMILES with a trained run."
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--run",
        action="extend",
        nargs="+",
        help="MLflow run id of a finished trial or final run; several (--run A B, "
        "or --run A --run B) predict as an ensemble",
    )
    where.add_argument("--checkpoint", help="a checkpoint folder (the run's 'checkpoint' artifact)")
    where.add_argument(
        "--study",
        help="with --final: every final run (one per seed) of the "
        "study's best settings, as an ensemble with a conformal "
        "interval and the similarity to the training set",
    )
    p.add_argument("--final", action="store_true", help="with --study: its final runs")
    p.add_argument(
        "--coverage",
        type=float,
        default=DEFAULT_COVERAGE,
        help="with --study --final: the interval's coverage (default %(default)s)",
    )
    p.add_argument(
        "--mc-dropout",
        type=int,
        default=0,
        metavar="N",
        help="N forward passes per member with dropout on: adds logd_mc_std",
    )
    p.add_argument(
        "--smiles",
        required=True,
        help="CSV with a SMILES column, or a text file with one SMILES per line",
    )
    p.add_argument("--out", help="CSV to write (default: standard output)")
    p.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--device",
        default="auto",
        help="auto (default: the GPU when there is one), cpu, cuda or cuda:N",
    )
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


def check(args) -> None:
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if args.mc_dropout < 0 or args.mc_dropout == 1:
        raise ConfigError(f"--mc-dropout {args.mc_dropout}: give 2 or more passes (0: off)")
    if bool(args.study) != args.final:
        raise ConfigError(
            "--study NAME and --final go together: predict with the study's final runs"
        )
    try:
        check_coverage(args.coverage)
    except ValueError as exc:
        raise ConfigError(f"--coverage: {exc}") from None


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    check(args)
    device = inference_device(args.device)  # a GPU that is not there fails before any work
    raw = read_smiles(Path(args.smiles))
    out = study_ensemble(args, raw, device) if args.study else runs_ensemble(args, raw, device)
    bad = int((out["error"] != "").sum())
    if bad:
        print(
            f"warning: {bad} of {len(out)} rows could not be parsed; kept with the reason",
            file=sys.stderr,
        )
    out.to_csv(args.out if args.out else sys.stdout, index=False)


def runs_ensemble(args, raw: list[str], device):
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
                    draws.append(
                        mc_dropout(model, tokenizer, cfg, smiles, args.mc_dropout, args.batch_size)
                    )
            else:
                preds.append(np.empty(0))
                draws.append(np.empty((args.mc_dropout, 0)))
    return table(raw, canon, valid, combine(np.stack(preds), draws if args.mc_dropout else None))


def study_ensemble(args, raw: list[str], device):
    """The study's final seeds as one ``Bundle``, built here from MLflow the way the final
    phase builds the registered model: calibrated on the runs' validation predictions, the
    training molecules from the runs' data and split (checked against their sha256)."""
    from lipo.inference.bundle import Bundle, gather_members, write_bundle
    from lipo.report.references import rebuild_split
    from lipo.tracking.store import download_artifacts

    runs, refits = final_member_runs(args.tracking_uri, args.study)
    print(
        f"ensemble of {len(runs)} final runs of {args.study}: {', '.join(r.run_id for r in runs)}"
        + (f" ({sum(r.run_id in refits for r in runs)} served as their refits)" if refits else ""),
        file=sys.stderr,
    )
    mols, split = rebuild_split(runs[0].params, runs[0].tags.get("lipo.split_sha256", ""))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        members = gather_members(
            partial(download_artifacts, args.tracking_uri),
            [(int(r.tags["lipo.seed"]), r.run_id) for r in runs],
            folder,
            refits,
        )
        train = split.part("train")
        write_bundle(folder, members, [mols.smiles[i] for i in train], args.coverage, mols.y[train])
        return Bundle(folder, device).table(raw, args.batch_size, args.mc_dropout)


def checkpoints(args, tmp: Path) -> list[Path]:
    """The checkpoint folder of each member, downloaded from MLflow where needed."""
    if args.checkpoint:
        return [Path(args.checkpoint)]
    from lipo.tracking.store import download_artifacts

    return [
        download_artifacts(args.tracking_uri, run_id, "checkpoint", tmp / run_id)
        for run_id in dict.fromkeys(args.run)
    ]
