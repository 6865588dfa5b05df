"""Token batches padded per batch and grouped by length.

SMILES in Lipophilicity average ~47 tokens (max 207): padding every batch to 300, as the
original study did, spends ~85% of the compute on padding. Sorting within shuffled chunks
keeps batches random between epochs while their lengths stay close.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

CHUNK_BATCHES = 50  # sort within chunks of 50 batches: random enough, little padding


class EncodedMolecules(Dataset):
    """Token ids and standardised targets; item i is position i of the table.

    A row may spell a molecule another row already holds (a randomised SMILES): ``origin[i]``
    is the position of the molecule row i spells (i itself for a molecule's own row)."""

    def __init__(
        self,
        ids: list[list[int]],
        targets: np.ndarray,
        extra=None,
        smiles: list[str] | None = None,
        descriptors=None,
    ):
        self.ids = ids
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.extra = extra  # optional per-molecule feature matrix (float32)
        self.smiles = smiles  # canonical SMILES of each row's molecule, when known
        # optional per-molecule auxiliary targets (aux_descriptors: raw descriptors, float32)
        self.descriptors = descriptors
        self.origin = np.arange(len(ids))

    def __len__(self) -> int:
        return len(self.ids)

    def append(
        self, ids: list[list[int]], targets, extra=None, smiles=None, origin=None, descriptors=None
    ) -> np.ndarray:
        """Add rows (new molecules, or with ``origin`` new spellings of rows already here);
        returns their positions."""
        start = len(self.ids)
        positions = np.arange(start, start + len(ids))
        self.ids = self.ids + ids
        self.targets = torch.cat([self.targets, torch.as_tensor(targets, dtype=torch.float32)])
        if self.extra is not None:
            self.extra = np.vstack([self.extra, extra])
        if self.descriptors is not None:
            self.descriptors = np.vstack([self.descriptors, descriptors])
        if self.smiles is not None:
            self.smiles = self.smiles + list(smiles)
        self.origin = np.concatenate([self.origin, positions if origin is None else origin])
        return positions

    def respell(self, origin: np.ndarray, ids: list[list[int]]) -> np.ndarray:
        """Rows that spell the molecules at ``origin`` anew: same target, features, SMILES and
        auxiliary targets."""
        origin = np.asarray(origin, dtype=np.int64)
        extra = None if self.extra is None else self.extra[origin]
        smiles = None if self.smiles is None else [self.smiles[p] for p in origin]
        descriptors = None if self.descriptors is None else self.descriptors[origin]
        targets = self.targets[torch.as_tensor(origin)]
        return self.append(ids, targets, extra, smiles, origin, descriptors)

    def truncate(self, size: int) -> None:
        """Back to the first ``size`` rows (what a temporary ``append`` added is gone)."""
        self.ids, self.targets = self.ids[:size], self.targets[:size]
        self.origin = self.origin[:size]
        if self.extra is not None:
            self.extra = self.extra[:size]
        if self.descriptors is not None:
            self.descriptors = self.descriptors[:size]
        if self.smiles is not None:
            self.smiles = self.smiles[:size]

    def __getitem__(self, i: int):
        return i


class LengthGroupedBatches(Sampler[list[int]]):
    """Batches of positions with similar token counts; new order every pass, seeded.

    ``positions`` can be replaced between epochs (curriculum, active learning).
    """

    def __init__(
        self, lengths: Sequence[int], positions, batch_size: int, shuffle: bool, seed: int = 0
    ):
        self.lengths = np.asarray(lengths)
        self.positions = np.asarray(positions)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.passes = 0  # every rank iterates the same number of times, so orders agree

    def __len__(self) -> int:
        return -(-len(self.positions) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.passes])
        self.passes += 1
        order = rng.permutation(self.positions) if self.shuffle else self.positions
        chunk = self.batch_size * CHUNK_BATCHES
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches += [
                part[i : i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size)
            ]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return iter(batches)


class Collate:
    def __init__(self, data: EncodedMolecules, pad_id: int):
        self.data = data
        self.pad_id = pad_id

    def __call__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        seqs = [self.data.ids[p] for p in positions]
        width = max(map(len, seqs))
        input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            input_ids[row, : len(seq)] = torch.as_tensor(seq)
            mask[row, : len(seq)] = 1
        index = torch.as_tensor(positions)
        batch = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "labels": self.data.targets[index],
            "positions": index,
            "origin": torch.as_tensor(self.data.origin[positions]),
        }
        if self.data.extra is not None:
            batch["features"] = torch.as_tensor(self.data.extra[index.numpy()])
        if self.data.descriptors is not None:
            batch["descriptors"] = torch.as_tensor(self.data.descriptors[index.numpy()])
        return batch


def make_loader(
    data: EncodedMolecules,
    positions,
    batch_size: int,
    pad_id: int,
    shuffle: bool,
    seed: int = 0,
    **options,
) -> DataLoader:
    """``options``: further DataLoader settings (``devices.loader_options``: pinned memory
    and worker processes for batches bound for a GPU)."""
    lengths = [len(ids) for ids in data.ids]
    sampler = LengthGroupedBatches(lengths, positions, batch_size, shuffle, seed)
    # A private generator: each new iterator draws its base seed from it rather than from the
    # global torch RNG, so a resumed run's dropout masks continue where they stopped.
    return DataLoader(
        data,
        batch_sampler=sampler,
        collate_fn=Collate(data, pad_id),
        generator=torch.Generator().manual_seed(seed),
        **options,
    )
