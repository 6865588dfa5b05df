"""``python launch.py --report``: MLflow ──► comparison table (Markdown, CSV, HTML) and plots
under ``reports/``, also logged as the artifacts of a run "report" in the experiment "report".

Built from MLflow alone: the test split is read only through the final runs' test metrics and
predictions, and through the reference models fitted here on train and evaluated on test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from lipo.errors import LipoError
from lipo.report import html as report_html
from lipo.report import plots as report_plots
from lipo.report.calibration import attach_ensembles, calibration_figures, final_tables
from lipo.report.references import references, tree_count
from lipo.report.reliability import (
    BANDS_CSV,
    attach_reliability,
    band_figure,
    band_notes,
)
from lipo.report.served import served_tables, served_test_tables
from lipo.report.table import NOT_KNOBS, Row, compare, matches, search_trials, study_rows
from lipo.runtime import workdir
from lipo.search.importance import param_importances
from lipo.strategies import plotted
from lipo.tracking.reader import StoreReader
from lipo.tracking.schema import DEFAULT_TRACKING_URI
from lipo.tracking.store import Tracker

OUT = Path("reports")


def report(args) -> None:
    uri = args.tracking_uri or DEFAULT_TRACKING_URI
    where = f"{uri}" + "".join(
        f", {flag} {value}"
        for flag, value in (("--split", args.split), ("--backbone", args.backbone))
        if value
    )
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        print(f"nothing to report: no MLflow store at {uri}")
        return
    store = StoreReader(uri)
    runs = [r for r in store.study_runs() if matches(r, args.split, args.backbone)]
    curves = {t.run_id: store.history(t.run_id, "val/mse") for t in search_trials(runs)}
    best_val = {run_id: min(v for _, v in points) for run_id, points in curves.items() if points}
    rows = study_rows(runs, best_val)
    if not rows:
        print(f"nothing to report: no completed trial or finished final run in {where}")
        return
    notes: list[str] = []
    rows = ordered(rows + reference_rows(rows, runs, notes))
    compare(rows)
    tables = final_tables(store, rows)
    attach_ensembles(rows, tables)
    val_tables = final_tables(store, rows, "predictions_val.csv")
    served_tests = served_test_tables(store, rows, runs, tables)
    served = served_tables(rows, runs, val_tables, served_tests, notes)
    vals, tests = reliability_tables(rows, val_tables, tables, served)
    bands = attach_reliability(rows, runs, vals, tests, notes)
    notes += band_notes(bands)
    frame = report_html.display_frame(rows)
    figures = make_figures(store, rows, runs, curves, best_val, tables)
    figures += calibration_figures(rows, tables, notes) + band_figure(bands)
    write(frame, report_html.numeric_frame(rows), figures, notes, f"lipo report ({where})")
    if bands.empty:
        (OUT / BANDS_CSV).unlink(missing_ok=True)  # a stale one from an earlier report
    else:
        bands.to_csv(OUT / BANDS_CSV, index=False)
    publish(uri)
    print(report_html.terminal(frame))
    for note in notes:
        print(note)
    print(f"report: {OUT / 'report.html'}, {OUT / 'report.md'}, {OUT / 'report.csv'}")


def reliability_tables(rows: list[Row], val_tables: dict, tables: dict, served: dict):
    """(val, test) tables per final row whose runs all have both: the served prediction's
    where it is known (one table each), else the seeds'."""
    vals, tests = {}, {}
    for row in (r for r in rows if r.kind == "final"):
        key = tuple(row.run_ids)
        if key in served:
            vals[key], tests[key] = [served[key][0]], [served[key][1]]
        elif row.run_ids and len(val_tables.get(key, [])) == len(tables.get(key, [])) == len(
            row.run_ids
        ):
            vals[key], tests[key] = val_tables[key], tables[key]
    return vals, tests


