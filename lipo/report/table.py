"""MLflow runs ──► one row per study: the best configuration's final runs over seeds, or, for
a study without a final phase, its best validation score. Pure functions over ``RunRecord``s."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from lipo.report.verdicts import Verdict, judge
from lipo.tracking.finals import final_runs, newest_group

BASELINE = "baseline"
METRICS = ("mse", "rmse", "mae", "r2")
# Settings that differ between runs by construction, never knobs of the search.
NOT_KNOBS = {
    "seed",
    "phase",
    "study",
    "data",
    "split",
    "split_seed",
    "strict",
    "backbone",
    "strategy",
    "adapter",
    "head_features",
}
# The original study, as ARCHITECTURE.md cites it: one run on one random split, MoLFormer-XL.
REPORTED = {
    "baseline": (0.495, 0.673),
    "mlm": (None, 0.675),
    "influence": (0.443, 0.699),
    "curriculum": (0.375, 0.740),
    "active": (0.429, 0.701),
    "bitfit": (0.712, 0.517),
    "lora": (0.486, 0.671),
    "ia3": (0.470, 0.682),
}


@dataclass
class Row:
    study: str
    kind: str  # final | not final | reference
    variant: str = ""  # what sets its Optuna study apart beyond study/backbone/split: +rdkit
    control: str = ""  # the strategy's control run at the study's best settings: random-k
    backbone: str = ""
    split: str = ""
    split_sha256: str = ""
    optuna_study: str = ""
    best_trial: str = ""
    per_seed: dict = field(default_factory=dict)  # seed -> {"mse": .., "r2": .., ...}
    trainable_params: float | None = None
    total_params: float | None = None
    wall_time_s: float | None = None
    best_val_mse: float | None = None
    ensemble_mse: float | None = None  # test MSE of the seeds' mean prediction (report only)
    served_mse: float | None = None  # test MSE of what is served: the mean and its partner
    served_weight: float | None = None  # the seeds' share of the served blend
    interval_coverage: float | None = None  # test share inside its 90% conformal interval
    knobs: dict = field(default_factory=dict)
    run_ids: list = field(default_factory=list)
    split_shas: set = field(default_factory=set)  # one: seeds vary the initialisation only
    missing: str = ""  # a reference that cannot run here: why (chemprop not installed)
    # filled by compare(): against the baseline, and a strategy against each of its controls
    baseline_verdict: Verdict | None = None
    control_verdicts: list = field(default_factory=list)
    compare_note: str = ""  # why there is no baseline verdict: no baseline, other split

    @property
    def vs_baseline(self) -> str:
        if self.baseline_verdict is None:
            return self.compare_note
        return self.baseline_verdict.text() + self.compare_note

    @property
    def vs_controls(self) -> str:
        return "; ".join(f"vs {v.against}: {v.text()}" for v in self.control_verdicts)

    @property
    def delta_mse(self) -> float | None:
        return self.baseline_verdict.delta if self.baseline_verdict else None

    @property
    def p_value(self) -> float | None:
        return self.baseline_verdict.p if self.baseline_verdict else None

    @property
    def seeds_vary(self) -> str:
        """What the ± spans: seeds on one split vary the initialisation (and the order of the
        batches); seeds each on their own split vary the split as well."""
        if not self.per_seed:
            return ""
        return "initialisation + split" if len(self.split_shas) > 1 else "initialisation"

    @property
    def seeds(self) -> list[int]:
        return sorted(self.per_seed)

    @property
    def label(self) -> str:
        control = f" (control: {self.control})" if self.control else ""
        return f"{self.study} {self.variant}".strip() + control

    def stat(self, metric: str) -> tuple[float, float | None] | None:
        """Mean and standard deviation over seeds; no deviation from a single seed."""
        values = [m[metric] for m in self.per_seed.values() if metric in m]
        if not values:
            return None
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def matches(run, split: str | None, backbone: str | None) -> bool:
    """--split matches the tag (random_seed0, scaffold, a file's stem) or the command line's
    value kept as the param (random); --backbone the tag or, for a path, its folder name."""
    tag = run.tags.get("lipo.backbone", "")
    return (split is None or split in (run.tags.get("lipo.split"), run.params.get("split"))) and (
        backbone is None or backbone in (tag, Path(tag).name)
    )


def search_trials(runs: list) -> list:
    return [
        r
        for r in runs
        if r.tags.get("lipo.phase") == "search"
        and r.status == "FINISHED"
        and r.tags.get("lipo.state") == "COMPLETE"
        and "mlflow.parentRunId" in r.tags
    ]


def variant(run) -> str:
    """The Optuna study name's parts after study:backbone:split:data ('+rdkit', 'mse+params')."""
    return " ".join(run.tags.get("lipo.optuna_study", "").split(":")[4:])


def knob_values(params: dict, trials: list) -> dict:
    """The params that differ across the study's search trials (all of them with one trial)."""
    keys = set().union(*(t.params for t in trials)) if trials else set(params)
    varying = {k for k in keys if len({t.params.get(k) for t in trials}) > 1}
    chosen = varying or keys
    return {k: params[k] for k in sorted(chosen - NOT_KNOBS) if k in params}


def final_row(study: str, group: list, trials: list) -> Row:
    first = group[0]
    control = first.tags.get("lipo.control", "")
    same_study = [
        t for t in trials if t.tags.get("lipo.optuna_study") == first.tags.get("lipo.optuna_study")
    ]
    per_seed = {
        int(r.tags.get("lipo.seed", r.params.get("seed", 0))): {
            m: r.metrics[f"test/{m}"] for m in METRICS if f"test/{m}" in r.metrics
        }
        for r in group
    }
    walls = [r.metrics["wall_time_s"] for r in group if "wall_time_s" in r.metrics]
    split, split_sha = first.tags.get("lipo.split", ""), first.tags.get("lipo.split_sha256", "")
    if first.tags.get("lipo.split_per_seed"):
        # seed S on random_seed<S>: rows like this pair seed by seed, on the same data, when
        # their settings were searched on the same split
        searched = (first.tags.get("lipo.optuna_study", "").split(":") + ["", "", ""])[2]
        split = f"random per seed (searched on {searched})"
        split_sha = f"per-seed:{first.params.get('data', '')}:{searched}"
    return Row(
        study,
        "final",
        variant(first),
        control=control,
        backbone=first.tags.get("lipo.backbone", ""),
        split=split,
        split_sha256=split_sha,
        optuna_study=first.tags.get("lipo.optuna_study", ""),
        best_trial=first.tags["lipo.best_trial"],
        per_seed=per_seed,
        trainable_params=first.metrics.get("trainable_params"),
        total_params=first.metrics.get("total_params"),
        wall_time_s=statistics.mean(walls) if walls else None,
        knobs=knob_values(first.params, same_study),
        run_ids=[r.run_id for r in group],
        split_shas={r.tags.get("lipo.split_sha256", "") for r in group},
    )


def search_row(study: str, trials: list, best_val: dict) -> Row:
    """A study without a final phase: its best trial by validation MSE."""
    best = min(trials, key=lambda t: best_val[t.run_id])
    same_study = [
        t for t in trials if t.tags.get("lipo.optuna_study") == best.tags.get("lipo.optuna_study")
    ]
    return Row(
        study,
        "not final",
        variant(best),
        backbone=best.tags.get("lipo.backbone", ""),
        split=best.tags.get("lipo.split", ""),
        split_sha256=best.tags.get("lipo.split_sha256", ""),
        optuna_study=best.tags.get("lipo.optuna_study", ""),
        best_trial=best.tags.get("optuna.trial_number", ""),
        trainable_params=best.metrics.get("trainable_params"),
        total_params=best.metrics.get("total_params"),
        wall_time_s=best.metrics.get("wall_time_s"),
        best_val_mse=best_val[best.run_id],
        knobs=knob_values(best.params, same_study),
        run_ids=[best.run_id],
    )


def study_rows(runs: list, best_val: dict) -> list[Row]:
    """One row per Optuna study: a study on two backbones, or with and without descriptor
    features, gives two rows; each control of its final phase one more. ``best_val``: run id
    -> lowest val/mse over its epochs, for the search trials (the latest logged value is the
    last epoch, not the best)."""
    by_study: dict[tuple, list] = {}
    for run in runs:
        if run.tags.get("lipo.optuna_study"):
            by_study.setdefault((run.experiment, run.tags["lipo.optuna_study"]), []).append(run)
    rows = []
    for (study, _), study_runs in sorted(by_study.items()):
        finals, trials = final_runs(study_runs), search_trials(study_runs)
        trials = [t for t in trials if t.run_id in best_val]
        controls: dict[tuple, list] = {}  # (control, split per seed) -> its final runs
        for run in finals:
            controls.setdefault(
                (run.tags.get("lipo.control", ""), run.tags.get("lipo.split_per_seed", "")), []
            ).append(run)
        for _, group in sorted(controls.items()):
            rows.append(final_row(study, newest_group(group), trials))
        if trials and not finals:
            rows.append(search_row(study, trials, best_val))
    return rows


def compare(rows: list[Row]) -> None:
    """Paired verdicts on per-seed test MSE, on the same split: every final and reference row
    against the plain baseline of the same backbone where there is one (else another
    backbone's, said in the cell); each strategy row against each of its controls."""
    bases = [r for r in rows if r.study == BASELINE and r.kind == "final" and not r.control]
    for row in rows:
        if row.kind == "not final" or row.missing:
            continue
        controls = [
            c
            for c in rows
            if c.kind == "final"
            and c.control
            and not row.control
            and c.optuna_study == row.optuna_study
            and c.split_sha256 == row.split_sha256
        ]
        row.control_verdicts = [judge(mse_of(row), mse_of(c), c.control) for c in controls]
        same_split = [b for b in bases if b.split_sha256 == row.split_sha256]
        base = min(
            same_split, key=lambda b: (b.backbone != row.backbone, b.variant != ""), default=None
        )
        if row is base:
            continue
        if base is None:
            row.compare_note = (
                "not comparable (different split)" if bases else "no baseline final runs"
            )
            continue
        row.baseline_verdict = judge(mse_of(row), mse_of(base), base.label)
        if base.backbone != row.backbone or base.variant:
            row.compare_note = f" vs {base.label} on {base.backbone}"


def mse_of(row: Row) -> dict:
    return {seed: m["mse"] for seed, m in row.per_seed.items() if "mse" in m}
