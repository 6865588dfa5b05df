"""The descriptor partner's kernel model: it serves what scikit-learn's SVR fitted, through a
file and back, on a kernel that is one for a molecule with itself, and refuses other features."""

import numpy as np
import pytest
from sklearn.svm import SVR

from lipo.errors import ConfigError
from lipo.inference.kernel import KERNEL, KernelModel, fit_kernel, gram
from lipo.inference.partner import partner_features


@pytest.fixture(scope="module")
def small(molecules):
    smiles = molecules.smiles[:120]
    return molecules.y[:120], partner_features(smiles)


def test_kernel_of_a_molecule_with_itself_is_one(small):
    _, x = small
    model = fit_kernel(x[:80], small[0][:80])
    k = gram(x[:30], x[:30], model.centre, model.scale, KERNEL["descriptor_share"])
    np.testing.assert_allclose(np.diag(k), 1.0, atol=1e-9)
    np.testing.assert_allclose(k, k.T, atol=1e-12)
    assert (k > 0).all() and (k <= 1 + 1e-9).all()
    assert k[~np.eye(30, dtype=bool)].max() < 1  # no two of these molecules are the same


def test_serves_what_the_svr_fitted(small, tmp_path):
    y, x = small
    model = fit_kernel(x[:80], y[:80])
    share = KERNEL["descriptor_share"]
    svr = SVR(kernel="precomputed", C=KERNEL["C"], epsilon=KERNEL["epsilon"])
    svr.fit(gram(x[:80], x[:80], model.centre, model.scale, share), y[:80])
    expected = svr.predict(gram(x[80:], x[:80], model.centre, model.scale, share))
    np.testing.assert_allclose(model.predict(x[80:]), expected, atol=1e-8)
    assert len(model.support) < 80  # only the support vectors are kept
    model.save(tmp_path / "kernel.npz")
    again = KernelModel.load(tmp_path / "kernel.npz")
    np.testing.assert_allclose(again.predict(x[80:]), expected, atol=1e-5)  # float32 rows
    assert model.predict(x[:0]).shape == (0,)


def test_it_learns_logd(small):
    y, x = small
    pred = fit_kernel(x[:90], y[:90]).predict(x[90:])
    assert np.mean((pred - y[90:]) ** 2) < np.var(y[90:])


def test_other_features_are_refused(small):
    y, x = small
    model = fit_kernel(x[:40], y[:40])
    with pytest.raises(ConfigError, match="fitted on 3289 features"):
        model.predict(x[40:, :100])


def test_kept_on_disk_per_molecule_set(small, molecules, tmp_path, monkeypatch):
    from lipo.inference.kernel import cached_kernel

    monkeypatch.setenv("LIPO_HOME", str(tmp_path))  # a cold cache
    y, x = small
    smiles = molecules.smiles[:60]
    first = cached_kernel(smiles, y[:60], rows=lambda: x[:60])

    def refit():
        raise AssertionError("the cached model should have been read")

    again = cached_kernel(smiles, y[:60], rows=refit)
    np.testing.assert_allclose(again.predict(x[60:]), first.predict(x[60:]), atol=1e-5)
    other = cached_kernel(smiles, y[:60] + 1, rows=lambda: x[:60])  # other labels: a new fit
    np.testing.assert_allclose(other.predict(x[60:]), first.predict(x[60:]) + 1, atol=0.05)
