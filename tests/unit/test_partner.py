"""The descriptor partner of a served ensemble: the blend weight is chosen on validation,
the boosters and kernel model round-trip through a bundle folder, a bundle calibrates its
interval on the blend fitted on training molecules, and serves a partner refitted on training +
validation."""

import json

import numpy as np
import pandas as pd
import pytest

from lipo.errors import ConfigError
from lipo.final.card import partner_lines
from lipo.inference.bundle import MANIFEST, Member, summary, write_bundle
from lipo.inference.kernel import fit_kernel
from lipo.inference.partner import (
    WEIGHTS,
    Partner,
    choose_weight,
    fit_boosters,
    partner_features,
    predict,
)

RNG = np.random.default_rng(0)


def test_weight_follows_validation():
    y = RNG.normal(size=400)
    a, b = RNG.normal(size=400), RNG.normal(size=400)
    # two equally good, independent errors: an even blend; a useless partner: none of it
    assert choose_weight(y + a, y + b, y)[0] == pytest.approx(0.5, abs=0.1)
    weight, val = choose_weight(y + 0.1 * a, y + 3 * b, y)
    assert weight == 1.0 and val["served"] == val["ensemble"]
    weight, val = choose_weight(y + 3 * a, y + 0.1 * b, y)
    assert weight == 0.0 and val["served"] == val["partner"]
    assert weight in WEIGHTS


def test_equal_parts_keep_the_fine_tuned_seeds():
    y = RNG.normal(size=50)
    assert choose_weight(y + 1, y + 1, y)[0] == 1.0


@pytest.fixture(scope="module")
def small(molecules):
    smiles = molecules.smiles[:120]
    return smiles, molecules.y[:120], partner_features(smiles)


def test_partner_round_trips_through_a_folder(small, tmp_path):
    smiles, y, x = small
    texts = fit_boosters(x[:80], y[:80], seeds=(0, 1), n_rounds=20)
    partner = Partner(texts, 0.6, {"served": 0.1, "ensemble": 0.2, "partner": 0.3})
    entry = partner.save(tmp_path)
    again = Partner.load(tmp_path, json.loads(json.dumps(entry)))
    ensemble = np.linspace(0, 1, 40)
    blended = again.blend(ensemble, smiles[80:])
    np.testing.assert_allclose(blended, 0.6 * ensemble + 0.4 * predict(texts, x[80:]))
    assert entry["files"] == ["partner/lightgbm-0.txt", "partner/lightgbm-1.txt"]
    assert Partner(texts, 1.0, {}).blend(ensemble, smiles[80:]) is ensemble
    assert "kernel" not in entry and entry["kind"] == "lightgbm"  # a bundle's from before it


def test_partner_averages_its_boosters_and_kernel_model(small, tmp_path):
    smiles, y, x = small
    texts = fit_boosters(x[:80], y[:80], seeds=(0,), n_rounds=20)
    kernel = fit_kernel(x[:80], y[:80])
    entry = Partner(texts, 0.6, {}, 80, kernel).save(tmp_path)
    assert entry["kind"] == "lightgbm+svr" and entry["kernel"]["file"] == "partner/kernel-svr.npz"
    (card,) = partner_lines({**entry, "val_mse": {"served": 1, "ensemble": 1, "partner": 1}}, None)
    assert "0.60 x the seeds' mean + 0.40 x the mean of LightGBM (1 seeds) and a kernel SVR" in card
    again = Partner.load(tmp_path, json.loads(json.dumps(entry)))
    alone = (predict(texts, x[80:]) + kernel.predict(x[80:])) / 2
    np.testing.assert_allclose(again.predict(x[80:]), alone, atol=1e-5)
    ensemble = np.linspace(0, 1, 40)
    np.testing.assert_allclose(
        again.blend(ensemble, smiles[80:]), 0.6 * ensemble + 0.4 * alone, atol=1e-5
    )


def test_other_features_are_refused(small):
    _, y, x = small
    texts = fit_boosters(x[:80], y[:80], seeds=(0,), n_rounds=5)
    with pytest.raises(ConfigError, match="fitted on 3289 features"):
        predict(texts, x[80:, :100])


def test_bundle_calibrates_on_what_it_serves(molecules, tmp_path, monkeypatch):
    monkeypatch.setenv("LIPO_PARTNER_ROUNDS", "20")
    monkeypatch.setenv("LIPO_HOME", str(tmp_path / "home"))  # a cold partner cache
    train, val = np.arange(0, 150), np.arange(150, 200)
    members = []
    for seed, shift in ((0, 0.3), (1, -0.1)):
        folder = tmp_path / "bundle" / "members" / f"seed-{seed}"
        folder.mkdir(parents=True)
        pd.DataFrame(
            {
                "row": val,
                "smiles": [molecules.smiles[i] for i in val],
                "y_true": molecules.y[val],
                "y_pred": molecules.y[val] + shift + RNG.normal(0, 0.5, len(val)),
            }
        ).to_csv(folder / "predictions_val.csv", index=False)
        members.append(Member(seed, f"run{seed}", folder))
    bundle = tmp_path / "bundle"
    write_bundle(bundle, members, [molecules.smiles[i] for i in train], train_y=molecules.y[train])
    manifest = json.loads((bundle / MANIFEST).read_text())
    entry = manifest["partner"]
    assert summary(bundle)["partner"] == entry and entry["params"]["n_estimators"] == 20
    scores = entry["val_mse"]
    assert scores["served"] <= min(scores["ensemble"], scores["partner"])
    # the interval's residuals are the served prediction's on validation
    served_mse = np.mean(np.square(manifest["calibration"]["abs_residuals"]))
    assert served_mse == pytest.approx(entry["val_mse"]["served"], rel=1e-4)
    # ... of the blend fitted on training molecules; the boosters served add validation's
    seen = np.concatenate([train, val])
    assert entry["fitted_on_molecules"] == seen.size
    seen_rows = partner_features([molecules.smiles[i] for i in seen])
    refit = fit_boosters(seen_rows, molecules.y[seen])
    served = Partner.load(bundle, entry)
    assert served.texts == refit
    kernel = fit_kernel(seen_rows, molecules.y[seen])
    np.testing.assert_allclose(served.kernel.dual, kernel.dual, atol=1e-5)
    assert len(served.kernel.support) == len(kernel.support) <= seen.size
    on_train = fit_boosters(
        partner_features([molecules.smiles[i] for i in train]), molecules.y[train]
    )
    assert refit != on_train
    without = write_bundle(tmp_path / "bundle", members, [molecules.smiles[i] for i in train])
    assert "partner" not in json.loads((without / MANIFEST).read_text())
