import numpy as np
import torch

from lipo.data.batching import EncodedMolecules, LengthGroupedBatches, make_loader


def fake_data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    ids = [list(range(3, 3 + int(k))) for k in rng.integers(5, 120, size=n)]
    return EncodedMolecules(ids, rng.normal(size=n).astype(np.float32))


def padding_fraction(loader) -> float:
    real = total = 0
    for batch in loader:
        real += int(batch["attention_mask"].sum())
        total += batch["attention_mask"].numel()
    return 1 - real / total


def test_every_position_once_per_epoch_and_padded_per_batch():
    data = fake_data()
    positions = np.arange(0, 500, 2)
    loader = make_loader(data, positions, 32, pad_id=0, shuffle=True, seed=1)
    seen = []
    for batch in loader:
        seen += batch["positions"].tolist()
        longest = max(len(data.ids[p]) for p in batch["positions"].tolist())
        assert batch["input_ids"].shape[1] == longest  # padded to the batch, not to 300
    assert sorted(seen) == positions.tolist()


def test_grouping_cuts_padding_against_random_batches():
    data = fake_data()
    grouped = make_loader(data, np.arange(500), 32, 0, shuffle=True)
    random_order = torch.utils.data.DataLoader(
        data,
        batch_size=32,
        shuffle=True,
        collate_fn=grouped.collate_fn,
        generator=torch.Generator().manual_seed(0),
    )
    assert padding_fraction(grouped) < 0.5 * padding_fraction(random_order)


def test_order_is_seeded_and_changes_between_epochs():
    lengths = np.arange(200) % 50
    a = LengthGroupedBatches(lengths, np.arange(200), 16, shuffle=True, seed=3)
    b = LengthGroupedBatches(lengths, np.arange(200), 16, shuffle=True, seed=3)
    first_a, first_b = list(a), list(b)
    assert first_a == first_b
    assert list(a) != first_a  # the second pass draws a new order


def test_evaluation_order_is_fixed():
    data = fake_data(100)
    loader = make_loader(data, np.arange(100), 16, 0, shuffle=False)
    assert [b["positions"].tolist() for b in loader] == [b["positions"].tolist() for b in loader]
