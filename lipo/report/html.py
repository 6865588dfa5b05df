"""Rows ──► the table as text (terminal, Markdown), numbers (CSV) and one standalone page."""

from __future__ import annotations

import html
import math

import pandas as pd

from lipo.report.table import METRICS, REPORTED, Row

REPORTED_COLUMN = "reported by the original study (one run, one split): MSE / R²"
NOTE = (
    "Final rows: mean ± std over seeds of the best configuration's final runs (the only "
    "runs that saw the test split). 'not final': no final phase yet, best val/mse of the "
    "search shown. References are fitted by the report on the same split and seeds (their "
    "wall s/run is the fit time). "
    "vs baseline, vs control: test MSE of this row minus the other's, paired over the seeds "
    "both have on the same split: mean difference, its 95% t-interval, the paired t-test's "
    "p and a verdict (helps: lower MSE at p < 0.05; hurts: higher; within noise: p ≥ 0.05 "
    "or fewer than 2 paired seeds). A strategy is judged against the plain baseline and "
    "against its own control; a control against the baseline. 'seeds vary': what the ± "
    "spans (initialisation only when every seed shares one split). The original study's "
    "numbers are one run of MoLFormer-XL on one random split (standard error of an MSE ~0.02). "
    "90% interval test coverage: the share of test molecules inside the seeds' mean ± the "
    "split-conformal half-width calibrated on validation (the registered model's interval)."
)


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def knob_text(knobs: dict) -> str:
    def short(value: str) -> str:
        try:
            number = float(value)
        except ValueError:
            return value
        return value if number.is_integer() and "e" not in value else f"{number:.3g}"

    return ", ".join(f"{k}={short(str(v))}" for k, v in knobs.items())


def params_text(row: Row) -> str:
    if row.trainable_params is None:
        return ""
    share = f" ({100 * row.trainable_params / row.total_params:.3g}%)" if row.total_params else ""
    return f"{int(row.trainable_params):,}{share}"


def reported_text(row: Row) -> str:
    """Beside the plain study only: the original study had no variants."""
    if row.study not in REPORTED or row.variant or row.control or row.kind == "reference":
        return ""
    mse, r2 = REPORTED[row.study]
    return f"{fmt(mse) or '–'} / {fmt(r2)}"


def baseline_text(row: Row) -> str:
    if row.missing:
        return row.missing
    if not row.vs_baseline:
        return "(baseline)" if row.study == "baseline" and row.kind == "final" else ""
    return row.vs_baseline


def stat_text(row: Row, metric: str) -> str:
    """'0.652 ± 0.022' over several seeds; a single seed has no spread to show."""
    stat = row.stat(metric)
    if stat is None:
        return ""
    mean, std = stat
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def display_frame(rows: list[Row]) -> pd.DataFrame:
    records = []
    for row in rows:
        record = {
            "study": row.label,
            "status": row.kind,
            "backbone": row.backbone,
            "split": row.split,
            "seeds": len(row.seeds) or "",
            "seeds vary": row.seeds_vary,
        }
        for metric in METRICS:
            record[f"test {metric.upper() if metric != 'r2' else 'R²'}"] = stat_text(row, metric)
        record.update(
            {
                "ensemble test MSE": fmt(row.ensemble_mse),
                "served test MSE": served_text(row),
                "90% interval test coverage": fmt(row.interval_coverage),
                "best val MSE": fmt(row.best_val_mse),
                "trainable params": params_text(row),
                "wall s/run": fmt(row.wall_time_s, 1),
                "vs baseline (test MSE)": baseline_text(row),
                "vs control (test MSE)": row.vs_controls,
                REPORTED_COLUMN: reported_text(row),
                "knobs": knob_text(row.knobs),
            }
        )
        records.append(record)
    return pd.DataFrame(records)


def numeric_frame(rows: list[Row]) -> pd.DataFrame:
    records = []
    for row in rows:
        reported = (None, None) if row.control else REPORTED.get(row.study, (None, None))
        record = {
            "study": row.study,
            "variant": row.variant,
            "control": row.control,
            "status": row.kind,
            "backbone": row.backbone,
            "split": row.split,
            "split_sha256": row.split_sha256,
            "optuna_study": row.optuna_study,
            "best_trial": row.best_trial,
            "seeds": " ".join(map(str, row.seeds)),
            "n_seeds": len(row.seeds),
            "seeds_vary": row.seeds_vary,
        }
        for metric in METRICS:
            stat = row.stat(metric) or (None, None)
            record[f"test_{metric}_mean"], record[f"test_{metric}_std"] = stat
        record.update(
            {
                "test_ensemble_mse": row.ensemble_mse,
                "test_served_mse": row.served_mse,
                "served_weight": row.served_weight,
                "test_interval_coverage": row.interval_coverage,
                "best_val_mse": row.best_val_mse,
                "trainable_params": row.trainable_params,
                "total_params": row.total_params,
                "wall_time_s": row.wall_time_s,
                **verdict_columns(row),
                "reported_mse": reported[0],
                "reported_r2": reported[1],
                "knobs": knob_text(row.knobs),
            }
        )
        records.append(record)
    return pd.DataFrame(records)


def verdict_columns(row: Row) -> dict:
    """Against the baseline: the difference, its interval, p, and the verdict's word; against
    the controls: the text (a strategy may have several)."""
    verdict = row.baseline_verdict
    return {
        "delta_test_mse_vs_baseline": row.delta_mse,
        "ci95_low_vs_baseline": verdict.low if verdict else None,
        "ci95_high_vs_baseline": verdict.high if verdict else None,
        "p_value": row.p_value,
        "verdict_vs_baseline": verdict.word if verdict else "",
        "vs_baseline": row.missing or row.vs_baseline,
        "vs_control": row.vs_controls,
    }


def markdown(frame: pd.DataFrame, title: str) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(str(v).replace("|", "/") for v in record) + " |"
        for record in frame.itertuples(index=False)
    ]
    return "\n".join([f"# {title}", "", header, rule, *body, "", NOTE, ""])


def terminal(frame: pd.DataFrame) -> str:
    """The columns that fit a terminal; RMSE, MAE, knobs and the original study's numbers are
    in the files. The split stays when rows of several splits share the table: without it a
    scaffold-split row reads as a second row of the same study."""
    hidden = ["knobs", REPORTED_COLUMN, "test RMSE", "test MAE"]
    if frame["split"].nunique() <= 1:
        hidden.append("split")
    return frame.drop(columns=hidden).to_string(index=False)


def page(frame: pd.DataFrame, title: str, figures: list[tuple[str, str]], notes: list[str]) -> str:
    """One self-contained page: the table, then every figure as an embedded PNG."""
    table = frame.to_html(index=False, escape=True, border=0, classes="results")
    parts = [
        f'<h2>{html.escape(caption)}</h2>\n<img alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{data}">'
        for caption, data in figures
    ]
    remarks = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table.results {{ border-collapse: collapse; font-size: 13px; }}
table.results th, table.results td {{ border: 1px solid #ccc; padding: 3px 6px; }}
table.results th {{ background: #f0f0f0; }}
table.results td {{ white-space: nowrap; }}
table.results td:last-child {{ white-space: normal; min-width: 18em; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<div style="overflow-x: auto">{table}</div>
<p>{html.escape(NOTE)}</p>
<ul>{remarks}</ul>
{chr(10).join(parts)}
</body></html>
"""


def served_text(row) -> str:
    """The served blend's test MSE and the seeds' share in it."""
    if row.served_mse is None:
        return ""
    return f"{fmt(row.served_mse)} ({row.served_weight:.2f} seeds)"
