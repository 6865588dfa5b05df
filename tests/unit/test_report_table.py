"""The report's table logic on synthetic runs in a real SQLite MLflow store."""

import math
import statistics

import pytest
from scipy.stats import t, ttest_rel

from lipo.report.table import compare, matches, search_trials, study_rows
from lipo.tracking.reader import StoreReader
from lipo.tracking.store import Tracker

SPLIT = {"lipo.split": "random_seed0", "lipo.split_sha256": "abc"}


def trial(tracker, parent, number, curve, params, backbone="tiny", state="COMPLETE", suffix=""):
    tags = {
        "lipo.study": tracker.name,
        "lipo.phase": "search",
        "lipo.backbone": backbone,
        "lipo.optuna_study": f"{tracker.name}:{backbone}:random_seed0:data{suffix}",
        "optuna.trial_number": number,
        "lipo.state": state,
        **SPLIT,
    }
    run = tracker.start_run(f"trial {number}", tags, parent, params)
    for epoch, value in enumerate(curve, 1):
        tracker.log_metrics(run, {"val/mse": value}, step=epoch)
    tracker.log_metrics(run, {"trainable_params": 10, "total_params": 40, "wall_time_s": 3})
    tracker.finish(run, "FINISHED" if state == "COMPLETE" else "KILLED")


def final(tracker, parent, best_trial, seed, mse, params, suffix="", control=""):
    tags = {
        "lipo.study": tracker.name,
        "lipo.phase": "final",
        "lipo.backbone": "tiny",
        "lipo.optuna_study": f"{tracker.name}:tiny:random_seed0:data{suffix}",
        "lipo.best_trial": best_trial,
        "lipo.seed": seed,
        **SPLIT,
        **({"lipo.control": control} if control else {}),
    }
    run = tracker.start_run(f"final seed {seed}", tags, parent, {**params, "seed": seed})
    tracker.log_metrics(
        run,
        {
            "test/mse": mse,
            "test/rmse": mse**0.5,
            "test/mae": mse / 2,
            "test/r2": 1 - mse,
            "trainable_params": 10,
            "total_params": 40,
            "wall_time_s": 2.0 + seed,
        },
    )
    tracker.finish(run)


def study(uri, name, finals, search=((0, [1.0, 0.8]), (1, [0.9, 0.7, 0.75])), suffix=""):
    tracker = Tracker(uri, name)
    tracker.name = name
    parent = tracker.start_run("search", {"lipo.study": name, "lipo.phase": "search"})
    for number, curve in search:
        trial(
            tracker,
            parent,
            number,
            curve,
            {"lr": 0.001 * (number + 1), "dropout": 0.1, "split": "random"},
            suffix=suffix,
        )
    for best_trial, seed, mse in finals:
        final(
            tracker,
            parent,
            best_trial,
            seed,
            mse,
            {"lr": 0.002, "dropout": 0.1, "split": "random"},
            suffix=suffix,
        )
    return tracker


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)  # the experiments' artifact folder lands here, not in the repo
        yield make_store(f"sqlite:///{tmp_path}/mlflow.db")


def make_store(uri):
    base = [(1, 0, 0.50), (1, 1, 0.55), (1, 2, 0.52)]
    # an older best trial, then trial 1 (newest group); seed 1 finished twice by two workers
    study(uri, "baseline", [(0, 0, 9.0), (0, 1, 9.0), *base[:2], (1, 1, 0.54), base[2]])
    study(uri, "lora", [(1, s, m + 0.2 + 0.01 * s) for _, s, m in base])
    study(uri, "bitfit", [], search=((0, [1.2, 1.1]), (1, [0.95, 1.3])))
    # the baseline again with descriptor features: its own Optuna study, one seed so far
    study(uri, "baseline", [(0, 0, 0.45)], search=((0, [0.9, 0.6]),), suffix=":+rdkit")
    # a strategy's final runs and its control's, at the same best trial and seeds
    influence = study(uri, "influence", [(1, s, m - 0.01) for _, s, m in base])
    for _, seed, mse in base:
        final(
            influence,
            None,
            1,
            seed,
            mse + 0.1 + 0.02 * seed,
            {"lr": 0.002, "split": "random"},
            control="random-k",
        )
    Tracker(uri, "pretrain").start_run("pretrain", {"lipo.study": "pretrain"})
    return StoreReader(uri)


