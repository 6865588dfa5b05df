"""After the final phase: each final run of the chosen settings gets an MLflow pyfunc model
(``model/``, its card ``model/README.md`` beside it); the final phase's parent run gets the
seed ensemble (``ensemble/``: every seed, a conformal interval calibrated on validation, the
similarity to the training set), and ``--register NAME`` registers that ensemble in the model
registry with the alias ``champion``.

Done once all seeds have finished, so that every card carries the metrics over every seed;
re-running ``--final`` re-exports them (a seed added later changes every card)."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

from lipo.final.card import METRICS, CardFacts, render
from lipo.tracking.finals import final_query, newest_per_seed, newest_refits
from lipo.tracking.store import RunRecord, Tracker

MODEL = "model"  # the artifact path of the pyfunc model in each final run
ENSEMBLE = "ensemble"  # the artifact path of the seeds' ensemble model in the final parent run
ALIAS = "champion"  # the registry alias --register moves to the new version


def command_line(argv) -> str:
    """Kept as the final parent run's param "command": each model card quotes the command
    that trained it, not a later one that only re-exported it."""
    return shlex.join(["python", "launch.py", *argv])


def same_control(inv, runs: list[RunRecord]) -> list[RunRecord]:
    """The runs of this control (none: the strategy itself), on the search's split or on a
    split per seed as this phase. MLflow's filter cannot ask for a missing tag, so it is done
    here."""
    per_seed = "1" if inv.split_per_seed else ""
    return [
        r
        for r in runs
        if r.tags.get("lipo.control", "") == inv.control
        and r.tags.get("lipo.split_per_seed", "") == per_seed
    ]


def group_runs(inv, tracker: Tracker, trial_number: int) -> list:
    """The finished final runs of this best trial (and control), the newest per seed."""
    query = final_query(inv.optuna_name, trial_number)
    return newest_per_seed(same_control(inv, tracker.runs(query)))


def refit_runs(inv, tracker: Tracker, trial_number: int) -> dict[str, str]:
    """The newest finished refit (``lipo.final.refit``) of each final run of this best trial
    (and control): its run id, by the final run's."""
    query = final_query(inv.optuna_name, trial_number, phase="refit")
    return newest_refits(same_control(inv, tracker.runs(query)))


def export_models(
    inv,
    tracker: Tracker,
    trial_number: int,
    argv: list[str],
    register: str | None = None,
    parent: str | None = None,
) -> None:
    """``parent``: the final phase's parent run, which gets the ensemble model."""
    runs = group_runs(inv, tracker, trial_number)
    if not runs:
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    per_seed = {
        int(r.tags["lipo.seed"]): {
            m: r.metrics[f"test/{m}"] for m in METRICS if f"test/{m}" in r.metrics
        }
        for r in runs
    }
    train = inv.ws.split.part("train")
    example = [inv.ws.mols.smiles[i] for i in train[:3]]  # any molecules: they show the format
    for run in runs:
        export_one(inv, tracker, run, per_seed, example, argv)
    print(
        f"{len(runs)} final models logged as MLflow models (runs:/RUN_ID/{MODEL}, "
        f"with a model card)"
    )
    if parent is None:
        return
    refits = refit_runs(inv, tracker, trial_number) if inv.refit else {}  # --no-refit: none
    card = export_ensemble(inv, tracker, runs, parent, per_seed, register, refits)
    print(f"the ensemble of the {len(runs)} seeds: runs:/{parent}/{ENSEMBLE}")
    if register:
        version = tracker.register_model(register, parent, ENSEMBLE, card, alias=ALIAS)
        print(
            f"registered models:/{register}/{version} (models:/{register}@{ALIAS}): the "
            f"ensemble of seeds {', '.join(r.tags['lipo.seed'] for r in runs)}, "
            f"run {parent}"
        )


def export_ensemble(
    inv,
    tracker: Tracker,
    runs: list,
    parent: str,
    per_seed: dict,
    register: str | None,
    refits: dict[str, str] | None = None,
) -> str:
    """Logs the seeds' ensemble with its descriptor partner (``lipo.inference.bundle``) as the
    parent's ``ensemble/`` pyfunc model, and what it serves on test as ``served/*``; its card.
    The training molecules are the split's train part. ``refits``: a final run's refit run by
    its id (``lipo.final.refit``), whose checkpoint the ensemble serves in its place."""
    from lipo.final.card import ensemble_card
    from lipo.inference.bundle import gather_members, summary, write_bundle
    from lipo.mlflow_model import save_ensemble_pyfunc

    train_rows = inv.ws.split.part("train")
    train = [inv.ws.mols.smiles[i] for i in train_rows]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bundle"
        members = gather_members(
            tracker.download, [(int(r.tags["lipo.seed"]), r.run_id) for r in runs], folder, refits
        )
        write_bundle(folder, members, train, train_y=inv.ws.mols.y[train_rows])
        served = served_metrics(tracker, runs, folder, Path(tmp) / "test", refits)
        tracker.log_metrics(parent, served)
        card = ensemble_card(
            inv.study, summary(folder), per_seed, f"runs:/{parent}/{ENSEMBLE}", register, served
        )
        card_path = Path(tmp) / "README.md"
        card_path.write_text(card, encoding="utf-8")
        model = save_ensemble_pyfunc(Path(tmp) / ENSEMBLE, folder, train[:3], [card_path])
        tracker.log_artifacts(parent, model, ENSEMBLE)
    print(served_line(served))
    return card


