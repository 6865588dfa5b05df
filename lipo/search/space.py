"""A study's search space, read without Optuna: which knobs it has and which values each
accepts (what ``--warm-start`` may carry over from another study)."""

from __future__ import annotations

from typing import Any, Callable


class SpaceProbe:
    """Stands in for an Optuna trial to learn a study's knobs: each suggest_* call records
    which values the knob accepts and returns its first or lowest one."""

    def __init__(self):
        self.accepts: dict[str, Callable[[Any], bool]] = {}

    def suggest_categorical(self, name: str, choices):
        self.accepts[name] = lambda v, choices=tuple(choices): v in choices
        return choices[0]

    def suggest_float(self, name: str, low: float, high: float, **_):
        self.accepts[name] = lambda v: isinstance(v, (int, float)) and low <= v <= high
        return low

    def suggest_int(self, name: str, low: int, high: int, **_):
        self.accepts[name] = lambda v: isinstance(v, int) and low <= v <= high
        return low


def space_of(space: Callable[[Any], dict]) -> dict[str, Callable[[Any], bool]]:
    probe = SpaceProbe()
    space(probe)
    return probe.accepts


class Knobs:
    """What a study's ``space(knobs)`` draws from: the suggest_* calls of one Optuna trial,
    and nothing else of it."""

    def __init__(self, trial):
        self._trial = trial

    @property
    def number(self) -> int:
        """The trial's number (a space may vary with it, as tests of failing trials do)."""
        return self._trial.number

    def suggest_categorical(self, name: str, choices):
        return self._trial.suggest_categorical(name, choices)

    def suggest_float(self, name: str, low: float, high: float, **kw):
        return self._trial.suggest_float(name, low, high, **kw)

    def suggest_int(self, name: str, low: int, high: int, **kw):
        return self._trial.suggest_int(name, low, high, **kw)