def rows_of(store, split=None, backbone=None):
    runs = [r for r in store.study_runs() if matches(r, split, backbone)]
    best_val = {
        t.run_id: min(v for _, v in store.history(t.run_id, "val/mse")) for t in search_trials(runs)
    }
    rows = study_rows(runs, best_val)
    compare(rows)
    return {r.label: r for r in rows}


def test_final_rows_take_the_newest_best_trial_and_newest_run_per_seed(store):
    rows = rows_of(store)
    assert set(rows) == {
        "baseline",
        "baseline +rdkit",
        "lora",
        "bitfit",
        "influence",
        "influence (control: random-k)",
    }  # not pretrain
    base = rows["baseline"]
    assert base.kind == "final" and base.best_trial == "1" and base.seeds == [0, 1, 2]
    expected = [0.50, 0.54, 0.52]
    assert base.stat("mse") == pytest.approx(
        (statistics.mean(expected), statistics.stdev(expected))
    )
    assert base.stat("r2")[0] == pytest.approx(1 - statistics.mean(expected))
    assert base.wall_time_s == pytest.approx(3.0)
    assert base.trainable_params == 10 and base.total_params == 40
    assert base.knobs == {"lr": "0.002"}  # dropout never varied in the search


def test_paired_test_against_baseline(store):
    rows = rows_of(store)
    lora = rows["lora"]
    ours, theirs = [0.70, 0.76, 0.74], [0.50, 0.54, 0.52]
    assert lora.delta_mse == pytest.approx(statistics.mean(a - b for a, b in zip(ours, theirs)))
    assert lora.p_value == pytest.approx(ttest_rel(ours, theirs).pvalue)
    assert lora.p_value < 0.05 and lora.baseline_verdict.word == "hurts"
    diffs = [a - b for a, b in zip(ours, theirs)]
    half = t.ppf(0.975, 2) * statistics.stdev(diffs) / math.sqrt(3)
    verdict = lora.baseline_verdict
    assert (verdict.low, verdict.high) == pytest.approx(
        (statistics.mean(diffs) - half, statistics.mean(diffs) + half)
    )
    assert verdict.low > 0 and verdict.seeds == 3
    assert lora.vs_baseline.startswith("hurts +0.213 [") and lora.vs_baseline.endswith(", 3 seeds")
    assert rows["baseline"].vs_baseline == ""


def test_study_without_final_phase_shows_its_best_validation(store):
    bitfit = rows_of(store)["bitfit"]
    assert bitfit.kind == "not final" and bitfit.per_seed == {}
    assert bitfit.best_val_mse == pytest.approx(0.95) and bitfit.best_trial == "1"
    assert bitfit.vs_baseline == ""


def test_filters_match_tags(store):
    assert rows_of(store, split="scaffold") == {}
    every = {
        "baseline",
        "baseline +rdkit",
        "lora",
        "bitfit",
        "influence",
        "influence (control: random-k)",
    }
    assert set(rows_of(store, split="random_seed0", backbone="tiny")) == every
    assert set(rows_of(store, split="random")) == every
    assert rows_of(store, backbone="mini") == {}


def test_a_variant_gets_its_own_row_compared_with_the_plain_baseline(store):
    rdkit = rows_of(store)["baseline +rdkit"]
    assert rdkit.kind == "final" and rdkit.variant == "+rdkit" and rdkit.seeds == [0]
    assert rdkit.stat("mse") == (pytest.approx(0.45), None)  # one seed: no spread
    assert rdkit.delta_mse == pytest.approx(0.45 - 0.50)
    assert rdkit.vs_baseline == "within noise -0.050, 1 seed"  # one seed: no interval, no test


