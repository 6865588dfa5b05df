"""``pretrain --init ENCODER``: continue pre-training a saved encoder instead of a fresh one.

The encoder keeps its tokenizer (so its vocabulary, and every checkpoint fine-tuned from it,
stays comparable) and its descriptor head when the folder has one; the optimiser and the
learning-rate schedule start afresh. Run with the encoder's own corpora and seed, the held-out
molecules are the ones it was never trained on."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from lipo.errors import ConfigError

HEAD_FILE = "descriptor_head.safetensors"
CARD_FILE = "lipo_card.json"


@dataclass(frozen=True)
class StartingPoint:
    folder: Path
    name: str  # as given: a shipped name, or the folder's name
    card: dict  # its lipo_card.json ({} for a folder without one)

    @property
    def size(self) -> str | None:
        return self.card.get("size")

    @property
    def total_steps(self) -> int | None:
        """Every pre-training step these weights have seen, through all the runs that continued
        one another (None for a folder whose card does not say)."""
        if "total_steps" in self.card:
            return self.card["total_steps"]
        if "steps" not in self.card:
            return None
        # Cards written before total_steps name the earlier run's count in continued_from.
        earlier = re.match(r".*? \((\d+) steps;", self.card.get("continued_from", ""))
        return self.card["steps"] + (int(earlier.group(1)) if earlier else 0)

    def describe(self) -> str:
        """For the new card: which weights, after how many steps in all."""
        digest = hashlib.sha256((self.folder / "model.safetensors").read_bytes()).hexdigest()
        total = self.total_steps  # read once: for an older card it parses continued_from
        steps = "?" if total is None else total
        return f"{self.name} ({steps} steps; model.safetensors {digest[:16]})"


def total_steps_after(start: StartingPoint | None, steps: int) -> dict:
    """The new card's ``total_steps``: this run's steps on top of the starting encoder's (left
    out when the starting encoder's card does not say how many it had)."""
    if start is None:
        return {"total_steps": steps}
    earlier = start.total_steps
    return {} if earlier is None else {"total_steps": earlier + steps}


def starting_point(given: str) -> StartingPoint:
    """A shipped encoder by name (``mini``) or a folder written by ``pretrain``."""
    from lipo.models.backbones import SHIPPED

    folder = SHIPPED / given if (SHIPPED / given).is_dir() else Path(given).expanduser()
    if not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        raise ConfigError(
            f"--init {given}: {folder} is not an encoder folder written by "
            "pretrain (it needs model.safetensors and tokenizer.json)"
        )
    name = given if folder.parent == SHIPPED else folder.name
    return StartingPoint(folder, name, read_card(folder))


def read_card(folder: Path) -> dict:
    """An encoder folder's lipo_card.json ({} for a folder without one)."""
    card_file = folder / CARD_FILE
    return json.loads(card_file.read_text()) if card_file.is_file() else {}


def saved_descriptor_head(folder: Path) -> dict | None:
    """The weights of the descriptor head saved beside an encoder, None where there is none."""
    from safetensors.torch import load_file

    head = folder / HEAD_FILE
    return load_file(head) if head.is_file() else None


def resolve_size(given: str | None, start: StartingPoint | None, default: str) -> str:
    """--size, or the starting encoder's; the two must agree when both are named."""
    if start is None:
        return given or default
    if given and start.size and given != start.size:
        raise ConfigError(
            f"--size {given} disagrees with --init {start.name}, which is "
            f"{start.size}: leave --size out to continue it at its own size"
        )
    return start.size or given or default


def load_descriptor_head(start: StartingPoint, model) -> None:
    """The starting encoder's descriptor head into ``model`` (a ``DescriptorPretraining``),
    when the folder has one; otherwise the head starts fresh."""
    weights = saved_descriptor_head(start.folder)
    if weights is None:
        return
    wanted = model.descriptor_head.state_dict()
    if {k: v.shape for k, v in weights.items()} != {k: v.shape for k, v in wanted.items()}:
        raise ConfigError(
            f"--init {start.name}: its descriptor head predicts a different set "
            "of descriptors than this version computes; pass --descriptors 0 "
            "or start a fresh encoder"
        )
    model.descriptor_head.load_state_dict(weights)
