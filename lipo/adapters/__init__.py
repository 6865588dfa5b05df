"""How the weights change. Each module has ``apply(model, **knobs) -> model``: it freezes what
must not train and wraps what must (the regression head always trains and is always saved).
Adding one: a module with ``apply`` and one ``ADAPTERS.register`` line (here, or in code of
your own that runs before the CLI parses); ``--adapter`` offers every registered name."""
from lipo.registry import Registry

ADAPTERS = Registry("adapter", __name__, group="lipo.adapters")
ADAPTERS.register("full", ".full")
ADAPTERS.register("lora", ".lora")
ADAPTERS.register("ia3", ".ia3")
ADAPTERS.register("bitfit", ".bitfit")
