"""``python launch.py pretrain``: masked-LM pre-training of one of our encoders on a mix of
SMILES corpora, optionally with an auxiliary regression of RDKit descriptors, tracked in
MLflow, resumable, saved with ``save_pretrained`` plus a model card."""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from accelerate.utils import set_seed
from transformers import AutoTokenizer, RoFormerForMaskedLM

from lipo.data.molecules import data_dir
from lipo.errors import DataError
from lipo.masked_lm.card import write_card
from lipo.masked_lm.continued import (
    HEAD_FILE,
    StartingPoint,
    load_descriptor_head,
    resolve_size,
    starting_point,
    total_steps_after,
)
from lipo.masked_lm.corpus import CorpusSpec, coverage, mix, read_smiles, variants
from lipo.masked_lm.loop import MLMSettings, train_mlm
from lipo.models.backbones import SIZES, roformer_config
from lipo.models.tokenizer import PRETRAIN_MAX_TOKENS, build_tokenizer
from lipo.tracking.schema import DEFAULT_TRACKING_URI

# The default mix: MOSES's training set (drug-like, neutral, no stereo) and ChEMBL molecules
# (stereo, charges, long chains) weighted 5x; together they cover 99.9% of Lipophilicity's
# molecules (every token seen 10 times; none longer than the longest corpus molecule).
DEFAULT_CORPORA = (
    "pretrain/moses_train_smiles.csv.gz",
    "pretrain/chembl_moleculeace_smiles.csv.gz:5",
)
TASK_FILE = "lipophilicity.csv"  # coverage is measured against it; it is never trained on
DEFAULT_SIZE = "small"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launch.py pretrain", description="Masked-LM pre-training on a mix of SMILES corpora."
    )
    p.add_argument(
        "--corpus",
        action="append",
        metavar="CSV[:WEIGHT]",
        help="a CSV(.gz) with a SMILES column, repeatable; WEIGHT: times each molecule "
        "appears per epoch (default: "
        + ", ".join(f"$LIPO_DATA_DIR/{c}" for c in DEFAULT_CORPORA)
        + ")",
    )
    p.add_argument(
        "--size", choices=sorted(SIZES), help=f"encoder size (default: {DEFAULT_SIZE}, or --init's)"
    )
    p.add_argument(
        "--init",
        metavar="ENCODER",
        help="continue pre-training a saved encoder (a shipped name such as mini, "
        "or a folder written by pretrain): its tokenizer, weights and "
        "descriptor head; the schedule starts afresh",
    )
    p.add_argument("--out", help="output folder (default mlruns/pretrained/SIZE)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0, help="stop after N optimiser steps")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=0,
        help="stop at the first 50-step mark past this wall time (saved, resumable)",
    )
    p.add_argument("--limit", type=int, help="use only the first N SMILES of each corpus (tests)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--mask-prob", type=float, default=0.15)
    p.add_argument(
        "--descriptors",
        type=float,
        default=1.0,
        metavar="WEIGHT",
        help="weight of the RDKit-descriptor regression beside the masked-LM loss "
        "(0: masked-LM only)",
    )
    p.add_argument(
        "--randomised",
        type=int,
        default=0,
        metavar="K",
        help="add K randomised SMILES of each training molecule",
    )
    p.add_argument(
        "--stereo",
        type=int,
        default=0,
        metavar="K",
        help="add up to K stereoisomers of each molecule with unassigned centres",
    )
    p.add_argument("--processes", type=int, help="worker processes for RDKit (default: all cores)")
    p.add_argument("--heldout", type=float, default=0.02, help="fraction held out for the loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=300, help="steps between resumable states")
    p.add_argument(
        "--heldout-every",
        type=int,
        default=1000,
        metavar="N",
        help="steps between held-out evaluations (masked-LM loss, accuracy and descriptor MSE, "
        "logged at their step; 0: at epoch ends and the end only)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        help="number format of the forward pass (default: bf16 on a GPU that has it, else fp32)",
    )
    p.add_argument(
        "--tracking-uri",
        default=DEFAULT_TRACKING_URI,
        help="MLflow tracking URI; 'none' to train without MLflow",
    )
    return p


def corpus_specs(given: list[str] | None) -> list[CorpusSpec]:
    if given:
        return [CorpusSpec.parse(text) for text in given]
    if data_dir() is None:
        raise DataError(
            "give --corpus FILE[:WEIGHT] or set LIPO_DATA_DIR to a folder holding "
            + " and ".join(c.split(":")[0] for c in DEFAULT_CORPORA)
        )
    return [CorpusSpec.parse(str(data_dir() / c)) for c in DEFAULT_CORPORA]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_corpora(specs, args):
    """Held-out molecules per corpus before mixing, so no repeat of a training molecule is
    held out; variants are made of training molecules only."""
    parts, heldout, sources = [], [], []
    for i, spec in enumerate(specs):
        smiles = read_smiles(spec.path, args.limit)
        order = np.random.default_rng([args.seed, i]).permutation(len(smiles))
        n_held = max(1, int(args.heldout * len(smiles)))
        heldout += [smiles[j] for j in order[:n_held]]
        parts.append((spec, [smiles[j] for j in sorted(order[n_held:])]))
        sources.append(
            {
                "file": spec.path.name,
                "sha256": sha256_of(spec.path),
                "weight": spec.weight,
                "smiles": len(smiles),
            }
        )
    train = mix(parts, args.seed)
    unique = list(dict.fromkeys(s for _, part in parts for s in part))
    train += variants(unique, args.randomised, args.stereo, args.seed, args.processes)
    return train, heldout, sources


def task_coverage(train: list[str]) -> dict[str, float]:
    path = data_dir() / TASK_FILE if data_dir() is not None else None
    if path is None or not path.is_file():
        return {}
    return coverage(train, read_smiles(path))


def descriptor_arrays(train, heldout, args):
    """Standardised descriptor targets of each molecule, or (None, None, {})."""
    if args.descriptors <= 0:
        return None, None, {}
    from lipo.masked_lm.descriptor_targets import NAMES, descriptor_targets, standardise

    unique = list(dict.fromkeys(train + heldout))
    table, mean, std = standardise(descriptor_targets(unique, args.processes))
    row = {s: i for i, s in enumerate(unique)}
    stats = {"names": list(NAMES), "mean": mean.tolist(), "std": std.tolist()}
    return (table[[row[s] for s in train]], table[[row[s] for s in heldout]], stats)


def build_model(args, tokenizer, n_targets: int, start: StartingPoint | None):
    model = mlm = (
        RoFormerForMaskedLM.from_pretrained(start.folder, use_safetensors=True)
        if start
        else RoFormerForMaskedLM(roformer_config(args.size, tokenizer))
    )
    if n_targets:
        from lipo.masked_lm.model import DescriptorPretraining

        model = DescriptorPretraining(mlm, n_targets, args.descriptors)
        if start:
            load_descriptor_head(start, model)
    return model


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    start = starting_point(args.init) if args.init else None
    args.size = resolve_size(args.size, start, DEFAULT_SIZE)
    from lipo.runtime.devices import machine_precision
    from lipo.runtime.distributed import close_accelerator, make_accelerator

    accelerator = make_accelerator(machine_precision(args.precision))
    out = Path(args.out or Path("mlruns") / "pretrained" / args.size)
    train, heldout, sources = split_corpora(corpus_specs(args.corpus), args)
    covered = task_coverage(train)
    train_targets, heldout_targets, stats = descriptor_arrays(train, heldout, args)
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(start.folder) if start else build_tokenizer(train)
    model = build_model(args, tokenizer, len(stats.get("names", ())), start)

    def encode(items):
        return tokenizer(items, truncation=True, max_length=PRETRAIN_MAX_TOKENS)["input_ids"]

    settings = MLMSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        mask_prob=args.mask_prob,
        seed=args.seed,
        save_every=args.save_every,
        heldout_every=args.heldout_every,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
    )
    tracker, run_id = start_tracking(args, sources, out, accelerator, len(train), len(heldout))
    log = (lambda m, step: tracker.log_metrics(run_id, m, step)) if tracker else (lambda m, s: None)
    log(covered, 0)
    started = time.time()
    final = train_mlm(
        model,
        tokenizer,
        encode(train),
        encode(heldout),
        settings,
        accelerator,
        log,
        state_dir=out / "state",
        desc=f"pretrain {args.size}",
        train_targets=train_targets,
        heldout_targets=heldout_targets,
    )
    steps = final.pop("steps")
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(model)
        save(model, tokenizer, out)
        card = {
            "corpora": sources,
            "train_smiles": len(train),
            "heldout_smiles": len(heldout),
            "size": args.size,
            "config": model.config.to_diff_dict(),
            "objective": "masked-LM" + (f" + {args.descriptors} x descriptors" if stats else ""),
            "descriptors": stats,
            "steps": steps,
            **({"continued_from": start.describe()} if start else {}),
            **total_steps_after(start, steps),
            "seed": args.seed,
            "settings": settings.__dict__,
            **covered,
            **final,
            "wall_time_s": round(time.time() - started),
            "command": portable_command(argv),
        }
        write_card(out, card)
        if tracker:
            tracker.log_metrics(run_id, final, steps)  # at its step, the curve's last point
            tracker.log_artifact(run_id, out / "README.md")
            tracker.finish(run_id)
        print(
            f"saved {out}: held-out masked-token loss {final['heldout/mlm_loss']:.4f}, "
            f"accuracy {final['heldout/accuracy']:.3f}"
        )
    close_accelerator(accelerator)


