"""A plugin that is merely installed: a distribution whose entry points (``lipo.adapters``,
``lipo.strategies``, ``lipo.backbones``, ``lipo.commands``) name its code is in every registry
of a process started afresh, with no registration line run anywhere (what a ``--workers``
worker, a ``torchrun`` rank or another machine sees)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from lipo.adapters import ADAPTERS
from lipo.registry import Entry, Registry, installed_entry_points
from tests import plugins
from tests.conftest import ROOT

BUILT_IN_COMMANDS = ("predict", "pretrain", "campaign")  # lipo/cli.py registers them

ENTRY_POINTS = """[lipo.adapters]
head_norms = plugin_head_norms

[lipo.strategies]
short_half = plugin_short_half

[lipo.backbones]
tiny-again = plugin_tiny_again:tiny_again

[lipo.commands]
hello = plugin_hello
"""

# Run in a fresh interpreter: what each registry lists, where its code resolves, and the CLI.
PROBE = """
import json
from lipo.adapters import ADAPTERS
from lipo.models.backbone_names import BACKBONES
from lipo.cli import SUBCOMMANDS, main, parser
from lipo.strategies import STRATEGIES
args = parser().parse_args(["--study", "x", "--adapter", "head_norms"])
print(json.dumps({
    "adapters": ADAPTERS.names(), "strategies": STRATEGIES.names(),
    "backbones": BACKBONES.names(), "commands": SUBCOMMANDS.names(),
    "adapter_file": ADAPTERS.get("head_norms").__file__,
    "strategy_trains": callable(STRATEGIES.get("short_half").train),
    "backbone_is_factory": callable(BACKBONES.get("tiny-again")),
    "from": ADAPTERS.entry("head_norms").distribution, "parsed": args.adapter}))
main(["hello", "from", "an", "entry", "point"])
"""


def installed_plugin(folder: Path, entry_points: str = ENTRY_POINTS) -> Path:
    """The plugin modules and a ``.dist-info`` beside them: what ``pip install`` leaves in
    site-packages, and what importlib.metadata finds on sys.path."""
    for module, source in plugins.SOURCES.items():
        (folder / f"{module}.py").write_text(source)
    info = folder / "lipo_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lipo-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    (info / "top_level.txt").write_text("\n".join(plugins.SOURCES) + "\n")
    return folder


def probe(folder: Path, code: str = PROBE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_an_installed_plugin_is_in_every_registry_of_a_new_process(tmp_path):
    done = probe(installed_plugin(tmp_path))
    assert done.returncode == 0, done.stderr
    found, hello = done.stdout.splitlines()[-2:]
    found = json.loads(found)
    assert found["adapters"][-1] == "head_norms" and found["adapters"][0] == "full"
    assert found["strategies"][-1] == "short_half"
    assert found["backbones"][-1] == "tiny-again"
    assert found["commands"] == [*BUILT_IN_COMMANDS, "hello"]
    assert found["adapter_file"] == str(tmp_path / "plugin_head_norms.py")
    assert found["strategy_trains"] and found["backbone_is_factory"]
    assert found["from"] == "lipo-demo-plugin" and found["parsed"] == "head_norms"
    assert hello == "hello from an entry point"


def test_a_plugin_that_takes_a_built_in_name_is_refused_by_name(tmp_path):
    installed_plugin(tmp_path, "[lipo.adapters]\nlora = plugin_head_norms\n")
    done = probe(tmp_path, "from lipo.adapters import ADAPTERS; ADAPTERS.names()")
    assert done.returncode != 0
    assert (
        "entry point 'lora' in group lipo.adapters of the installed distribution "
        "lipo-demo-plugin: adapter 'lora' is already registered (.lora)"
    ) in done.stderr


def test_plugins_are_read_when_the_registry_is_first_read_not_at_import(tmp_path, monkeypatch):
    installed_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    installed_entry_points.cache_clear()  # read once per process: this one installs it late
    registry = Registry("widget", "lipo", group="lipo.adapters")
    registry.register("own", ".errors")  # a registration at import reads no entry point
    assert registry.plugins_read is False and list(registry.entries) == ["own"]
    assert registry.names() == ["own", "head_norms"]
    assert registry.entry("head_norms") == Entry("plugin_head_norms", {}, "lipo-demo-plugin")
    installed_entry_points.cache_clear()  # the plugin's folder leaves sys.path with the test


def test_the_package_registries_read_their_groups():
    assert ADAPTERS.group == "lipo.adapters"
    from lipo.cli import SUBCOMMANDS
    from lipo.models.backbone_names import BACKBONES
    from lipo.strategies import STRATEGIES

    assert (STRATEGIES.group, BACKBONES.group, SUBCOMMANDS.group) == (
        "lipo.strategies",
        "lipo.backbones",
        "lipo.commands",
    )
