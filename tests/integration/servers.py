"""Real servers for the scale-out tests, started natively on 127.0.0.1 with free ports:
PostgreSQL (Optuna storage and MLflow backend) and ``mlflow server`` (artifacts on disk).
The same topology as docker/compose.yaml, without Docker."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    """Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/N/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not versions:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
            "apt-get install postgresql (.ci/run does)"
        )
    return Path(versions[-1]).parent


def as_server_user(folder: Path) -> list[str]:
    """PostgreSQL refuses to run as root: under root, run it as the postgres user."""
    if os.geteuid() != 0:
        return []
    try:
        shutil.chown(folder, "postgres")
    except LookupError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def postgres(databases: tuple[str, ...] = ("optuna", "mlflow")):
    """Yields {database: URL}; the cluster lives in a temporary folder and is removed."""
    bindir = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="lipo-pg-"))  # /tmp: reachable by the postgres user
    user = as_server_user(folder)
    data, port = folder / "data", free_port()

    def run(*cmd):
        return subprocess.run(
            [*user, *map(str, cmd)],
            check=True,  # noqa: E731
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        run(bindir / "initdb", "-D", data, "-U", "lipo", "--auth=trust", "-E", "UTF8")
        run(
            bindir / "pg_ctl",
            "-D",
            data,
            "-l",
            folder / "server.log",
            "-w",
            "-t",
            "60",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {folder}",
            "start",
        )
        for name in databases:
            run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "lipo", name)
        yield {name: f"postgresql://lipo@127.0.0.1:{port}/{name}" for name in databases}
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend: str, artifacts: Path):
    """``mlflow server`` on 127.0.0.1, proxying artifacts to a folder; yields its URL."""
    port = free_port()
    log = open(artifacts.parent / "mlflow-server.log", "w")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend,
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts.as_uri(),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, (artifacts.parent / "mlflow-server.log").read_text()
                assert time.time() < deadline, "mlflow server did not start in 180 s"
                time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # uvicorn waits for idle keep-alive connections
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
