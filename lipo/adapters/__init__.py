"""How the weights change. Each module has ``apply(model, **knobs) -> model``: it freezes what
must not train and wraps what must (the regression head always trains)."""
from lipo.registry import Registry

ADAPTERS = Registry("adapter", "lipo.adapters", {"full": "full"})
