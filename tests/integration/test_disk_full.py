"""No space left while writing artifacts: a real full filesystem (a 4 MB tmpfs mounted as the
artifact store). The worker stops with one line, the trial is FAIL and re-queued, what was
recorded before is intact, and a re-run after freeing space finishes the study."""

import contextlib
import hashlib
import subprocess
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.integration.helpers import launch, metric_history, optuna_trials, trial_runs

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def small_filesystem(folder: Path, size: str = "4m"):
    folder.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    return filler


def checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and p.name != "filler"
    }


def test_full_disk_fails_the_trial_and_keeps_earlier_results(tmp_path, data_dir):
    lines = (data_dir / "lipophilicity.csv").read_text().splitlines()[:301]
    data = tmp_path / "small.csv"
    data.write_text("\n".join(lines) + "\n")
    args = ("--study", "baseline", "--backbone", "tiny", "--data", str(data), "--epochs", "1")
    with small_filesystem(tmp_path / "mlruns" / "artifacts") as store:
        launch(tmp_path, *args, "--trials", "1")
        before = checksums(store)
        assert any(name.endswith("weights.safetensors") for name in before)
        filler = fill(store)
        done = launch(tmp_path, *args, "--trials", "2", ok=False)
        assert done.returncode == 2
        error = done.stderr.strip().splitlines()[-1]
        assert error.startswith("lipo: error: trial 1:") and "No space left on device" in error
        assert "marked FAIL and re-queued" in error
        after = checksums(store)
        assert {name: after.get(name) for name in before} == before  # trial 0's, byte for byte

        trials = sorted(optuna_trials(tmp_path), key=lambda t: t.number)
        assert [t.state for t in trials] == [
            TrialState.COMPLETE,
            TrialState.FAIL,
            TrialState.WAITING,
        ]
        assert trials[2].system_attrs["fixed_params"] == trials[1].params
        runs = {r.data.tags["optuna.trial_number"]: r for r in trial_runs(tmp_path, "baseline")}
        assert runs["0"].info.status == "FINISHED"
        assert runs["1"].info.status == "FAILED"
        assert "No space left on device" in runs["1"].data.tags["lipo.error"]

        filler.unlink()  # space again: the same command finishes the study
        launch(tmp_path, *args, "--trials", "2")
    trials = sorted(optuna_trials(tmp_path), key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[2].params == trials[1].params
    runs = {r.data.tags["optuna.trial_number"]: r for r in trial_runs(tmp_path, "baseline")}
    assert runs["2"].info.status == "FINISHED"
    assert trials[2].value == pytest.approx(
        metric_history(tmp_path, runs["1"].info.run_id, "val/mse")[-1], rel=1e-6
    )
