"""The model card written beside a pre-trained encoder: README.md for people, lipo_card.json
for checks, checksums.json for the files. Corpora are named by file name and checksum, never
by a path on the machine that trained."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FIELDS = (
    "size",
    "objective",
    "continued_from",
    "train_smiles",
    "heldout_smiles",
    "steps",
    "total_steps",
    "seed",
    "coverage/tokens",
    "coverage/length",
    "heldout/mlm_loss",
    "heldout/accuracy",
    "heldout/descriptor_mse",
    "wall_time_s",
    "command",
)


def write_card(out: Path, card: dict) -> None:
    (out / "lipo_card.json").write_text(json.dumps(card, indent=2, default=str))
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.iterdir())
        if p.is_file() and p.name not in ("README.md", "lipo_card.json", "checksums.json")
    }
    (out / "checksums.json").write_text(json.dumps(files, indent=2))
    lines = [
        f"# lipo `{card['size']}` encoder, pre-trained",
        "",
        "RoFormer-style SMILES encoder pre-trained by `python launch.py pretrain` on the "
        "corpora below only (every Lipophilicity and external-pool molecule was removed "
        "from them, so no evaluated molecule leaked into pre-training).",
        "",
        "| corpus | sha256 | molecules | weight |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {c['file']} | `{c['sha256'][:16]}…` | {c['smiles']} | {c['weight']:g} |"
        for c in card.get("corpora", [])
    ]
    lines += ["", "| field | value |", "|---|---|"]
    lines += [f"| {key} | `{card[key]}` |" for key in FIELDS if key in card]
    if card.get("descriptors"):
        lines += [
            "",
            "Descriptor targets (standardised): " + ", ".join(card["descriptors"]["names"]) + ".",
        ]
    lines += ["", "Config and settings: `lipo_card.json`. File checksums: `checksums.json`.", ""]
    (out / "README.md").write_text("\n".join(lines))
