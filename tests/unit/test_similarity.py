"""Similarity to the training set: Morgan fingerprints (radius 2, 2048 bits) packed, and the
largest Tanimoto similarity, checked against RDKit's own."""

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from lipo.inference import similarity

TRAIN = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "c1ccc2ccccc2c1"]
QUERY = ["CCO", "CCCO", "c1ccccc1N", "OC(=O)C(F)(F)C(F)(F)C(F)(F)F", "[Na+].[Cl-]"]


def rdkit_max_tanimoto(query: str) -> float:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    train = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in TRAIN]
    return max(
        DataStructs.BulkTanimotoSimilarity(
            generator.GetFingerprint(Chem.MolFromSmiles(query)), train
        )
    )


def test_max_tanimoto_matches_rdkit():
    got = similarity.max_tanimoto(similarity.fingerprints(QUERY), similarity.fingerprints(TRAIN))
    np.testing.assert_allclose(got, [rdkit_max_tanimoto(q) for q in QUERY], atol=1e-6)
    assert got[0] == 1.0  # in the training set
    assert got[3] < 0.2  # a perfluorinated acid is nothing like these five


def test_chunks_give_the_same_answer(monkeypatch):
    train = similarity.fingerprints(TRAIN)
    query = similarity.fingerprints(QUERY)
    whole = similarity.max_tanimoto(query, train)
    monkeypatch.setattr(similarity, "CHUNK", 2)  # 3 chunks of the 5 training molecules
    np.testing.assert_array_equal(similarity.max_tanimoto(query, train), whole)


def test_packed_store_round_trip(tmp_path):
    packed = similarity.fingerprints(TRAIN)
    assert packed.shape == (5, 256) and packed.dtype == np.uint8  # 2048 bits in 256 bytes
    path = similarity.save(tmp_path / "fp.npz", packed)
    np.testing.assert_array_equal(similarity.load(path), packed)
    np.savez_compressed(tmp_path / "other.npz", bits=packed, radius=3, size=2048)
    with pytest.raises(ValueError, match="radius 3"):
        similarity.load(tmp_path / "other.npz")


def test_empty_inputs_and_bad_smiles():
    train = similarity.fingerprints(TRAIN)
    assert similarity.max_tanimoto(similarity.fingerprints([]), train).shape == (0,)
    with pytest.raises(ValueError, match="molecule 1 .*cannot parse"):
        similarity.fingerprints(["CCO", "C1CC"])


def test_bands():
    labels = similarity.band(np.array([0.0, 0.39, 0.4, 0.59, 0.6, 0.8, 1.0]))
    assert labels.tolist() == ["<0.4", "<0.4", "0.4-0.6", "0.4-0.6", "0.6-0.8", ">=0.8", ">=0.8"]
    assert similarity.band_labels() == ["<0.4", "0.4-0.6", "0.6-0.8", ">=0.8"]
