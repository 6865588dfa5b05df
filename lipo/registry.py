"""Name -> module registries: adding a method means adding a file and one line here."""
from __future__ import annotations

import importlib
from types import ModuleType

from lipo.errors import ConfigError


class Registry:
    def __init__(self, kind: str, package: str, names: dict[str, str]):
        self.kind = kind
        self.package = package
        self.names = names  # public name -> module name inside ``package``

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __iter__(self):
        return iter(self.names)

    def get(self, name: str) -> ModuleType:
        if name not in self.names:
            raise ConfigError(f"unknown {self.kind} {name!r}: expected one of "
                              f"{', '.join(sorted(self.names))}")
        return importlib.import_module(f"{self.package}.{self.names[name]}")