def save(model, tokenizer, out: Path) -> None:
    """The encoder as a masked-LM folder (AutoModel reads its encoder); the descriptor head,
    when there is one, beside it."""
    mlm = getattr(model, "mlm", model)
    mlm.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if mlm is not model:
        from safetensors.torch import save_file

        save_file(
            {k: v.contiguous() for k, v in model.descriptor_head.state_dict().items()},
            out / HEAD_FILE,
        )


def portable_command(argv: list[str]) -> str:
    """The command as run, each absolute path reduced to its file name: the card ships with
    the weights, and a folder of the machine that trained them means nothing elsewhere."""

    def portable(arg: str) -> str:
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("--") and Path(value).is_absolute():
            return f"{flag}={Path(value).name}"
        return Path(arg).name if Path(arg).is_absolute() else arg

    return "python launch.py pretrain " + shlex.join(portable(a) for a in argv)


def start_tracking(args, sources, out, accelerator, n_train, n_heldout):
    if not accelerator.is_main_process or args.tracking_uri.lower() == "none":
        return None, None
    from lipo.tracking.store import Tracker

    tracker = Tracker(args.tracking_uri, "pretrain")
    resume = out / "state" / "mlflow_run_id"
    if resume.is_file():  # an interrupted run goes on logging into the same MLflow run
        return tracker, resume.read_text().strip()
    corpora = ", ".join(f"{s['file']}:{s['weight']:g}" for s in sources)
    run_id = tracker.start_run(
        f"pretrain {args.size}",
        {"lipo.phase": "pretrain", "lipo.backbone": args.size},
        params={
            **vars(args),
            "corpus": corpora,
            "train_smiles": n_train,
            "heldout_smiles": n_heldout,
        },
    )
    resume.parent.mkdir(parents=True, exist_ok=True)
    resume.write_text(run_id)
    return tracker, run_id


if __name__ == "__main__":
    main(sys.argv[1:])
