"""logD from a model rebuilt from its checkpoint: ``predict_logd`` (with the run's test-time
augmentation), and the output table that keeps unreadable rows with the reason. The command
``python launch.py predict`` is ``lipo.inference.command``; the ensemble,
``lipo.inference.ensemble`` and ``lipo.inference.bundle``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lipo.data.augment import Spellings
from lipo.data.batching import EncodedMolecules, make_loader
from lipo.data.features import compute
from lipo.data.molecules import canonical
from lipo.models.tokenizer import MAX_TOKENS
from lipo.runtime.devices import loader_options


@torch.no_grad()
def predict_logd(model, tokenizer, cfg, smiles: list[str], batch_size: int = 128) -> np.ndarray:
    """logD per SMILES; with the run's ``tta``, the mean over the canonical SMILES and the
    same randomised spellings the run's evaluation averaged over."""
    ids = tokenizer(smiles, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    data = EncodedMolecules(
        ids,
        np.zeros(len(smiles), dtype=np.float32),
        compute(cfg.head_features, smiles),
        list(smiles),
    )
    positions = np.arange(len(smiles))
    tta = cfg.tta
    if tta > 0:
        spell_ids, origin = Spellings(tokenizer, cfg.seed, MAX_TOKENS).rows(
            smiles, positions, tta, "tta"
        )
        positions = np.concatenate([positions, data.respell(origin, spell_ids)])
    sums = np.zeros(len(smiles), dtype=np.float64)
    device = next(model.parameters()).device  # where the model is, the batches go
    for batch in make_loader(
        data, positions, batch_size, tokenizer.pad_token_id, shuffle=False, **loader_options(device)
    ):
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
    pred = (
        predict_logd(model, tokenizer, cfg, [canon[i] for i in valid], batch_size)
        if valid
        else np.empty(0)
    )
    return table(raw, canon, valid, {"logd_pred": pred})
