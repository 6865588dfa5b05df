"""The package as pip sees it: every distribution the code imports is declared (the tests'
and benchmarks' under ``dev``), the declared ranges hold what is installed, the PostgreSQL
extra brings a SQLAlchemy that reads ``postgresql://`` with the driver it installs, and the
``lipo`` console command runs the same ``main`` as ``python launch.py``."""

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points, packages_distributions, version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

import lipo.cli
from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> set[str]:
    lines = PROJECT["dependencies"] + [
        r for e in extras for r in PROJECT["optional-dependencies"][e]
    ]
    return {normalised(Requirement(line).name) for line in lines}


# an extra a user installs for one feature (the report's chemprop row); the suite runs without
OPTIONAL = {
    normalised(Requirement(line).name) for line in PROJECT["optional-dependencies"]["chemprop"]
}


def top_level_imports(files: list[Path]) -> dict[str, Path]:
    """Absolute imports' first names, each with a file that imports it."""
    found = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


def undeclared(files: list[Path], allowed: set[str], local: set[str]) -> list[str]:
    owners = packages_distributions()
    problems = []
    for name, path in sorted(top_level_imports(files).items()):
        if name in sys.stdlib_module_names or name in local:
            continue
        dists = {normalised(d) for d in owners.get(name, [])}
        if not dists and normalised(name) in OPTIONAL:
            continue  # an optional extra's module, imported only where it is installed
        if not dists:
            problems.append(
                f"{path.relative_to(ROOT)}: 'import {name}' is no installed distribution's module"
            )
        elif not dists & allowed:
            problems.append(
                f"{path.relative_to(ROOT)}: 'import {name}' comes from "
                f"{' or '.join(sorted(dists))}, not declared in pyproject.toml"
            )
    return problems


def package_files() -> list[Path]:
    return [
        *ROOT.glob("lipo/**/*.py"),
        *ROOT.glob("sweeps/*.py"),
        *ROOT.glob("campaigns/*.py"),
        ROOT / "launch.py",
    ]


def test_every_distribution_the_package_imports_is_a_dependency():
    assert len(package_files()) > 50
    assert undeclared(package_files(), declared(), {"lipo", "sweeps", "campaigns"}) == []


def test_every_distribution_the_tests_and_benchmarks_import_is_declared_for_dev():
    files = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]
    local = {"lipo", "sweeps", "tests", *(p.stem for p in ROOT.glob("bench/*.py"))}
    assert undeclared(files, declared("dev"), local) == []


def test_the_check_finds_an_undeclared_import(tmp_path):
    script = ROOT / "lipo" / "undeclared_probe.py"  # a file in the tree: named relative to it
    try:
        script.write_text("import yaml\nimport lipo.cli\nimport json\n")
        assert undeclared([script], declared(), {"lipo"}) == [
            "lipo/undeclared_probe.py: 'import yaml' comes from pyyaml, not declared in "
            "pyproject.toml"
        ]
    finally:
        script.unlink()


def test_the_installed_versions_satisfy_the_declared_ranges():
    for line in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["postgres"]:
        requirement = Requirement(line)
        installed = version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (line, installed)


def test_the_majors_with_private_apis_in_use_are_bounded():
    ranges = {
        Requirement(line).name: str(Requirement(line).specifier) for line in PROJECT["dependencies"]
    }
    for name in ("optuna", "transformers", "mlflow", "peft", "accelerate", "torch"):
        assert "<" in ranges[name], name


def test_the_postgres_extra_brings_a_sqlalchemy_that_uses_its_driver():
    """SQLAlchemy 2.0 reads postgresql:// as psycopg2, which the extra does not install."""
    extra = {
        Requirement(r).name: Requirement(r) for r in PROJECT["optional-dependencies"]["postgres"]
    }
    assert not extra["sqlalchemy"].specifier.contains("2.0.40")
    assert extra["sqlalchemy"].specifier.contains(version("sqlalchemy"))
    from sqlalchemy.engine import make_url

    assert make_url("postgresql://lipo@127.0.0.1/optuna").get_dialect().driver == "psycopg"
    assert importlib.util.find_spec("psycopg") is not None


def test_the_console_command_and_launch_py_run_the_same_main():
    assert PROJECT["scripts"]["lipo"] == "lipo.cli:main"
    (point,) = entry_points(group="console_scripts", name="lipo")
    assert point.value == "lipo.cli:main" and point.load() is lipo.cli.main
    spec = importlib.util.spec_from_file_location("launch_script", ROOT / "launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)  # its `if __name__ == "__main__"` stays asleep
    assert launch.main is lipo.cli.main


def test_the_console_command_answers():
    command = shutil.which("lipo")
    if command is None:  # an environment without the package installed
        import pytest

        pytest.skip("no lipo command on PATH: pip install -e .")
    done = subprocess.run(
        [command, "--list"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^lora\s", done.stdout, re.MULTILINE)
