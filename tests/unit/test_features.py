import numpy as np
import torch

from lipo.config import RunConfig
from lipo.data.features import CLIP, RDKIT_DESCRIPTORS, compute, feature_names, standardisation
from lipo.data.splits import make_split
from lipo.models.backbones import load_backbone
from lipo.models.regressor import assemble


def test_descriptors_are_computed():
    feats = compute("rdkit", ["CCO", "c1ccccc1"])
    assert feats.shape == (2, len(RDKIT_DESCRIPTORS))
    names = list(RDKIT_DESCRIPTORS)
    assert feats[1, names.index("aromatic_rings")] == 1
    assert feats[0, names.index("hbd")] == 1
    assert compute("", ["CCO"]) is None


def test_standardised_with_train_statistics_only():
    feats = np.array([[0.0], [2.0], [100.0]], dtype=np.float32)
    mean, std = standardisation(feats, np.array([0, 1]))
    assert mean.tolist() == [1.0] and std.tolist() == [1.0]


def test_features_reach_the_head():
    torch.manual_seed(0)
    backbone = load_backbone("tiny", ["CCO"])
    stats = (np.zeros(8, dtype=np.float32), np.ones(8, dtype=np.float32))
    model = assemble(backbone, RunConfig(head_features="rdkit", dropout=0.0), 0.0, 1.0, stats)
    model.eval()
    batch = backbone.tokenizer(["CCO"], return_tensors="pt")
    feats = torch.as_tensor(compute("rdkit", ["CCO"]))
    a = model(batch["input_ids"], batch["attention_mask"], feats)
    b = model(batch["input_ids"], batch["attention_mask"], feats + 1.0)
    assert not torch.allclose(a, b)


def test_rdkit2d_is_rdkits_whole_2d_set():
    from rdkit.Chem import Descriptors

    feats = compute("rdkit2d", ["CCO", "c1ccccc1O"])
    assert feats.shape == (2, len(Descriptors.descList)) and feats.shape[1] >= 200
    names = feature_names("rdkit2d")
    assert feats[1, names.index("NumAromaticRings")] == 1


def rdkit2d_model(stats):
    backbone = load_backbone("tiny", ["CCO"])
    return assemble(backbone, RunConfig(head_features="rdkit2d", dropout=0.0), 0.0, 1.0, stats)


def test_rdkit2d_head_never_sees_a_non_finite_value(molecules):
    """All 4200 Lipophilicity molecules (read from the disk cache after the first run, which
    takes about 90 s): RDKit leaves some descriptors undefined and Ipc reaches 7e30."""
    raw = compute("rdkit2d", molecules.smiles)
    assert np.isnan(raw).any() and np.nanmax(np.abs(raw)) > 1e20  # what the scaling must handle
    split = make_split("random", molecules, 0)
    model = rdkit2d_model(standardisation(raw, split.train, "rdkit2d"))
    scaled = model.scale_features(torch.as_tensor(raw))
    assert torch.isfinite(scaled).all() and scaled.abs().max() <= CLIP
    centre = np.nanmedian(raw[split.train].astype(np.float64), axis=0)
    assert np.allclose(model.feature_mean.numpy(), centre, rtol=1e-6)  # centred on train
    undefined = torch.as_tensor(np.isnan(raw))
    assert (scaled[undefined] == 0).all()  # imputed with the training median


def test_rdkit2d_standardised_with_train_statistics_only():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 3)).astype(np.float32)
    feats[3, 1] = np.nan
    train = np.arange(30)
    centre, spread = standardisation(feats, train, "rdkit2d")
    assert np.allclose(centre, np.nanmedian(feats[train], axis=0))
    touched = feats.copy()
    touched[30:] = np.float32(1e30)  # validation and test rows: never looked at
    touched[31, 0] = np.nan
    assert [a.tolist() for a in standardisation(touched, train, "rdkit2d")] == [
        centre.tolist(),
        spread.tolist(),
    ]
    touched[:2] = np.float32(50.0)
    assert standardisation(touched, train, "rdkit2d")[1].tolist() != spread.tolist()


def test_rdkit2d_is_cached_on_disk(tmp_path, monkeypatch):
    import lipo.data.features as features

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(features, "_CACHE", {})
    first = compute("rdkit2d", ["CCO", "CCN"])
    cached = list((tmp_path / "lipo" / "features").glob("*.npy"))
    assert len(cached) == 1
    np.save(cached[0], first + 1)  # the next process reads the file, not RDKit
    monkeypatch.setattr(features, "_CACHE", {})
    assert np.array_equal(compute("rdkit2d", ["CCO", "CCN"]), first + 1, equal_nan=True)
