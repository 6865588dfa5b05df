"""Pieces of the exported models that need no training: the ensemble's columns, the
calibration table, the model card's commands and metrics."""

import numpy as np
import pandas as pd
import pytest

from lipo.final.card import CardFacts, render, search_argv
from lipo.inference.ensemble import combine
from lipo.report.calibration import ensemble_mse, spearman, spread_and_error


def test_ensemble_columns():
    members = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 0.0]])
    draws = [np.array([[0.0, 1.0, 1.0], [2.0, 1.0, 3.0]]), np.array([[1.0] * 3, [1.0] * 3])]
    out = combine(members, draws)
    np.testing.assert_allclose(out["logd_pred"], [2.0, 2.0, 1.5])
    np.testing.assert_allclose(out["logd_std"], [np.sqrt(2), 0.0, np.sqrt(4.5)])
    # member 1's MC variances 1, 0, 1; member 2's 0: root of their means
    np.testing.assert_allclose(out["logd_mc_std"], np.sqrt([0.5, 0.0, 0.5]))
    assert set(combine(members[:1], None)) == {"logd_pred"}  # one member: no spread


def test_calibration_table_and_spearman():
    truth = pd.DataFrame({"row": [0, 1, 2, 3], "y_true": [0.0, 0.0, 0.0, 0.0]})
    seed_a = truth.assign(y_pred=[0.1, 0.5, 1.0, 2.0])
    seed_b = truth.assign(y_pred=[0.1, 0.3, 0.6, 1.0])
    seed_c = truth.assign(y_pred=[0.1, 0.4, 0.8, 1.5]).iloc[:3]  # row 3 missing: left out
    frame = spread_and_error([seed_a, seed_b, seed_c])
    assert list(frame.index) == [0, 1, 2]
    np.testing.assert_allclose(frame["abs_error"], [0.1, 0.4, 0.8])
    np.testing.assert_allclose(frame["spread"], [0.0, 0.1, 0.2], atol=1e-12)
    assert spearman(frame) == pytest.approx(1.0)
    # the mean prediction's error over rows 0-2: 0.1, 0.4, 0.8
    assert ensemble_mse([seed_a, seed_b, seed_c]) == pytest.approx((0.01 + 0.16 + 0.64) / 3)


def facts(**changes) -> CardFacts:
    base = dict(
        study="lora",
        run_id="abc123",
        seed=1,
        optuna_study="lora:tiny:random_seed0:1",
        best_trial="4",
        data="/data/lipophilicity.csv",
        data_sha256="f" * 64,
        molecules=4200,
        split="random_seed0",
        split_sha256="e" * 64,
        split_sizes={"train": 3360, "val": 420, "test": 420},
        backbone="mini",
        revision="0123abcd",
        adapter="lora",
        settings={"lr": 0.001, "adapter.r": 8},
        per_seed={0: {"mse": 0.5, "r2": 0.6}, 1: {"mse": 0.7, "r2": 0.5}},
        argv=[
            "--study",
            "lora",
            "--final",
            "--seeds",
            "0,1",
            "--register",
            "logd",
            "--backbone",
            "mini",
        ],
    )
    return CardFacts(**{**base, **changes})


def test_search_command_drops_final_only_flags():
    assert search_argv(
        ["--study", "lora", "--final", "--seeds=0,1", "--control", "random-k", "--epochs", "3"]
    ) == ["--study", "lora", "--epochs", "3"]


def test_model_card_says_what_and_how():
    card = render(facts())
    assert "| test/mse | 0.6000 ± 0.1414 | 0.7000 |" in card
    assert "Seeds of the final phase: 0, 1; this model: seed 1" in card
    assert "`mini`, revision `0123abcd`" in card and "PeftModel.from_pretrained" in card
    assert "python launch.py --study lora --backbone mini    # the search" in card
    assert (
        "python launch.py --study lora --final --seeds 0,1 --register logd --backbone mini" in card
    )
    assert "| `adapter.r` | `8` |" in card and "random_seed0 (train 3360" not in card
    assert "`random_seed0` (train 3360, val 420, test 420" in card
    assert "weights.safetensors" in render(facts(adapter="bitfit"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--study", "lora"], "--study NAME and --final go together"),
        (["--run", "abc", "--mc-dropout", "1"], "--mc-dropout 1: give 2 or more passes"),
        (["--study", "lora", "--final"], "no finished final run of study 'lora'"),
    ],
)
def test_predict_flags_fail_in_one_line(tmp_path, capsys, args, message):
    from lipo.cli import main

    smiles = tmp_path / "one.smi"
    smiles.write_text("CCO\n")
    code = main(
        [
            "predict",
            *args,
            "--smiles",
            str(smiles),
            "--tracking-uri",
            f"sqlite:///{tmp_path}/mlflow.db",
        ]
    )
    assert code == 2 and message in capsys.readouterr().err


def test_register_needs_final(capsys):
    from lipo.cli import main

    assert main(["--study", "lora", "--register", "logd"]) == 2
    assert "--register logd applies to --final only" in capsys.readouterr().err


# A fresh process loads what a served model loads; every third-party import in those lipo
# modules (function-level ones too) names the distributions the requirements must list.
SERVING_IMPORTS = """
import ast, json, sys
from importlib.metadata import packages_distributions
import lipo.mlflow_model, lipo.models.checkpoint, lipo.inference.predict, lipo.inference.bundle
dists = packages_distributions()
found = set()
for name, module in list(sys.modules.items()):
    if name.split(".")[0] != "lipo" or not getattr(module, "__file__", None):
        continue
    for node in ast.walk(ast.parse(open(module.__file__).read())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for imported in names:
            found.update(dists.get(imported.split(".")[0], []))
print(json.dumps(sorted(found)))
"""


def test_requirements_are_what_serving_imports():
    import json
    import os
    import subprocess
    import sys

    from lipo.mlflow_model import REQUIREMENTS
    from tests.conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-c", SERVING_IMPORTS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    # mlflow's top-level module belongs to mlflow, mlflow-skinny and mlflow-tracing
    imported = {
        d.replace("-", "_").lower()
        for d in json.loads(done.stdout)
        if d != "lipo" and not d.startswith("mlflow-")
    }
    assert imported == {r.replace("-", "_").lower() for r in REQUIREMENTS}


def test_pinned_requirements_carry_no_local_labels():
    from importlib.metadata import version

    from lipo.mlflow_model import REQUIREMENTS, pinned_requirements

    pins = pinned_requirements()
    assert [p.split("==")[0] for p in pins] == list(REQUIREMENTS)  # all installed here
    assert not any("+" in p for p in pins), pins  # torch 2.13.0+cpu resolves nowhere else
    assert f"torch=={version('torch').split('+')[0]}" in pins
