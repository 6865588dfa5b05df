"""``launch.py --report`` on a store built by real `tiny` runs, and its page in Chromium."""

import importlib.util
import json
import re
import shutil
import statistics
import subprocess

import pandas as pd
import pytest

from tests.integration.helpers import launch, mlflow_runs, trial_runs

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")
# The page has no script of its own: this probe, added to a copy, records what a reader's
# browser would show as broken (an image that did not decode has naturalWidth 0).
PROBE = """<script>
window.addEventListener('load', () => {
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0);
  document.body.setAttribute('data-images', document.images.length);
  document.body.setAttribute('data-broken', broken.length);
});
</script>"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three search trials (the fewest that get parameter importances) and two final seeds of
    `baseline`, then the report (few trees)."""
    cwd = tmp_path_factory.mktemp("report")
    launch(cwd, "--study", "baseline", "--backbone", "tiny", "--trials", "3", "--epochs", "1")
    launch(
        cwd,
        "--study",
        "baseline",
        "--backbone",
        "tiny",
        "--final",
        "--seeds",
        "0,1",
        "--epochs",
        "1",
    )
    done = launch(cwd, "--report", LIPO_REPORT_TREES="5")
    return cwd, done.stdout


def test_table_holds_the_final_runs_metrics(store):
    cwd, stdout = store
    finals = [r for r in trial_runs(cwd, "baseline", "final") if r.info.status == "FINISHED"]
    assert len(finals) == 2
    table = pd.read_csv(cwd / "reports" / "report.csv")
    row = table[table.study == "baseline"].iloc[0]
    assert row.status == "final" and row.n_seeds == 2 and row.seeds == "0 1"
    for metric in ("mse", "r2"):
        values = [r.data.metrics[f"test/{metric}"] for r in finals]
        assert row[f"test_{metric}_mean"] == pytest.approx(statistics.mean(values))
        assert row[f"test_{metric}_std"] == pytest.approx(statistics.stdev(values))
    assert row.trainable_params == finals[0].data.metrics["trainable_params"]
    # the seeds' mean prediction errs no more than the seeds do on average (squared error is
    # convex), and less unless they predict alike
    assert 0 < row.test_ensemble_mse <= row.test_mse_mean
    mean = statistics.mean(r.data.metrics["test/mse"] for r in finals)
    assert re.search(rf"baseline\s+final\s+tiny\s+2\s+initialisation\s+{mean:.3f} ±", stdout), (
        stdout
    )
    assert (cwd / "reports" / "report.md").read_text().count("| baseline |") == 1


def test_reference_rows_use_the_same_split_and_seeds(store):
    cwd, _ = store
    table = pd.read_csv(cwd / "reports" / "report.csv")
    refs = table[table.status == "reference"]
    assert sorted(refs.study) == [
        "chemprop_dmpnn (reference)",
        "hist_gradient_boosting (reference)",
        "lightgbm (reference)",
        "random_forest (reference)",
    ]
    base = table[table.study == "baseline"].iloc[0]
    assert (refs.split_sha256 == base.split_sha256).all()
    fitted = refs[refs.study != "chemprop_dmpnn (reference)"]
    if importlib.util.find_spec("chemprop") is None:  # the row says so, and holds no numbers
        chemprop = refs[refs.study == "chemprop_dmpnn (reference)"].iloc[0]
        assert chemprop.vs_baseline.startswith("not installed") and chemprop.n_seeds == 0
    else:
        fitted = refs
    assert (fitted.seeds == "0 1").all() and fitted.test_mse_mean.between(0.1, 2.0).all()
    assert (fitted.wall_time_s > 0).all() and fitted.vs_baseline.str.contains(", 2 seeds").all()
    assert set(fitted.verdict_vs_baseline) <= {"helps", "within noise", "hurts"}
    cached = sorted((cwd / "reports" / ".cache").glob("references_*.json"))
    assert len(cached) == len(fitted)  # one file per model fitted
    assert {json.loads(p.read_text())["model"] for p in cached} == {
        s.removesuffix(" (reference)") for s in fitted.study
    }


def test_report_is_logged_to_mlflow(store):
    cwd, _ = store
    runs = mlflow_runs(cwd, "report")
    assert len(runs) == 1 and runs[0].data.tags["lipo.phase"] == "report"
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")
    names = {f.path for f in client.list_artifacts(runs[0].info.run_id)}
    assert names == {"report.md", "report.csv", "report.html", "similarity_bands.csv"}


def test_filters_and_nothing_to_report(store, tmp_path):
    cwd, _ = store
    done = launch(cwd, "--report", "--split", "scaffold")
    assert done.stdout.strip().startswith("nothing to report") and done.stdout.count("\n") == 1
    empty = launch(tmp_path, "--report")
    assert empty.stdout.strip().startswith("nothing to report")
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "reports").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian package chromium")
def test_page_renders_in_chromium(store, tmp_path):
    cwd, _ = store
    page = (cwd / "reports" / "report.html").read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</head>", PROBE + "</head>", 1))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = tmp_path / "page.png"
    done = subprocess.run(
        [
            CHROMIUM,
            *flags,
            "--dump-dom",
            "--window-size=1400,2400",
            f"--screenshot={shot}",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = done.stdout
    assert 'class="dataframe results"' in dom and ">baseline<" in dom
    assert "Parity on test" in dom and "Parameter importances" in dom
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    assert images >= 5  # parity, val curves, history, importances, MSE vs params
    assert re.search(r'data-broken="(\d+)"', dom).group(1) == "0"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_calibration_of_the_seed_ensemble(store):
    """Each final row with two or more seeds: |error| of the mean against the spread across
    seeds on test, its Spearman printed, written under the table and plotted."""
    cwd, stdout = store
    line = (
        r"calibration on test, baseline · tiny: Spearman\(\|error\|, spread across 2 seeds\) "
        r"= -?\d\.\d{3} over \d+ molecules"
    )
    assert re.search(line, stdout)
    assert re.search(line, (cwd / "reports" / "report.md").read_text())
    assert "Calibration on test" in (cwd / "reports" / "report.html").read_text()


def test_interval_coverage_and_error_by_similarity(store):
    """The registered model's 90% interval, calibrated on validation, measured on test; and
    the test error per band of similarity to the training molecules."""
    cwd, stdout = store
    row = pd.read_csv(cwd / "reports" / "report.csv").query("study == 'baseline'").iloc[0]
    assert 0.5 < row.test_interval_coverage <= 1.0  # ~0.9 for exchangeable val and test
    line = (
        r"90% conformal interval \(served prediction ± \d\.\d{3}, calibrated on validation\), "
        r"baseline · tiny · [\w.-]+: covers (\d+\.\d)% of (\d+) test molecules"
    )
    found = re.search(line, stdout)
    assert found and re.search(line, (cwd / "reports" / "report.md").read_text())
    assert float(found.group(1)) == pytest.approx(100 * row.test_interval_coverage, abs=0.06)
    bands = pd.read_csv(cwd / "reports" / "similarity_bands.csv")
    assert list(bands.band) == ["<0.4", "0.4-0.6", "0.6-0.8", ">=0.8"]
    assert (bands.study == "baseline · tiny · random_seed0").all()
    assert bands.molecules.sum() == int(found.group(2))  # every test molecule in one band
    assert "test error by max Tanimoto similarity to train, baseline · tiny" in stdout
    assert "by similarity to the training set" in (cwd / "reports" / "report.html").read_text()
