"""Name -> code registries, one mechanism for backbones, adapters, strategies and commands.

Adding one is a file (or a function) and one line: ``REGISTRY.register(name, target)``. The
target is only a dotted path, imported on the first ``get``, so listing the names (the CLI's
choices and help) imports no torch. Metadata given at registration (a strategy's controls, its
plots) is readable without the import too.
"""
from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lipo.errors import ConfigError

REGISTRIES: dict[str, Registry] = {}  # by kind: every registry, for handing plugins on
HANDED_ON = "LIPO_REGISTRATIONS"  # the environment variable that carries them to a worker


@dataclass(frozen=True)
class Entry:
    target: str  # "module" or "module:attribute"; a leading "." is inside the registry's package
    about: dict[str, Any] = field(default_factory=dict)  # what callers read without importing


class Registry:
    def __init__(self, kind: str, package: str = ""):
        self.kind = kind  # the word in error messages: "adapter", "strategy", ...
        self.package = package  # anchor of relative targets such as ".lora"
        self.entries: dict[str, Entry] = {}  # in registration order: the order of --help
        REGISTRIES[kind] = self

    def register(self, name: str, target: str, **about) -> None:
        """Code outside the package registers the same way, before the CLI parses."""
        if name in self.entries:
            raise ConfigError(f"{self.kind} {name!r} is already registered "
                              f"({self.entries[name].target})")
        self.entries[name] = Entry(target, dict(about))

    def names(self) -> list[str]:
        return list(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def entry(self, name: str) -> Entry:
        if name not in self.entries:
            raise ConfigError(f"unknown {self.kind} {name!r}: expected one of "
                              f"{', '.join(sorted(self.entries))}")
        return self.entries[name]

    def having(self, key: str) -> list[str]:
        """The names registered with a true ``key``, e.g. the strategies with ``plots``."""
        return [name for name, entry in self.entries.items() if entry.about.get(key)]

    def get(self, name: str) -> Any:
        """The module, or its attribute for a "module:attribute" target."""
        module_name, _, attribute = self.entry(name).target.partition(":")
        module = importlib.import_module(module_name, self.package or None)
        return getattr(module, attribute) if attribute else module


def is_builtin(target: str) -> bool:
    return target.startswith(".") or target.partition(":")[0].split(".")[0] == "lipo"


def plugin_registrations() -> str:
    """The registrations made from outside lipo in this process, as JSON: a process started
    anew (a ``--workers`` worker) registers them again with ``register_handed_on``."""
    return json.dumps({kind: {name: {"target": entry.target, "about": entry.about}
                              for name, entry in registry.entries.items()
                              if not is_builtin(entry.target)}
                       for kind, registry in REGISTRIES.items()})


def register_handed_on(text: str | None) -> None:
    """Registers what ``plugin_registrations`` wrote, where not already registered."""
    for kind, entries in json.loads(text or "{}").items():
        registry = REGISTRIES.get(kind)
        for name, entry in entries.items():
            if registry is not None and name not in registry:
                registry.register(name, entry["target"], **entry["about"])