def served_metrics(
    tracker: Tracker, runs: list, folder: Path, into: Path, refits: dict | None = None
) -> dict:
    """The ensemble's test metrics as the bundle serves them, from its members' test
    predictions (the final phase's one test evaluation; a refitted seed's refit's) and the
    partner's on the same molecules; beside them the members' mean, the partner alone and,
    where members are refits, the final seeds' own mean."""
    import numpy as np
    import pandas as pd

    from lipo.inference.bundle import MANIFEST
    from lipo.inference.conformal import ensemble_mean
    from lipo.inference.partner import Partner, mix, partner_features
    from lipo.metrics import regression_metrics

    def test_mean(run_ids: list[str]):
        tables = []
        for run_id in run_ids:
            tracker.download(run_id, "predictions_test.csv", into / run_id)
            tables.append(pd.read_csv(into / run_id / "predictions_test.csv"))
        return ensemble_mean(tables)

    refits = refits or {}
    test = test_mean([refits.get(r.run_id, r.run_id) for r in runs])
    y, mean, smiles = test["y_true"].to_numpy(), test["mean"].to_numpy(), list(test["smiles"])
    entry = json.loads((folder / MANIFEST).read_text())["partner"]
    partner = Partner.load(folder, entry)
    partner_test = partner.predict(partner_features(smiles, cached=True))
    served = mix(partner.weight, mean, partner_test)
    metrics = regression_metrics(y, served, "test")
    refitted = {}
    if any(r.run_id in refits for r in runs):
        seeds = test_mean([r.run_id for r in runs])["mean"].to_numpy()
        refitted = {
            "served/refit_members": float(sum(r.run_id in refits for r in runs)),
            "served/unrefitted_test_mse": float(np.mean((seeds - y) ** 2)),
        }
    return {
        **refitted,
        **{f"served/test_{k.split('/')[1]}": v for k, v in metrics.items()},
        "served/val_mse": partner.val_mse["served"],
        "served/ensemble_test_mse": float(np.mean((mean - y) ** 2)),
        "served/ensemble_val_mse": partner.val_mse["ensemble"],
        "served/partner_test_mse": float(np.mean((partner_test - y) ** 2)),
        "served/partner_val_mse": partner.val_mse["partner"],
        "served/partner_weight": partner.weight,
    }


def served_line(served: dict) -> str:
    w = served["served/partner_weight"]
    val, test = (
        [served[f"served/{who}{part}_mse"] for who in ("", "ensemble_", "partner_")]
        for part in ("val", "test")
    )
    refit = ""
    if "served/refit_members" in served:
        refit = (
            f" ({int(served['served/refit_members'])} members refitted on training + "
            f"validation; the final seeds' own mean: test/mse "
            f"{served['served/unrefitted_test_mse']:.4f})"
        )
    return (
        f"served: {w:.2f} x the seeds' mean + {1 - w:.2f} x the descriptor partner, chosen on "
        f"validation with the partner fitted on training molecules, then refitted on training + "
        f"validation; val/mse {val[0]:.4f}, test/mse {test[0]:.4f} (the seeds' mean alone "
        f"{val[1]:.4f} and {test[1]:.4f}, the partner alone {val[2]:.4f} and {test[2]:.4f})" + refit
    )


def export_one(
    inv, tracker: Tracker, run, per_seed: dict, example: list[str], argv: list[str]
) -> None:
    from lipo.mlflow_model import save_pyfunc

    run_id = run.run_id
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = tracker.download(run_id, "checkpoint", Path(tmp))
        card = render(facts(inv, tracker, run, per_seed, checkpoint, argv))
        card_path = Path(tmp) / "README.md"
        card_path.write_text(card, encoding="utf-8")
        folder = save_pyfunc(Path(tmp) / MODEL, checkpoint, example, [card_path])
        tracker.log_artifacts(run_id, folder, MODEL)
    tracker.set_tags(run_id, {"lipo.model": MODEL})


def facts(
    inv, tracker: Tracker, run, per_seed: dict, checkpoint: Path, argv: list[str]
) -> CardFacts:
    tags, params = run.tags, run.params
    backbone = json.loads((checkpoint / "backbone.json").read_text())
    split = inv.seed_workspace(int(tags["lipo.seed"])).split  # --split-per-seed: the seed's
    return CardFacts(
        study=inv.study,
        run_id=run.run_id,
        seed=int(tags["lipo.seed"]),
        optuna_study=inv.optuna_name,
        best_trial=tags.get("lipo.best_trial", ""),
        data=inv.ws.mols.source,
        data_sha256=inv.ws.data_sha256,
        molecules=len(inv.ws.mols),
        split=split.name,
        split_sha256=split.sha256,
        split_sizes={p: len(split.part(p)) for p in ("train", "val", "test")},
        backbone=backbone["source"],
        revision=backbone["revision"],
        adapter=tags.get("lipo.adapter", ""),
        settings=params,
        per_seed=per_seed,
        argv=trained_by(tracker, run, argv),
        control=tags.get("lipo.control", ""),
    )


def trained_by(tracker: Tracker, run, argv: list[str]) -> list[str]:
    """The arguments of the final command that trained ``run`` (its parent's "command")."""
    parent = run.tags.get("mlflow.parentRunId")
    command = tracker.run(parent).params.get("command") if parent else None
    return shlex.split(command)[2:] if command else list(argv)
