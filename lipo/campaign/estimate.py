"""Each piece's cost from the platform's own timing history: the ``wall_time_s`` that earlier
finished runs of the same study on the same backbone logged in MLflow (a search trial for a
search, a final seed for a final phase), and the references' fit times the report cached."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from lipo.campaign.plan import Campaign, Piece
from lipo.campaign.state import Left


class History:
    def __init__(self, uri: str, backbone: str, cache: Path):
        self.walls: dict[tuple[str, str], list[float]] = {}
        self.fits: dict[str, list[float]] = {}  # model -> seconds per seed, per cached split
        for run in finished_runs(uri):
            tag = run.tags.get("lipo.backbone", "")
            if backbone not in (tag, Path(tag).name) or "wall_time_s" not in run.metrics:
                continue
            key = (run.tags.get("lipo.study", ""), run.tags.get("lipo.phase", ""))
            self.walls.setdefault(key, []).append(run.metrics["wall_time_s"])
        for path in sorted(cache.glob("references_*.json")):  # one model on one split each
            fitted = json.loads(path.read_text())
            self.fits.setdefault(fitted["model"], []).append(fitted["fit_time_s"])

    def seconds(self, piece: Piece, left: Left) -> tuple[float | None, str]:
        """(estimated seconds, where it comes from); None with 'no history'."""
        if left.done:
            return 0.0, "done"
        if piece.kind == "references":
            if not self.fits:
                return None, "no history"
            per_seed = sum(statistics.mean(times) for times in self.fits.values())
            return (
                per_seed * len(piece.seeds),
                f"{len(piece.seeds)} seeds x {duration(per_seed)} ({', '.join(self.fits)})",
            )
        if piece.kind == "report":
            return None, "no history"
        walls = self.walls.get((piece.study, piece.kind))
        if not walls:
            return None, "no history"
        per_unit = statistics.mean(walls)
        unit = "trial" if piece.kind == "search" else "seed"
        return (
            per_unit * left.units,
            f"{left.units} {unit}s x {duration(per_unit)} (mean of {len(walls)} runs)",
        )


def finished_runs(uri: str) -> list:
    from lipo.tracking.reader import StoreReader

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return []
    return [r for r in StoreReader(uri).study_runs() if r.status == "FINISHED"]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def history_for(campaign: Campaign, cache: Path) -> History:
    from lipo.models.backbone_names import DEFAULT_BACKBONE
    from lipo.tracking.store import DEFAULT_TRACKING_URI

    backbone = campaign.backbone or DEFAULT_BACKBONE
    return History(
        campaign.tracking_uri or DEFAULT_TRACKING_URI, Path(backbone).name or backbone, cache
    )
