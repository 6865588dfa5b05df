"""After the final phase: each final run of the chosen settings gets an MLflow pyfunc model
(``model/``, its card ``model/README.md`` beside it), and ``--register NAME`` registers the
best of them, by validation MSE (the test split chooses nothing), in the model registry.

Done once all seeds have finished, so that every card carries the metrics over every seed;
re-running ``--final`` re-exports them (a seed added later changes every card)."""
from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

from lipo.model_card import METRICS, CardFacts, render
from lipo.tracking import Tracker

MODEL = "model"  # the artifact path of the pyfunc model in each final run


def command_line(argv) -> str:
    """Kept as the final parent run's param "command": each model card quotes the command
    that trained it, not a later one that only re-exported it."""
    return shlex.join(["python", "launch.py", *argv])


def group_runs(inv, tracker: Tracker, trial_number: int) -> list:
    """The finished final runs of this best trial (and control), the newest per seed."""
    from lipo.final import same_control
    query = (f"tags.`lipo.phase` = 'final' AND tags.`lipo.optuna_study` = '{inv.optuna_name}' "
             f"AND tags.`lipo.best_trial` = '{trial_number}' AND attributes.status = 'FINISHED'")
    by_seed = {}
    for run in sorted(same_control(inv, tracker.runs(query)), key=lambda r: r.start_time):
        by_seed[int(run.tags["lipo.seed"])] = run
    return [by_seed[s] for s in sorted(by_seed)]


def export_models(inv, tracker: Tracker, trial_number: int, argv: list[str],
                  register: str | None = None) -> None:
    runs = group_runs(inv, tracker, trial_number)
    if not runs:
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    per_seed = {int(r.tags["lipo.seed"]): {m: r.metrics[f"test/{m}"] for m in METRICS
                                                 if f"test/{m}" in r.metrics} for r in runs}
    train = inv.ws.split.part("train")
    example = [inv.ws.mols.smiles[i] for i in train[:3]]  # any molecules: they show the format
    cards = {}
    for run in runs:
        cards[run.run_id] = export_one(inv, tracker, run, per_seed, example, argv)
    print(f"{len(runs)} final models logged as MLflow models (runs:/RUN_ID/{MODEL}, "
          f"with a model card)")
    if register:
        best = min(runs, key=lambda r: min(tracker.metric_history(r.run_id, "val/mse")))
        version = tracker.register_model(register, best.run_id, MODEL,
                                         cards[best.run_id])
        print(f"registered models:/{register}/{version}: seed {best.tags['lipo.seed']}, "
              f"run {best.run_id} (lowest val/mse of the {len(runs)} seeds)")


def export_one(inv, tracker: Tracker, run, per_seed: dict, example: list[str],
               argv: list[str]) -> str:
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
    return card


def facts(inv, tracker: Tracker, run, per_seed: dict, checkpoint: Path,
          argv: list[str]) -> CardFacts:
    tags, params = run.tags, run.params
    backbone = json.loads((checkpoint / "backbone.json").read_text())
    split = inv.seed_workspace(int(tags["lipo.seed"])).split  # --split-per-seed: the seed's
    return CardFacts(
        study=inv.study, run_id=run.run_id, seed=int(tags["lipo.seed"]),
        optuna_study=inv.optuna_name, best_trial=tags.get("lipo.best_trial", ""),
        data=inv.ws.mols.source, data_sha256=inv.ws.data_sha256, molecules=len(inv.ws.mols),
        split=split.name, split_sha256=split.sha256,
        split_sizes={p: len(split.part(p)) for p in ("train", "val", "test")},
        backbone=backbone["source"], revision=backbone["revision"],
        adapter=tags.get("lipo.adapter", ""), settings=params, per_seed=per_seed,
        argv=trained_by(tracker, run, argv), control=tags.get("lipo.control", ""))


def trained_by(tracker: Tracker, run, argv: list[str]) -> list[str]:
    """The arguments of the final command that trained ``run`` (its parent's "command")."""
    parent = run.tags.get("mlflow.parentRunId")
    command = tracker.run(parent).params.get("command") if parent else None
    return shlex.split(command)[2:] if command else list(argv)
