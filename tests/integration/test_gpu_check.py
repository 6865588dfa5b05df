"""``bench/gpu_check.sh --cpu-dry-run``: every step of the GPU check (imports, tests, the bf16
study, throughput) runs small on this CPU, so a script that a restructure broke fails here
and not on the next rented GPU. About a minute alone on a 2-core machine (a 400-molecule
study); its budget, 300 s, leaves room for a machine loaded by other work."""

import subprocess

import pytest

from tests.conftest import ROOT
from tests.integration.helpers import env

pytestmark = pytest.mark.slow

STEPS = {
    "machine",
    "imports",
    "backbone",
    "tests",
    "study",
    "study_tags",
    "throughput_fp32",
    "throughput_bf16",
}


def test_cpu_dry_run_ends_every_step_ok(tmp_path):
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--cpu-dry-run", "--budget", "300"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=360,
        env=env(OUT=str(tmp_path), OMP_NUM_THREADS="2"),
    )
    table = (tmp_path / "gpu_check" / "steps.tsv").read_text()
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in table.splitlines()}
    assert STEPS <= set(rows), f"steps missing from the check:\n{table}\n{done.stdout[-3000:]}"
    bad = {
        name: row
        for name, row in rows.items()
        if row[0] != "ok" and not (name == "wheels" and row[0] == "skipped")
    }
    assert not bad, f"steps not ok: {bad}\n{done.stdout[-3000:]}"
    assert done.returncode == 0, done.stdout[-3000:]
    assert "passed" in rows["tests"][2] and "failed" not in rows["tests"][2]
    assert rows["study"][2].startswith("best val/mse")
    assert "(CPU dry run)" in (tmp_path / "gpu_check" / "section.md").read_text()