def test_a_control_is_its_own_row_compared_with_its_strategy(store):
    rows = rows_of(store)
    strategy, control = rows["influence"], rows["influence (control: random-k)"]
    mine = [0.49, 0.54, 0.51]
    assert strategy.stat("mse")[0] == pytest.approx(statistics.mean(mine))
    baseline = [0.50, 0.54, 0.52]  # the strategy itself is compared with the baseline
    assert strategy.delta_mse == pytest.approx(
        statistics.mean(a - b for a, b in zip(mine, baseline))
    )
    assert control.control == "random-k" and control.seeds == [0, 1, 2]
    ours, theirs = [0.60, 0.67, 0.66], mine
    # the strategy against its control: the comparison it must win
    (verdict,) = strategy.control_verdicts
    assert verdict.against == "random-k" and verdict.seeds == 3
    assert verdict.delta == pytest.approx(statistics.mean(a - b for a, b in zip(theirs, ours)))
    assert verdict.p == pytest.approx(ttest_rel(theirs, ours).pvalue)
    assert verdict.word == ("helps" if verdict.p < 0.05 else "within noise")
    assert strategy.vs_controls.startswith(f"vs random-k: {verdict.word} -0.")
    # the control itself is judged against the baseline, and has no control of its own
    assert control.delta_mse == pytest.approx(
        statistics.mean(a - b for a, b in zip(ours, baseline))
    )
    assert control.control_verdicts == [] and control.seeds_vary == "initialisation"


def test_terminal_table_names_the_split_when_rows_span_several():
    from lipo.report.html import display_frame, terminal
    from lipo.report.table import Row

    def row(split):
        return Row(study="baseline", kind="final", backbone="mini", split=split)

    one = terminal(display_frame([row("random_seed0"), row("random_seed0")]))
    two = terminal(display_frame([row("random_seed0"), row("scaffold")]))
    assert "split" not in one.splitlines()[0]
    assert "split" in two.splitlines()[0] and "scaffold" in two


def test_a_reference_that_cannot_run_here_says_why_and_is_not_judged(monkeypatch):
    monkeypatch.delenv("LIPO_REPORT_TREES", raising=False)
    from lipo.report.build import reference_row
    from lipo.report.html import display_frame, numeric_frame
    from lipo.report.table import Row

    missing = reference_row(
        {
            "model": "chemprop_dmpnn",
            "split": "scaffold",
            "missing": 'not installed (pip install -e ".[chemprop]")',
        },
        "abc",
    )
    fitted = reference_row(
        {
            "model": "lightgbm",
            "split": "scaffold",
            "fit_time_s": 2.0,
            "per_seed": {"0": {"mse": 0.40}, "1": {"mse": 0.45}},
        },
        "abc",
    )
    base = Row(
        "baseline",
        "final",
        backbone="tiny",
        split="scaffold",
        split_sha256="abc",
        per_seed={0: {"mse": 0.50}, 1: {"mse": 0.60}},
    )
    compare([base, missing, fitted])
    assert missing.baseline_verdict is None and fitted.baseline_verdict.seeds == 2
    assert fitted.knobs == {"trees": 1000} and missing.knobs == {"epochs": 50}
    shown = display_frame([base, missing, fitted]).set_index("study")
    assert shown.loc["chemprop_dmpnn (reference)", "vs baseline (test MSE)"].startswith(
        "not installed"
    )
    assert shown.loc["lightgbm (reference)", "vs baseline (test MSE)"].endswith(
        ", 2 seeds vs baseline on tiny"
    )
    numbers = numeric_frame([base, missing, fitted]).set_index("study")
    assert numbers.loc["lightgbm (reference)", "ci95_low_vs_baseline"] < -0.1
