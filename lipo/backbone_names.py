"""The backbones by name (``--backbone NAME``; a folder is accepted as well). Each target is a
factory ``(corpus) -> lipo.backbones.Backbone``, where ``corpus`` holds SMILES whose pieces
extend the vocabulary of a freshly built encoder. Registered here rather than in
lipo/backbones.py so that listing the names (the CLI's help) imports no transformers.
Adding one: the factory and one ``BACKBONES.register`` line."""
from lipo.registry import Registry

DEFAULT_BACKBONE = "mini"
BACKBONES = Registry("backbone", group="lipo.backbones")
BACKBONES.register("tiny", "lipo.backbones:tiny")
BACKBONES.register("mini", "lipo.backbones:mini")
BACKBONES.register("mini-scratch", "lipo.backbones:mini_scratch")
BACKBONES.register("mini-5500", "lipo.backbones:mini_5500")
BACKBONES.register("mini-moses", "lipo.backbones:mini_moses")
BACKBONES.register("molformer", "lipo.backbones:molformer")
BACKBONES.register("molformer-tiny", "lipo.backbones:molformer_tiny")
BACKBONES.register("small", "lipo.backbones:small")
BACKBONES.register("small-scratch", "lipo.backbones:small_scratch")
