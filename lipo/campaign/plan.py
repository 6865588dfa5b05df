"""A campaign file (``campaigns/<name>.py`` or any path) ──► ``Campaign`` ──► ordered pieces.

Per split, per study: the search, its final phase, each control's final phase; then the
reference models and the report. Each piece is one launcher command line, so running it goes
through the launcher's own resume paths (a search continues to its total, a final phase skips
finished seeds)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import lipo
from lipo.data.molecules import data_dir
from lipo.errors import ConfigError

FOLDER = Path(lipo.__file__).resolve().parents[1] / "campaigns"
DEFAULT = "default"
BUILT_IN_SPLITS = ("random", "scaffold")


@dataclass
class Campaign:
    name: str
    path: Path
    studies: dict[str, tuple[str, ...]]  # study -> its controls
    splits: list[str]  # launcher --split values: random, scaffold or a file's absolute path
    seeds: list[int]
    trials: int | dict | None = None
    epochs: int | None = None
    backbone: str | None = None
    split_per_seed: bool = False  # final seed S on random_seed<S> (launcher --split-per-seed)
    # the stores and how many processes share a search: from the command line
    data: str | None = None
    storage: str | None = None
    tracking_uri: str | None = None
    workers: int = 1

    def trials_of(self, study: str) -> int | None:
        if isinstance(self.trials, dict):
            return self.trials.get(study)
        return self.trials


@dataclass(frozen=True)
class Piece:
    kind: str  # search | final | references | report
    study: str = ""
    split: str = ""
    control: str = ""
    seeds: tuple = field(default=(), compare=False)

    @property
    def label(self) -> str:
        split = Path(self.split).stem if self.split else ""
        if self.kind in ("search", "final"):
            what = f"{self.study} {self.kind}" + (
                f" control={self.control}" if self.control else ""
            )
            return f"{what} on {split}"
        return f"{self.kind} on {split}" if split else self.kind


def campaign_file(name_or_file: str | None) -> Path:
    given = name_or_file or DEFAULT
    path = Path(given).expanduser()
    if path.suffix == ".py" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"campaign file {path}: no such file")
        return path.resolve()
    path = FOLDER / f"{given}.py"
    if not path.is_file():
        known = sorted(p.stem for p in FOLDER.glob("*.py") if not p.name.startswith("_"))
        raise ConfigError(
            f"unknown campaign {given!r}: expected a .py file or one of "
            f"{', '.join(known)} (in {FOLDER})"
        )
    return path


def load_campaign(name_or_file: str | None) -> Campaign:
    path = campaign_file(name_or_file)
    spec = importlib.util.spec_from_file_location(f"campaigns.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [a for a in ("STUDIES", "SPLITS", "SEEDS") if not hasattr(module, a)]
    if missing:
        raise ConfigError(f"campaign file {path} lacks {', '.join(missing)}")
    studies = module.STUDIES
    if not isinstance(studies, dict):  # a plain list: no controls
        studies = {s: () for s in studies}
    seeds = [int(s) for s in module.SEEDS]
    if not seeds:
        raise ConfigError(f"campaign file {path}: SEEDS is empty")
    return Campaign(
        path.stem,
        path,
        {s: tuple(c) for s, c in studies.items()},
        [resolve_split(s, path) for s in module.SPLITS],
        seeds,
        trials=getattr(module, "TRIALS", None),
        epochs=getattr(module, "EPOCHS", None),
        backbone=getattr(module, "BACKBONE", None),
        split_per_seed=bool(getattr(module, "SPLIT_PER_SEED", False)),
    )


def resolve_split(spec: str, campaign: Path) -> str:
    """A split file's path (relative to the campaign file, or as given), its name in
    ``$LIPO_DATA_DIR/splits``, or a built-in split."""
    if spec in BUILT_IN_SPLITS:
        return spec
    folder = data_dir()
    for candidate in (
        Path(spec).expanduser(),
        campaign.parent / spec,
        *([folder / "splits" / spec] if folder else []),
    ):
        if candidate.is_file():
            return str(candidate.resolve())
    raise ConfigError(
        f"campaign file {campaign}: split {spec!r} is neither random, scaffold, a "
        f"file, nor a file in $LIPO_DATA_DIR/splits ({folder})"
    )


def check(campaign: Campaign) -> None:
    """Unknown studies or controls fail before anything trains (no torch imported)."""
    from lipo.strategies import control_names
    from lipo.study_files import load_study

    for study, controls in campaign.studies.items():
        definition = load_study(study)
        known = control_names(definition.STRATEGY)
        for control in controls:
            if control not in known:
                raise ConfigError(
                    f"campaign file {campaign.path}: study {study} (strategy "
                    f"{definition.STRATEGY}) has no control {control!r}; it has "
                    f"{', '.join(known) or 'none'}"
                )


def plan(campaign: Campaign) -> list[Piece]:
    pieces = []
    seeds = tuple(campaign.seeds)
    for split in campaign.splits:
        for study, controls in campaign.studies.items():
            pieces.append(Piece("search", study, split))
            pieces.append(Piece("final", study, split, seeds=seeds))
            pieces += [Piece("final", study, split, control, seeds) for control in controls]
    pieces += [Piece("references", split=split, seeds=seeds) for split in campaign.splits]
    return pieces + [Piece("report")]


def launcher_argv(campaign: Campaign, piece: Piece) -> list[str]:
    """The launcher command line that runs ``piece`` (search and final pieces)."""
    argv = ["--study", piece.study, "--split", piece.split]
    for flag, value in (
        ("--backbone", campaign.backbone),
        ("--epochs", campaign.epochs),
        ("--data", campaign.data),
        ("--storage", campaign.storage),
        ("--tracking-uri", campaign.tracking_uri),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if piece.kind == "search":
        trials = campaign.trials_of(piece.study)
        argv += ["--trials", str(trials)] if trials else []
        return argv + (["--workers", str(campaign.workers)] if campaign.workers > 1 else [])
    argv += ["--final", "--seeds", ",".join(map(str, piece.seeds))]
    argv += ["--split-per-seed"] if campaign.split_per_seed else []
    return argv + (["--control", piece.control] if piece.control else [])
