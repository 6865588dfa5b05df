"""Resolve a command line into an ``Invocation``: study, base config, data, split, stores."""
from __future__ import annotations

from lipo.adapters import ADAPTERS
from lipo.backbones import check_name, trust_folder
from lipo.config import RunConfig
from lipo.errors import ConfigError
from lipo.strategies import STRATEGIES, control_knobs
from lipo.sweep import HEARTBEAT_S
from lipo.experiment import Workspace
from lipo.runner import Invocation
from lipo.studies import load_study
from lipo.tracking import DEFAULT_TRACKING_URI

DEFAULT_BACKBONE = "mini"
FULL = "full"
DEFAULT_SPLIT = "random"


def build(args) -> Invocation:
    definition = load_study(args.study)
    adapter_name = adapter(args, definition)
    check_names(definition)
    if getattr(args, "trust_remote_code", False) and args.backbone:
        trust_folder(args.backbone)
    # The flags have no argparse default, so that --report can tell a given filter apart.
    args.backbone = args.backbone or DEFAULT_BACKBONE
    args.split = args.split or DEFAULT_SPLIT
    check_name(args.backbone)
    if getattr(args, "warm_start", None):
        load_study(args.warm_start)  # an unknown study fails here, listing the studies
    control = getattr(args, "control", None) or ""
    if control:  # a bad name fails here, before any data is read
        control_knobs(definition.STRATEGY, control)
    ws = Workspace.load(args.data, args.split, args.seed, args.strict)
    base = RunConfig(study=args.study, strategy=definition.STRATEGY,
                     adapter=adapter_name,
                     backbone=args.backbone, data=ws.mols.source, split=args.split,
                     split_seed=args.seed, seed=args.seed, strict=args.strict,
                     epochs=args.epochs or definition.EPOCHS,
                     head_features=args.head_features or "",
                     strategy_args={"pool": args.pool} if args.pool else {})
    return Invocation(study=args.study, definition=definition, base=base,
                      trials=args.trials or definition.TRIALS, storage=args.storage,
                      tracking_uri=args.tracking_uri or DEFAULT_TRACKING_URI, ws=ws,
                      objectives=args.objective, control=control,
                      precision=getattr(args, "precision", None) or "fp32",
                      heartbeat=getattr(args, "heartbeat", None) or HEARTBEAT_S,
                      save_every=(100 if getattr(args, "save_every", None) is None
                                  else args.save_every),
                      pruner=getattr(args, "pruner", None) or "median",
                      warm_start=getattr(args, "warm_start", None) or "")


def check_names(definition) -> None:
    """A study naming an unknown strategy, adapter or backbone fails here, before any data
    is read or any trial starts (not as a failed trial)."""
    for registry, name in ((STRATEGIES, definition.STRATEGY), (ADAPTERS, definition.ADAPTER)):
        if name not in registry:
            registry.get(name)  # raises ConfigError listing the valid names


def adapter(args, definition) -> str:
    """The study's adapter, or --adapter in place of a full fine-tune: an adapter study's
    space tunes its own adapter's knobs, which another adapter would not have."""
    chosen = getattr(args, "adapter", None)
    if chosen is None or chosen == definition.ADAPTER:
        return definition.ADAPTER
    if definition.ADAPTER != FULL:
        raise ConfigError(f"--adapter {chosen}: study {args.study!r} tunes its own adapter "
                          f"({definition.ADAPTER}); --adapter applies to studies that "
                          "fine-tune every weight")
    return chosen
