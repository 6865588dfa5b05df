"""deploy/: the Slurm job array and the Kubernetes Job, rendered as their users render them
(bash with the job's environment; envsubst), and the launcher command lines they run parsed
and checked with the launcher's own parser. No cluster runs here."""

import os
import re
import subprocess

import pytest
import yaml

from lipo.cli import check, parser
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S_VALUES = {
    "LIPO_DB_PASSWORD": "s3cret",
    "LIPO_MLFLOW_IMAGE": "registry/lipo-mlflow:1",
    "LIPO_VOLUME_SIZE": "50Gi",
    "LIPO_IMAGE": "registry/lipo-gpu:1",
    "LIPO_WORKERS": "4",
    "LIPO_STUDY": "lora",
    "LIPO_TRIALS": "32",
}


def launcher_args(argv: list[str]):
    """What the launcher makes of a command line: parsed and checked, or SystemExit/error."""
    args = parser().parse_args(argv)
    args.argv = list(argv)
    check(args)
    return args


def envsubst(text: str, values: dict) -> str:
    """GNU envsubst: ${VAR} and $VAR replaced; Kubernetes' $(VAR) left for the kubelet."""
    pattern = r"\$\{(\w+)\}|\$(\w+)"
    missing = sorted({a or b for a, b in re.findall(pattern, text)} - set(values))
    assert not missing, f"variables the recipe needs but the test does not set: {missing}"
    return re.sub(pattern, lambda m: values[m.group(1) or m.group(2)], text)


def kubelet_expand(args: list[str], env: list[dict]) -> list[str]:
    """$(NAME) in a container's args, from its env (a secret reference stands in as text)."""
    values = {e["name"]: e.get("value", f"<{e['name']} from a secret>") for e in env}
    return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in args]


@pytest.fixture(scope="module")
def kubernetes():
    docs = []
    for name in ("services.yaml", "job.yaml"):
        docs += [
            d
            for d in yaml.safe_load_all(
                envsubst((DEPLOY / "kubernetes" / name).read_text(), K8S_VALUES)
            )
            if d
        ]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_kubernetes_job_runs_k_workers_with_one_gpu_each(kubernetes):
    job = kubernetes[("Job", "lipo-workers")]["spec"]
    assert job["parallelism"] == job["completions"] == 4
    pod = job["template"]["spec"]
    [worker] = pod["containers"]
    assert worker["command"] == ["python", "launch.py"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["terminationGracePeriodSeconds"] >= 60  # time to re-queue the trial
    args = launcher_args(kubelet_expand(worker["args"], worker["env"]))
    assert (args.study, args.trials) == ("lora", 32)
    assert args.storage == "postgresql://lipo:<LIPO_DB_PASSWORD from a secret>@postgres:5432/optuna"
    assert args.tracking_uri == "http://mlflow:5000" and args.workdir == "/shared/work"
    assert ("Service", "postgres") in kubernetes and ("Service", "mlflow") in kubernetes
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    pvc = kubernetes[("PersistentVolumeClaim", claim)]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_kubernetes_mlflow_server_is_small_and_on_postgres(kubernetes):
    [server] = kubernetes[("Deployment", "mlflow")]["spec"]["template"]["spec"]["containers"]
    assert server["image"] == "registry/lipo-mlflow:1"
    args = " ".join(kubelet_expand(server["args"], server["env"]))
    assert "--backend-store-uri=postgresql://lipo:" in args and "@postgres:5432/mlflow" in args
    assert "--serve-artifacts" in args and "--artifacts-destination=/shared/" in args


def slurm_run(tmp_path, **env) -> subprocess.CompletedProcess:
    """The array script under bash, with `srun` a stand-in that writes down what it would
    start (no Slurm here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "srun").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_ARGS"\n')
    (bin_dir / "srun").chmod(0o755)
    return subprocess.run(
        ["bash", str(DEPLOY / "slurm" / "lipo-array.sbatch")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "SRUN_ARGS": str(tmp_path / "srun.txt"),
            "SLURM_ARRAY_TASK_ID": "3",
            "SLURM_CPUS_PER_TASK": "8",
            **env,
        },
    )


def test_slurm_array_task_runs_the_launcher_with_the_urls_from_the_environment(tmp_path):
    done = slurm_run(
        tmp_path,
        LIPO_STORAGE="postgresql://lipo:pw@db:5432/optuna",
        LIPO_TRACKING_URI="http://mlflow-host:5000",
        LIPO_STUDY="lora",
        LIPO_WORKDIR="/shared/lipo",
    )
    assert done.returncode == 0, done.stderr
    srun = (tmp_path / "srun.txt").read_text().splitlines()
    assert srun[:3] == ["--ntasks=1", "python", "launch.py"]
    args = launcher_args(srun[3:])
    assert args.study == "lora" and args.storage == "postgresql://lipo:pw@db:5432/optuna"
    assert args.tracking_uri == "http://mlflow-host:5000" and args.workdir == "/shared/lipo"
    assert args.workers in (None, 1)  # one worker per array task


def test_slurm_script_without_the_database_urls_stops_naming_them(tmp_path):
    done = slurm_run(tmp_path, LIPO_TRACKING_URI="http://mlflow-host:5000")
    assert done.returncode != 0 and "set LIPO_STORAGE" in done.stderr
    assert not (tmp_path / "srun.txt").exists()


def test_slurm_directives_one_gpu_per_task_and_sigterm_before_the_limit():
    text = (DEPLOY / "slurm" / "lipo-array.sbatch").read_text()
    directives = re.findall(r"^#SBATCH (\S+)", text, re.MULTILINE)
    assert "--signal=TERM@120" in directives and "--gres=gpu:1" in directives
    assert "--requeue" in directives and any(d.startswith("--array=") for d in directives)
