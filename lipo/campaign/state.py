"""What is left of each piece, read from the stores themselves (never from a file of the
campaign's own): Optuna's trial counts for a search, MLflow's finished final runs per seed for
a final phase, the report's cache for the references. So a campaign stopped anywhere, or run
by several processes at once, always sees the same truth."""

from __future__ import annotations

from dataclasses import dataclass

from lipo.campaign.plan import Campaign, Piece, launcher_argv

RUNNING = "RUNNING"


@dataclass
class Left:
    units: int  # trials or seeds still to train (references: splits to fit; report: 1)
    total: int
    ready: bool = True  # False: a final phase whose search still has trials running elsewhere
    why: str = ""

    @property
    def done(self) -> bool:
        return self.units == 0


def invocation(campaign: Campaign, piece: Piece):
    """The launcher's own resolution of the piece's command line (study, split, stores)."""
    from lipo.cli import check, parser
    from lipo.invocation import build

    args = parser().parse_args(launcher_argv(campaign, piece))
    args.workers = 1  # resolving only: --workers' checks belong to the run
    check(args)
    return build(args)


def left(campaign: Campaign, piece: Piece) -> Left:
    if piece.kind == "search":
        return search_left(invocation(campaign, piece))
    if piece.kind == "final":
        inv = invocation(campaign, piece)
        return final_left(inv, piece.seeds, campaign.trials_of(piece.study) or inv.trials)
    if piece.kind == "references":
        from lipo.campaign.references import cached

        return Left(0 if cached(campaign, piece) else 1, 1)
    return Left(1, 1)  # the report: rebuilt each time, from whatever the stores hold


def search_left(inv) -> Left:
    from lipo.search.book import TrialBook

    book = TrialBook.load(inv.optuna_name, inv.storage)
    if book is None:
        return Left(inv.trials, inv.trials)
    units = max(0, inv.trials - book.counted())
    if units == 0 and RUNNING in book.states():
        # running here or elsewhere, or lost with a killed process: a re-run of the search
        # fails and re-queues the lost ones (lipo/search/trials.py) and trains them
        return Left(book.states().count(RUNNING), inv.trials, why="trials still running")
    return Left(units, inv.trials)


def final_left(inv, seeds: tuple, trials: int) -> Left:
    """``trials``: the search's total (the campaign's, else the study's own)."""
    from lipo.final.phase import finished
    from lipo.final.refit import refitted
    from lipo.search.book import TrialBook
    from lipo.tracking.store import Tracker

    book = TrialBook.load(inv.optuna_name, inv.storage)
    if book is None:
        return Left(len(seeds), len(seeds), ready=False, why="after its search")
    if RUNNING in book.states():
        # the best trial may still change: a final phase now could re-train the wrong one
        return Left(
            len(seeds),
            len(seeds),
            ready=False,
            why="its search is still running (here or in another process)",
        )
    best, counted = book.best(), book.counted()
    if best is None or counted < trials:
        return Left(
            len(seeds),
            len(seeds),
            ready=False,
            why=f"its search has {counted} of {trials} trials"
            + ("" if best else ", none completed"),
        )
    tracker = Tracker(inv.tracking_uri, inv.study)
    todo = [
        s
        for s in seeds
        if not finished(tracker, inv, best.number, s)
        or not refitted(tracker, inv, best.number, s)  # stopped between the seeds and export
    ]
    return Left(len(todo), len(seeds))