def ordered(rows: list[Row]) -> list[Row]:
    """Final rows by test MSE, then the references, then studies without a final phase."""

    def key(row: Row):
        stat = row.stat("mse")
        rank = {"final": 0, "reference": 1, "not final": 2}[row.kind]
        return rank, stat[0] if stat else (row.best_val_mse or 0.0)

    return sorted(rows, key=key)


def reference_rows(rows: list[Row], runs: list, notes: list[str]) -> list[Row]:
    """The reference models on each split the final rows used, over the union of their seeds;
    a model that cannot run here gets a row that says why."""
    by_id = {r.run_id: r for r in runs}
    found = []
    for sha in sorted({r.split_sha256 for r in rows if r.kind == "final"}):
        finals = [r for r in rows if r.kind == "final" and r.split_sha256 == sha]
        if sha.startswith("per-seed:"):
            notes.append(
                "references are not fitted for the rows with a split per seed "
                "(each reference is fitted on one split)"
            )
            continue
        seeds = sorted(set().union(*(r.seeds for r in finals)))
        params = by_id[finals[0].run_ids[0]].params
        try:
            fitted = references(params, sha, seeds, workdir.cache("reports", OUT / ".cache"))
        except LipoError as exc:
            notes.append(f"references skipped for split {finals[0].split}: {exc}")
            continue
        found += [reference_row(ref, sha) for ref in fitted]
    return found


def reference_row(ref: dict, sha: str) -> Row:
    graph = ref["model"] == "chemprop_dmpnn"  # learns from the graph, not the fingerprints
    rounds = {"epochs" if graph else "trees": tree_count(ref["model"])}
    return Row(
        f"{ref['model']} (reference)",
        "reference",
        backbone="molecular graph" if graph else "Morgan+RDKit2D",
        split=ref["split"],
        split_sha256=sha,
        per_seed={int(s): m for s, m in ref.get("per_seed", {}).items()},
        wall_time_s=ref.get("fit_time_s"),
        knobs=rounds,
        split_shas={sha},
        missing=ref.get("missing", ""),
    )


def name(row: Row) -> str:
    """A row's name in figures: the same study may run on several backbones."""
    return f"{row.label} · {row.backbone}"


def make_figures(
    store: StoreReader, rows: list[Row], runs: list, curves: dict, best_val: dict, tables: dict
) -> list[tuple[str, str]]:
    """``tables``: the final rows' test predictions (``final_tables``)."""
    trials = search_trials(runs)
    figures = []
    panels = parity_panels([r for r in rows if r.kind == "final"], tables)
    if panels:
        figures.append(
            (
                "Parity on test: predicted vs true logD (mean over seeds)",
                report_plots.parity(panels),
            )
        )
    best_curves, histories, ranked = {}, {}, {}
    for row in (r for r in rows if r.kind != "reference" and not r.control):  # one per search
        mine = [
            t
            for t in trials
            if t.tags.get("lipo.optuna_study") == row.optuna_study and t.run_id in best_val
        ]
        best = [t for t in mine if t.tags.get("optuna.trial_number") == row.best_trial]
        if best and curves.get(best[0].run_id):
            best_curves[f"{name(row)} (trial {row.best_trial})"] = curves[best[0].run_id]
        history = sorted(
            (int(t.tags.get("optuna.trial_number", 0)), best_val[t.run_id]) for t in mine
        )
        if history:
            histories[name(row)] = history
        knobs = param_importances(
            [
                ({k: v for k, v in t.params.items() if k not in NOT_KNOBS}, best_val[t.run_id])
                for t in mine
            ]
        )
        if knobs:
            ranked[f"{name(row)} ({len(mine)} trials)"] = knobs
    if best_curves:
        figures.append(
            (
                "Validation curves of the best trials",
                report_plots.curves(best_curves, "epoch", "val/mse"),
            )
        )
    if histories:
        figures.append(
            (
                "Optimisation history: best val/mse per trial",
                report_plots.curves(histories, "trial", "best val/mse", running_best=True),
            )
        )
    if ranked:
        figures.append(
            (
                "Parameter importances (fANOVA over completed trials)",
                report_plots.importances(ranked),
            )
        )
    points = [
        (name(r), r.trainable_params, *r.stat("mse"))
        for r in rows
        if r.kind == "final" and r.trainable_params
    ]
    if points:
        figures.append(
            ("Test MSE against trainable parameters", report_plots.mse_vs_params(points))
        )
    by_id = {r.run_id: r for r in runs}
    learning = learning_curves(store, rows, by_id)
    if learning:
        figures.append(
            (
                "Active learning: validation MSE against labelled molecules (mean over seeds)",
                report_plots.curves(learning, "labelled molecules", "val/mse"),
            )
        )
    return figures + strategy_figures(store, rows, by_id)


