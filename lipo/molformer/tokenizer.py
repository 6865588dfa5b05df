"""MoLFormer's tokenizer rebuilt from its ``vocab.json``: our SMILES regex, its vocabulary.

MoLFormer's own tokenizer keeps only the regex matches (``re.findall``: characters outside
every pattern vanish), maps a piece missing from the vocabulary to ``<unk>`` and wraps the
sequence in ``<bos> ... <eos>``. This is the same as a ``tokenizers`` word-level model over a
regex split that drops what lies between matches, so ids agree piece for piece.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from lipo.errors import ConfigError
from lipo.models.tokenizer import SMILES_REGEX, SPECIAL

MAX_LENGTH = 512  # rotary positions have no table to run out of; this only bounds truncation


# The order in which MoLFormer's tokenizer appends special tokens its vocabulary lacks.
APPEND_ORDER = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def tokenizer_from_vocab(vocab: dict[str, int]) -> PreTrainedTokenizerFast:
    vocab = dict(vocab)
    for name in APPEND_ORDER:  # ids as MoLFormer's tokenizer gives them: after the vocabulary
        vocab.setdefault(SPECIAL[name], max(vocab.values(), default=-1) + 1)
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk_token"]))
    # invert=True + "removed": the regex matches are the pieces, the rest is dropped (findall).
    core.pre_tokenizer = pre_tokenizers.Split(Regex(SMILES_REGEX), behavior="removed", invert=True)
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>",
        pair="<bos> $A <eos> $B <eos>",
        special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])],
    )
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, model_max_length=MAX_LENGTH, padding_side="right", **SPECIAL
    )


def tokenizer_from_folder(folder: Path) -> PreTrainedTokenizerFast:
    path = folder / "vocab.json"
    try:
        vocab = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable MoLFormer vocabulary ({exc})") from None
    if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
        raise ConfigError(f"{path}: expected a JSON object of token -> integer id")
    return tokenizer_from_vocab(vocab)
