"""The backbones by name (``--backbone NAME``; a folder is accepted as well). Each target is a
factory ``(corpus) -> lipo.models.backbones.Backbone``, where ``corpus`` holds SMILES whose pieces
extend the vocabulary of a freshly built encoder. Registered here rather than in
lipo/models/backbones.py so that listing the names (the CLI's help) imports no transformers.
Adding one: the factory and one ``BACKBONES.register`` line."""

from lipo.registry import Registry

DEFAULT_BACKBONE = "mini"
BACKBONES = Registry("backbone", group="lipo.backbones")
BACKBONES.register("tiny", "lipo.models.backbones:tiny")
BACKBONES.register("mini", "lipo.models.backbones:mini")
BACKBONES.register("mini-scratch", "lipo.models.backbones:mini_scratch")
BACKBONES.register("mini-30500", "lipo.models.backbones:mini_30500")
BACKBONES.register("mini-22500", "lipo.models.backbones:mini_22500")
BACKBONES.register("mini-13500", "lipo.models.backbones:mini_13500")
BACKBONES.register("mini-5500", "lipo.models.backbones:mini_5500")
BACKBONES.register("mini-moses", "lipo.models.backbones:mini_moses")
BACKBONES.register("molformer", "lipo.models.backbones:molformer")
BACKBONES.register("molformer-tiny", "lipo.models.backbones:molformer_tiny")
BACKBONES.register("small", "lipo.models.backbones:small")
BACKBONES.register("small-scratch", "lipo.models.backbones:small_scratch")