def learning_curves(store: StoreReader, rows: list[Row], by_id: dict) -> dict:
    """Each active-learning row's val/mse per labelled-set size (the metric active/val_mse,
    step = labelled molecules), averaged over its runs: the strategy beside its control."""
    series = {}
    for row in rows:
        runs = [by_id[i] for i in row.run_ids if i in by_id]
        if not runs or runs[0].tags.get("lipo.strategy") != "active":
            continue
        by_size: dict[int, list[float]] = {}
        for run in runs:
            for size, value in store.history(run.run_id, "active/val_mse"):
                by_size.setdefault(size, []).append(value)
        if by_size:
            series[name(row)] = [(size, sum(v) / len(v)) for size, v in sorted(by_size.items())]
    return series


def parity_panels(finals: list[Row], tables: dict) -> list[tuple]:
    panels = []
    for row in finals:
        mine = tables.get(tuple(row.run_ids))
        if not mine:
            continue
        mean = pd.concat(mine).groupby("row")[["y_true", "y_pred"]].mean()
        panels.append(
            (
                f"{name(row)}: test MSE {row.stat('mse')[0]:.3f}",
                mean["y_true"].to_numpy(),
                mean["y_pred"].to_numpy(),
            )
        )
    return panels


def strategy_figures(store: StoreReader, rows: list[Row], by_id: dict) -> list[tuple[str, str]]:
    """Influence scores, acquired molecules, curriculum schedules: the CSV files of the
    strategies registered with ``plots``, where a study logged them (first run of its row)."""
    figures, strategies = [], set(plotted())
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            run = by_id.get(row.run_ids[0]) if row.run_ids else None
            if run is None or run.tags.get("lipo.strategy") not in strategies:
                continue
            for artifact in store.artifact_names(run.run_id):
                if not artifact.endswith(".csv") or artifact.startswith("predictions_"):
                    continue
                path = store.download(run.run_id, artifact, Path(tmp) / run.run_id)
                # curriculum_schedule.csv: "curriculum schedule (curriculum_schedule.csv)"
                what = Path(artifact).stem.replace("_", " ")
                caption = f"{name(row)}: {what} ({artifact})"
                image = path and report_plots.strategy_output(caption, pd.read_csv(path))
                if image:
                    figures.append((caption, image))
    return figures


def write(
    frame: pd.DataFrame, numbers: pd.DataFrame, figures: list, notes: list[str], title: str
) -> None:
    OUT.mkdir(exist_ok=True)
    numbers.to_csv(OUT / "report.csv", index=False)
    text = report_html.markdown(frame, title)
    (OUT / "report.md").write_text(text + "".join(f"\n{n}\n" for n in notes), encoding="utf-8")
    (OUT / "report.html").write_text(
        report_html.page(frame, title, figures, notes), encoding="utf-8"
    )


def publish(uri: str) -> None:
    """The same files as artifacts of a new run "report" (the cache stays local)."""
    tracker = Tracker(uri, "report")
    run_id = tracker.start_run("report", {"lipo.phase": "report"})
    for name in ("report.md", "report.csv", "report.html", BANDS_CSV):
        if (OUT / name).is_file():
            tracker.log_artifact(run_id, OUT / name)
    tracker.finish(run_id)
