"""What one command line asks for, resolved: ``Invocation`` (study, base config, data, split,
stores) and ``build``, which makes it from the parsed flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from lipo.adapters import ADAPTERS
from lipo.config import RunConfig
from lipo.errors import ConfigError
from lipo.models.backbone_names import DEFAULT_BACKBONE
from lipo.models.backbones import check_name, trust_folder
from lipo.runtime import workdir
from lipo.search.book import TrialRecord
from lipo.search.storage import HEARTBEAT_S
from lipo.strategies import STRATEGIES, check_knobs, control_knobs
from lipo.study_files import load_study
from lipo.tracking import schema
from lipo.training.trial_run import Workspace

FULL = "full"
DEFAULT_SPLIT = "random"


@dataclass
class Invocation:
    """What one command line asks for, resolved."""

    study: str
    definition: ModuleType
    base: RunConfig
    trials: int
    storage: str | None
    tracking_uri: str
    ws: Workspace
    objectives: tuple[str, ...] = ("mse",)
    heartbeat: int = HEARTBEAT_S  # seconds between a running trial's heartbeats (RDB)
    save_every: int = 100  # optimiser steps between resumable training states
    control: str = ""  # --final --control NAME: the strategy's control, not the strategy
    precision: str = "fp32"  # --precision as resolved for this machine (lipo.runtime.devices)
    pruner: str = "median"  # --pruner: median, hyperband or none (search.storage.make_pruner)
    warm_start: str = ""  # --warm-start STUDY: queue that study's best settings first
    split_per_seed: bool = False  # --final --split-per-seed: seed S on split random_seed<S>
    refit: bool = True  # --final: refit plain fits on training + validation (--no-refit: not)

    def optuna_name_of(self, study: str) -> str:
        """The Optuna study of ``study`` on this backbone, split, data and head features."""
        backbone = Path(self.base.backbone).name or self.base.backbone
        name = f"{study}:{backbone}:{self.ws.split.name}:{self.ws.data_sha256[:8]}"
        return name + (f":+{self.base.head_features}" if self.base.head_features else "")

    @property
    def optuna_name(self) -> str:
        """One Optuna study per (study, backbone, split, data): mixing them would feed the
        sampler incomparable objectives."""
        name = self.optuna_name_of(self.study)
        if self.base.adapter != self.definition.ADAPTER:  # --adapter
            name += f":adapter={self.base.adapter}"
        return name if self.objectives == ("mse",) else f"{name}:{'+'.join(self.objectives)}"

    @property
    def control_knobs(self) -> dict:
        """The control's strategy.KNOB overrides (none without --control)."""
        return control_knobs(self.definition.STRATEGY, self.control) if self.control else {}

    @property
    def state_folder(self) -> Path:
        """This Optuna study's training states, under a name safe on any file system."""
        return workdir.state_root() / "".join(
            c if c.isalnum() or c in "-_." else "_" for c in self.optuna_name
        )

    def state_root(self, trial: TrialRecord) -> Path:
        """Where a trial's training state lives; keyed by the trial's origin, so that its
        retry (same settings, new number) resumes it."""
        return self.state_folder / f"trial-{trial.origin}"

    def final_state_root(self, trial_number: int, seed: int, phase: str = "final") -> Path:
        """Where a final seed's training state lives (``phase="refit"``: its refit's), so that
        a final phase stopped mid-seed resumes that seed instead of re-training it from its
        first batch. Its name also keys the seed's claim."""
        splits = "-splits" if self.split_per_seed else ""
        refit = "-refit" if phase == "refit" else ""
        return (
            self.state_folder
            / f"final-{trial_number}-{self.control or 'strategy'}{splits}-seed{seed}{refit}"
        )

    def seed_config(self, cfg: RunConfig, seed: int) -> RunConfig:
        """``cfg`` for final seed ``seed``: its seed, and with ``split_per_seed`` its split."""
        per_seed = {"split": "random", "split_seed": seed} if self.split_per_seed else {}
        return cfg.replace(seed=seed, **per_seed)

    def seed_workspace(self, seed: int) -> Workspace:
        """The molecules and split a final seed trains on: the search's, or with
        ``split_per_seed`` the random split of that seed (the recipe of random_seed<S>.json)."""
        if not self.split_per_seed:
            return self.ws
        return Workspace.load(self.base.data, "random", seed, self.base.strict)

    def seed_tags(self, ws: Workspace) -> dict[str, str]:
        """A final run's own split where it is not the search's."""
        if not self.split_per_seed:
            return {}
        return {
            "lipo.split": ws.split.name,
            "lipo.split_sha256": ws.split.sha256,
            "lipo.split_per_seed": "1",
        }

    def tags(self, cfg: RunConfig) -> dict[str, str]:
        tags = {
            schema.STUDY: self.study,
            schema.STRATEGY: cfg.strategy,
            schema.ADAPTER: cfg.adapter,
            schema.BACKBONE: cfg.backbone,
            schema.PHASE: cfg.phase,
            schema.SEED: cfg.seed,
            schema.SPLIT: self.ws.split.name,
            schema.SPLIT_SHA256: self.ws.split.sha256,
            schema.OPTUNA_STUDY: self.optuna_name,
            schema.PRECISION: self.precision,
            **getattr(STRATEGIES.get(cfg.strategy), "TAGS", {}),
        }  # what a strategy states
        return {**tags, schema.CONTROL: self.control} if self.control else tags


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
    base = RunConfig(
        study=args.study,
        strategy=definition.STRATEGY,
        adapter=adapter_name,
        backbone=args.backbone,
        data=ws.mols.source,
        split=args.split,
        split_seed=args.seed,
        seed=args.seed,
        strict=args.strict,
        epochs=args.epochs or definition.EPOCHS,
        head_features=args.head_features or "",
        strategy_args={"pool": args.pool} if args.pool else {},
    )
    check_knobs(base.with_overrides(getattr(definition, "DEFAULTS", {})))  # a typo fails here
    return Invocation(
        study=args.study,
        definition=definition,
        base=base,
        trials=args.trials or definition.TRIALS,
        storage=args.storage,
        tracking_uri=args.tracking_uri or schema.DEFAULT_TRACKING_URI,
        ws=ws,
        objectives=args.objective,
        control=control,
        precision=getattr(args, "precision", None) or "fp32",
        heartbeat=getattr(args, "heartbeat", None) or HEARTBEAT_S,
        save_every=(100 if getattr(args, "save_every", None) is None else args.save_every),
        pruner=getattr(args, "pruner", None) or "median",
        warm_start=getattr(args, "warm_start", None) or "",
        split_per_seed=bool(getattr(args, "split_per_seed", False)),
        refit=not getattr(args, "no_refit", False),
    )


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
        raise ConfigError(
            f"--adapter {chosen}: study {args.study!r} tunes its own adapter "
            f"({definition.ADAPTER}); --adapter applies to studies that "
            "fine-tune every weight"
        )
    return chosen
