"""How the weights change. Each module has ``apply(model, **knobs) -> model``: it freezes what
must not train and wraps what must (the regression head always trains and is always saved)."""
from lipo.registry import Registry

ADAPTERS = Registry("adapter", "lipo.adapters",
                    {"full": "full", "lora": "lora", "ia3": "ia3", "bitfit": "bitfit"})
