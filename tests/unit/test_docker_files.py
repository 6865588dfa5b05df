"""docker/: no engine runs here, so the files are checked for the topology that
tests/integration/test_workers.py runs natively (PostgreSQL + mlflow server + workers)."""
import re

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig

from tests.conftest import ROOT

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
    assert worker["entrypoint"][:2] == ["accelerate", "launch"]
    assert worker["entrypoint"][-1] == "launch.py"
    command = " ".join(worker["command"])
    assert "--study=" in command and "--tracking-uri=http://mlflow:5000" in command
    assert re.search(r"--storage=postgresql://lipo:[^@]+@postgres:5432/optuna", command)
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert {"hf-cache:/cache/huggingface", "mlruns:/app/mlruns"} <= set(worker["volumes"])


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


@pytest.mark.parametrize("name, kind, processes", [("one_gpu", "NO", 1),
                                                   ("multi_gpu", "MULTI_GPU", 2)])
def test_accelerate_configs_load(name, kind, processes):
    config = ClusterConfig.from_yaml_file(DOCKER / "accelerate" / f"{name}.yaml")
    assert config.distributed_type.value == kind and config.num_processes == processes
    assert not config.use_cpu
