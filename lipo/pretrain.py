"""``python launch.py pretrain``: masked-LM pre-training of one of our encoders on a SMILES
corpus, tracked in MLflow, resumable, saved with ``save_pretrained`` plus a model card."""
from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from accelerate.utils import set_seed
from transformers import RoFormerForMaskedLM

from lipo.backbones import SIZES, roformer_config
from lipo.data import SMILES_COLUMNS, data_dir, pick_column, read_table
from lipo.errors import DataError
from lipo.mlm import MLMSettings, train_mlm
from lipo.tokenizer import build_tokenizer

CORPUS_FILE = "moses_test_smiles.csv.gz"
MAX_TOKENS = 128  # MOSES molecules have at most 53 tokens


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launch.py pretrain",
                                description="Masked-LM pre-training on a SMILES corpus.")
    p.add_argument("--corpus", help=f"CSV(.gz) with a SMILES column (default: "
                                    f"$LIPO_DATA_DIR/{CORPUS_FILE})")
    p.add_argument("--size", choices=sorted(SIZES), default="mini")
    p.add_argument("--out", help="output folder (default mlruns/pretrained/SIZE)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, help="use only the first N corpus SMILES (for tests)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--mask-prob", type=float, default=0.15)
    p.add_argument("--heldout", type=float, default=0.02, help="fraction held out for the loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=300, help="steps between resumable states")
    p.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    return p


def corpus_path(given: str | None) -> Path:
    if given:
        path = Path(given).expanduser()
    elif data_dir() is not None:
        path = data_dir() / CORPUS_FILE
    else:
        raise DataError(f"give --corpus FILE or set LIPO_DATA_DIR to a folder holding {CORPUS_FILE}")
    if not path.is_file():
        raise DataError(f"{path}: no such corpus file")
    return path


def read_corpus(path: Path, limit: int | None) -> list[str]:
    frame = read_table(path)
    column = pick_column(frame, SMILES_COLUMNS, "SMILES", path)
    smiles = [s.strip() for s in frame[column].dropna().astype(str) if s.strip()]
    if not smiles:
        raise DataError(f"{path}: no SMILES in column {column!r}")
    return smiles[:limit] if limit else smiles


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    from lipo.cli import make_accelerator
    accelerator = make_accelerator()
    path = corpus_path(args.corpus)
    out = Path(args.out or Path("mlruns") / "pretrained" / args.size)
    smiles = read_corpus(path, args.limit)
    order = np.random.default_rng(args.seed).permutation(len(smiles))
    n_held = max(1, int(args.heldout * len(smiles)))
    heldout, train = [smiles[i] for i in order[:n_held]], [smiles[i] for i in order[n_held:]]
    set_seed(args.seed)
    tokenizer = build_tokenizer(train)
    model = RoFormerForMaskedLM(roformer_config(args.size, tokenizer))
    encode = lambda items: tokenizer(items, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    settings = MLMSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           mask_prob=args.mask_prob, seed=args.seed, save_every=args.save_every)
    tracker, run_id = start_tracking(args, path, out, accelerator, len(train), len(heldout))
    log = (lambda m, step: tracker.log_metrics(run_id, m, step)) if tracker else (lambda m, s: None)
    started = time.time()
    final = train_mlm(model, tokenizer, encode(train), encode(heldout), settings, accelerator,
                      log, state_dir=out / "state", desc=f"pretrain {args.size}")
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(model)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        card = {"corpus": path.name, "corpus_sha256": sha256_of(path), "corpus_smiles": len(smiles),
                "train_smiles": len(train), "heldout_smiles": len(heldout), "size": args.size,
                "config": model.config.to_diff_dict(), "steps": settings.epochs * -(-len(train) // args.batch_size),
                "seed": args.seed, "settings": settings.__dict__, **final,
                "wall_time_s": round(time.time() - started),
                "command": portable_command(argv)}
        write_card(out, card)
        tracker.log_metrics(run_id, final)
        tracker.log_artifact(run_id, out / "README.md")
        tracker.finish(run_id)
        print(f"saved {out}: held-out masked-token loss {final['heldout/mlm_loss']:.4f}, "
              f"accuracy {final['heldout/accuracy']:.3f}")


def portable_command(argv: list[str]) -> str:
    """The command as run, each absolute path reduced to its file name: the card ships with
    the weights, and a folder of the machine that trained them means nothing elsewhere."""
    def portable(arg: str) -> str:
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("--") and Path(value).is_absolute():
            return f"{flag}={Path(value).name}"
        return Path(arg).name if Path(arg).is_absolute() else arg
    return "python launch.py pretrain " + shlex.join(portable(a) for a in argv)


def start_tracking(args, path, out, accelerator, n_train, n_heldout):
    if not accelerator.is_main_process:
        return None, None
    from lipo.tracking import Tracker
    tracker = Tracker(args.tracking_uri, "pretrain")
    resume = out / "state" / "mlflow_run_id"
    if resume.is_file():  # an interrupted run goes on logging into the same MLflow run
        return tracker, resume.read_text().strip()
    run_id = tracker.start_run(f"pretrain {args.size}", {"lipo.phase": "pretrain",
                                                         "lipo.backbone": args.size},
                               params={**vars(args), "corpus": str(path), "train_smiles": n_train,
                                       "heldout_smiles": n_heldout})
    resume.parent.mkdir(parents=True, exist_ok=True)
    resume.write_text(run_id)
    return tracker, run_id


def write_card(out: Path, card: dict) -> None:
    """README.md (for people) and lipo_card.json (for checks) beside the weights."""
    (out / "lipo_card.json").write_text(json.dumps(card, indent=2, default=str))
    files = {p.name: sha256_of(p) for p in sorted(out.iterdir()) if p.is_file()
             and p.name not in ("README.md", "lipo_card.json")}
    (out / "checksums.json").write_text(json.dumps(files, indent=2))
    lines = [f"# lipo `{card['size']}` encoder, masked-LM pre-trained", "",
             "RoFormer-style SMILES encoder pre-trained by `python launch.py pretrain` on the corpus "
             "below only (never on Lipophilicity, so no test molecule leaked into it).", "",
             "| field | value |", "|---|---|"]
    for key in ("corpus", "corpus_sha256", "corpus_smiles", "train_smiles", "heldout_smiles",
                "steps", "seed", "heldout/mlm_loss", "heldout/accuracy", "wall_time_s", "command"):
        lines.append(f"| {key} | `{card[key]}` |")
    lines += ["", "Config and settings: `lipo_card.json`. File checksums: `checksums.json`.", ""]
    (out / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
