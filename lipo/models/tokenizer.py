"""The MoLFormer SMILES regex as a Hugging Face fast tokenizer.

Built with the ``tokenizers`` library (a word-level model over regex pieces), wrapped in
``PreTrainedTokenizerFast`` so that ``save_pretrained`` / ``AutoTokenizer`` round-trip it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

# MoLFormer's (and the Molecular Transformer's) SMILES regex: bracket atoms stay whole,
# two-letter halogens stay whole, ring closures above 9 are "%NN".
SMILES_REGEX = (
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>"
    r"|\*|\$|\%[0-9]{2}|[0-9])"
)
SPECIAL = {
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "cls_token": "<bos>",
    "sep_token": "<eos>",
    "mask_token": "<mask>",
}
# Every non-bracket piece the regex can emit, and the bracket atoms common in drug-like
# molecules (stereocentres, charges): a corpus without them (MOSES has neither) must still
# give them their own token, not <unk>.
COMMON_BRACKETS = [
    "[C@H]",
    "[C@@H]",
    "[C@]",
    "[C@@]",
    "[nH]",
    "[H]",
    "[O-]",
    "[N+]",
    "[n+]",
    "[N-]",
    "[S+]",
    "[NH+]",
    "[NH2+]",
    "[NH3+]",
    "[nH+]",
    "[S@]",
    "[S@@]",
    "[S-]",
    "[P+]",
    "[Si]",
    "[Se]",
    "[se]",
    "[B-]",
    "[2H]",
    "[Na+]",
    "[K+]",
    "[Cl-]",
    "[Br-]",
    "[I-]",
    "[O]",
    "[N@+]",
    "[N@@+]",
    "[C-]",
    "[o+]",
    "[s+]",
]
BASE_TOKENS = (
    [
        "Br",
        "B",
        "Cl",
        "C",
        "N",
        "O",
        "S",
        "P",
        "F",
        "I",
        "b",
        "c",
        "n",
        "o",
        "s",
        "p",
        "(",
        ")",
        ".",
        "=",
        "#",
        "-",
        "+",
        "\\",
        "/",
        ":",
        "~",
        "@",
        "?",
        ">",
        "*",
        "$",
    ]
    + [str(d) for d in range(10)]
    + [f"%{d}" for d in range(10, 100)]
    + COMMON_BRACKETS
)
_PIECE = re.compile(SMILES_REGEX)


# Token budgets, in one place. Fine-tuning, adaptation and prediction: the longest
# Lipophilicity SMILES is 207 tokens, so nothing is cut. Pre-training: ChEMBL has longer
# molecules (up to ~570 tokens); the rare longest are cut to keep batches small.
MAX_TOKENS = 512
PRETRAIN_MAX_TOKENS = 256


def smiles_pieces(smiles: str) -> list[str]:
    return _PIECE.findall(smiles)


def build_tokenizer(corpus: Iterable[str], max_length: int = MAX_TOKENS) -> PreTrainedTokenizerFast:
    """Vocabulary: the special tokens, every base token, then corpus pieces by first appearance."""
    vocab: dict[str, int] = {}
    for token in list(SPECIAL.values()) + BASE_TOKENS:
        vocab.setdefault(token, len(vocab))
    for smiles in corpus:
        for piece in smiles_pieces(smiles):
            vocab.setdefault(piece, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk_token"]))
    # "isolated" keeps every regex match as one piece; text between matches (an unknown
    # character) becomes its own piece and maps to <unk> instead of vanishing.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(SMILES_REGEX), behavior="isolated")
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>",
        pair="<bos> $A <eos> $B <eos>",
        special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])],
    )
    core.decoder = decoders.Fuse()  # SMILES pieces join without spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=core, model_max_length=max_length, padding_side="right", **SPECIAL
    )


def decode(tokenizer: PreTrainedTokenizerFast, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
