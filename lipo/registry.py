"""Name -> code registries, one mechanism for backbones, adapters, strategies and commands.

Adding one is a file (or a function) and one line: ``REGISTRY.register(name, target)``. The
target is only a dotted path, imported on the first ``get``, so listing the names (the CLI's
choices and help) imports no torch. Metadata given at registration (a strategy's controls, its
plots) is readable without the import too.

An installed distribution registers the same way through Python entry points, one group per
registry (``lipo.strategies``, ``lipo.adapters``, ``lipo.backbones``, ``lipo.commands``;
``name = module:attribute``, no metadata): read when the registry is first read, so every
process that imports lipo (a ``--workers`` worker, a ``torchrun`` rank, another machine) sees
a plugin that is merely installed.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoints, entry_points
from typing import Any

from lipo.errors import ConfigError

REGISTRIES: dict[str, Registry] = {}  # by kind: every registry, for handing plugins on
HANDED_ON = "LIPO_REGISTRATIONS"  # the environment variable that carries them to a worker


@dataclass(frozen=True)
class Entry:
    target: str  # "module" or "module:attribute"; a leading "." is inside the registry's package
    about: dict[str, Any] = field(default_factory=dict)  # what callers read without importing
    distribution: str = ""  # the installed distribution whose entry point registered it


class Registry:
    def __init__(self, kind: str, package: str = "", group: str | None = None):
        self.kind = kind  # the word in error messages: "adapter", "strategy", ...
        self.package = package  # anchor of relative targets such as ".lora"
        self.entries: dict[str, Entry] = {}  # in registration order: the order of --help
        self.group = group  # the entry-point group of installed plugins, read on first use
        self.plugins_read = group is None
        REGISTRIES[kind] = self

    def register(self, name: str, target: str, **about) -> None:
        """Code outside the package registers the same way, before the CLI parses."""
        self.add(name, Entry(target, dict(about)))

    def add(self, name: str, entry: Entry) -> None:
        if name in self.entries:
            held = self.entries[name]
            where = f" by the distribution {held.distribution}" if held.distribution else ""
            raise ConfigError(f"{self.kind} {name!r} is already registered{where} ({held.target})")
        self.entries[name] = entry

    def read_plugins(self) -> None:
        """The group's entry points of every installed distribution, once per process (not at
        import: the package's own registrations come first, and importing lipo stays cheap)."""
        if self.plugins_read:
            return
        self.plugins_read = True
        for point in installed_entry_points().select(group=self.group):
            dist = point.dist.name if point.dist is not None else "?"
            try:
                self.add(point.name, Entry(point.value, {}, dist))
            except ConfigError as exc:
                raise ConfigError(
                    f"entry point {point.name!r} in group {self.group} of the "
                    f"installed distribution {dist}: {exc}"
                ) from None

    def names(self) -> list[str]:
        self.read_plugins()
        return list(self.entries)

    def __contains__(self, name: str) -> bool:
        self.read_plugins()
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def entry(self, name: str) -> Entry:
        self.read_plugins()
        if name not in self.entries:
            raise ConfigError(
                f"unknown {self.kind} {name!r}: expected one of {', '.join(sorted(self.entries))}"
            )
        return self.entries[name]

    def having(self, key: str) -> list[str]:
        """The names registered with a true ``key``, e.g. the strategies with ``plots``."""
        self.read_plugins()
        return [name for name, entry in self.entries.items() if entry.about.get(key)]

    def get(self, name: str) -> Any:
        """The module, or its attribute for a "module:attribute" target."""
        module_name, _, attribute = self.entry(name).target.partition(":")
        module = importlib.import_module(module_name, self.package or None)
        return getattr(module, attribute) if attribute else module


@functools.cache
def installed_entry_points() -> EntryPoints:
    """Every installed distribution's entry points, read once per process (one scan of the
    import path, ~40 ms, for the four registries)."""
    return entry_points()


def is_builtin(target: str) -> bool:
    return target.startswith(".") or target.partition(":")[0].split(".")[0] == "lipo"


def plugin_registrations() -> str:
    """The registrations made from outside lipo in this process, as JSON: a process started
    anew (a ``--workers`` worker) registers them again with ``register_handed_on``."""
    return json.dumps(
        {
            kind: {
                name: {"target": entry.target, "about": entry.about}
                for name, entry in registry.entries.items()
                if not is_builtin(entry.target)
            }
            for kind, registry in REGISTRIES.items()
        }
    )


def register_handed_on(text: str | None) -> None:
    """Registers what ``plugin_registrations`` wrote, where not already registered."""
    for kind, entries in json.loads(text or "{}").items():
        registry = REGISTRIES.get(kind)
        for name, entry in entries.items():
            if registry is not None and name not in registry:
                registry.register(name, entry["target"], **entry["about"])
