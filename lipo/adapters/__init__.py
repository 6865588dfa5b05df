"""How the weights change. Each module has ``apply(model, **knobs) -> model``: it freezes what
must not train and wraps what must (the regression head always trains and is always saved).
Adding one: a module with ``apply`` and one ``ADAPTERS.register`` line (here, or in code of
your own that runs before the CLI parses); ``--adapter`` offers every registered name."""

import inspect

from lipo.errors import ConfigError
from lipo.registry import Registry

# The model's heads: they train and are saved with every adapter. ``descriptor_head`` exists
# only with aux_descriptors > 0 (lipo/models/auxiliary.py); it trains like the regression head
# (a new one must learn; the shipped one goes on from pre-training's weights).
HEADS = ("head", "descriptor_head")


def heads(model) -> list[str]:
    """The heads ``model`` has: PEFT's ``modules_to_save``."""
    return [name for name in HEADS if getattr(model, name, None) is not None]


ADAPTERS = Registry("adapter", __name__, group="lipo.adapters")
ADAPTERS.register("full", ".full")
ADAPTERS.register("lora", ".lora")
ADAPTERS.register("ia3", ".ia3")
ADAPTERS.register("bitfit", ".bitfit")


def check_knobs(name: str, args: dict) -> None:
    """``adapter.*`` settings that ``apply`` does not take fail here, named, not as a
    TypeError in the middle of a trial."""
    params = inspect.signature(ADAPTERS.get(name).apply).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(args) - set(list(params)[1:]))
    if unknown:
        have = ", ".join(f"adapter.{k}" for k in list(params)[1:]) or "none"
        raise ConfigError(
            f"adapter {name!r} has no knob "
            f"{', '.join('adapter.' + k for k in unknown)} (its knobs: {have})"
        )
