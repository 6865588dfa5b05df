"""The report's figures, each returned as a base64 PNG so the HTML page stands alone."""

from __future__ import annotations

import base64
import io
import math

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 90  # ~40-80 kB per figure: the page stays small enough to mail


def png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def grid(n: int, size: float = 3.6):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def parity(panels: list[tuple[str, np.ndarray, np.ndarray]]) -> str:
    """Predicted against true logD on test, one panel per study (mean prediction over seeds)."""
    fig, axes = grid(len(panels))
    for ax, (title, y_true, y_pred) in zip(axes, panels):
        low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
        ax.plot([low, high], [low, high], color="grey", lw=1)
        ax.scatter(y_true, y_pred, s=6, alpha=0.5)
        ax.set(title=title, xlabel="true logD", ylabel="predicted logD")
    return png(fig)


def curves(
    series: dict[str, list[tuple[int, float]]], xlabel: str, ylabel: str, running_best: bool = False
) -> str:
    """One line per study: val/mse by epoch, or best val/mse by trial with its running best."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, points in series.items():
        x, y = zip(*points)
        if running_best:
            line = ax.plot(x, np.minimum.accumulate(y), label=f"{name} (best so far)")[0]
            ax.scatter(x, y, s=14, color=line.get_color(), alpha=0.6)
        else:
            ax.plot(x, y, marker="o", ms=3, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # epochs, trials
    ax.legend(fontsize=8)
    return png(fig)


def mse_vs_params(points: list[tuple[str, float, float, float]]) -> str:
    """(label, trainable params, test MSE mean, std) per final study, log x axis."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, params, mean, std in points:
        ax.errorbar(params, mean, yerr=std, fmt="o", capsize=3)
        ax.annotate(label, (params, mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set(xlabel="trainable parameters", ylabel="test MSE (mean ± std over seeds)")
    return png(fig)


def importances(panels: dict[str, dict[str, float]]) -> str:
    """fANOVA importance of each knob, one panel per study, most important on top."""
    fig, axes = grid(len(panels), size=4.2)
    for ax, (title, ranked) in zip(axes, panels.items()):
        names = list(ranked)[::-1]
        ax.barh(names, [ranked[n] for n in names])
        ax.set(title=title, xlabel="importance (share of val/mse variance)", xlim=(0, 1))
        ax.tick_params(axis="y", labelsize=8)
    return png(fig)


def strategy_output(title: str, table: pd.DataFrame) -> str | None:
    """A strategy's CSV output: a schedule (an 'epoch' column: its first two series against
    epoch, the second on its own axis, as pool size and difficulty differ by 100x), else the
    histogram of its last numeric column (influence score, MC-dropout uncertainty), split by
    'selected' when the table has it."""
    numeric = table.select_dtypes("number").dropna(axis=1, how="all")
    if numeric.empty or (list(numeric.columns) == ["epoch"]):
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    if "epoch" in numeric.columns:
        first, *rest = numeric.columns.drop("epoch")
        ax.plot(numeric["epoch"], numeric[first], marker="o", ms=3)
        ax.set(xlabel="epoch", ylabel=first)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if rest:
            twin = ax.twinx()
            twin.plot(numeric["epoch"], numeric[rest[0]], marker="s", ms=3, color="C1")
            twin.set_ylabel(rest[0], color="C1")
    else:
        column = numeric.columns[-1]
        if "selected" in table.columns:
            chosen = table["selected"].astype(bool)
            ax.hist(
                [numeric[column][~chosen].dropna(), numeric[column][chosen].dropna()],
                bins=40,
                stacked=True,
                label=["not selected", "selected"],
            )
            ax.legend(fontsize=8)
        else:
            ax.hist(numeric[column].dropna(), bins=40)
        ax.set(xlabel=column, ylabel="molecules")
    ax.set_title(title)
    return png(fig)


def bands(table: pd.DataFrame) -> str:
    """Grouped bars: MAE per similarity band (columns band, molecules, mae), one colour per
    study (column study)."""
    studies = list(dict.fromkeys(table["study"]))
    labels = list(dict.fromkeys(table["band"]))
    width = 0.8 / len(studies)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, study in enumerate(studies):
        part = table[table["study"] == study].set_index("band").reindex(labels)
        x = np.arange(len(labels)) + i * width
        ax.bar(x, part["mae"].fillna(0), width, label=study)
        for xi, n, mae in zip(x, part["molecules"], part["mae"].fillna(0)):
            ax.annotate(f"{int(n)}", (xi, mae), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels)
    ax.set(xlabel="max Tanimoto similarity to a training molecule", ylabel="test MAE (logD)")
    ax.legend(fontsize=8)
    return png(fig)
