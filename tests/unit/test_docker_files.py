"""docker/: no engine runs here, so the files are checked for the topology that
tests/integration/test_workers.py runs natively (PostgreSQL + mlflow server + workers)."""

import re

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig

from tests.conftest import ROOT
from tests.unit.test_deploy_recipes import launcher_args

DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def services():
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]


def test_compose_topology_matches_the_native_test(services):
    assert set(services) == {"postgres", "mlflow", "worker"}
    pg = services["postgres"]
    assert pg["environment"]["POSTGRES_DB"] == "optuna"
    assert "CREATE DATABASE mlflow" in (DOCKER / "postgres" / "create-mlflow-db.sql").read_text()
    mlflow = " ".join(services["mlflow"]["entrypoint"] + services["mlflow"]["command"])
    assert mlflow.startswith("mlflow server")
    assert re.search(r"--backend-store-uri=postgresql://lipo:[^@]+@postgres:5432/mlflow", mlflow)
    assert "--serve-artifacts" in mlflow and "--artifacts-destination=/app/mlruns" in mlflow
    worker = services["worker"]
    assert worker["entrypoint"] == ["python", "launch.py"]
    args = launcher_args([compose_substitute(a) for a in worker["command"]])
    assert args.study == "baseline" and args.tracking_uri == "http://mlflow:5000"
    assert re.fullmatch(r"postgresql://lipo:[^@]+@postgres:5432/optuna", args.storage)
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert {"hf-cache:/cache/huggingface", "mlruns:/app/mlruns"} <= set(worker["volumes"])


def compose_substitute(text: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message}, with no variable set but the password."""

    def value(match):
        name, kind, rest = match.groups()
        if name == "LIPO_DB_PASSWORD":
            return "pw"
        assert kind == ":-", f"${{{name}}} must be set: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:[-?])([^}]*)\}", value, text)


def test_docker_stop_reaches_the_launcher_itself(services):
    """SIGTERM must reach the launcher (which re-queues its trial), not a parent that dies
    first: an init as PID 1 and the launcher as its only child, with time to re-queue."""
    worker = services["worker"]
    assert worker["init"] is True and worker["entrypoint"][0] == "python"
    assert worker["stop_grace_period"] in ("2m", "120s")


def test_mlflow_server_runs_a_small_image_not_the_gpu_one(services):
    mlflow = services["mlflow"]
    assert mlflow["image"] != services["worker"]["image"]
    dockerfile = (ROOT / mlflow["build"]["dockerfile"]).read_text()
    assert re.search(r"^FROM python:[\d.]+-slim$", dockerfile, re.M)
    assert re.search(r'pip install "mlflow==[\d.]+" "psycopg\[binary\]', dockerfile)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")


def test_published_ports_bind_to_localhost(services):
    ports = [p for s in services.values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("${LIPO_BIND:-127.0.0.1}:") for p in ports)


def test_image_runs_the_launcher_as_a_non_root_user():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM pytorch/pytorch:[\w.]+-cuda[\w.]+-[\w.-]*runtime$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert 'VOLUME ["/cache/huggingface", "/app/mlruns"]' in text
    assert 'ENTRYPOINT ["python", "launch.py"]' in text


@pytest.mark.parametrize(
    "name, kind, processes", [("one_gpu", "NO", 1), ("multi_gpu", "MULTI_GPU", 2)]
)
def test_accelerate_configs_load(name, kind, processes):
    config = ClusterConfig.from_yaml_file(DOCKER / "accelerate" / f"{name}.yaml")
    assert config.distributed_type.value == kind and config.num_processes == processes
    assert not config.use_cpu
