"""``python launch.py campaign [NAME|FILE]``: every piece of a campaign, in order, skipping what
the stores say is finished. Interrupt it anywhere and run it again: a search continues to its
total, a final phase skips its finished seeds and resumes a stopped one, a finished piece is not
run at all. Several campaign processes on one shared storage share the work through the
launcher's own mechanisms (a search's trials add up to its total; a final seed is claimed)."""

from __future__ import annotations

import argparse
import os
import time

from lipo.campaign.estimate import duration, history_for
from lipo.campaign.plan import (
    Campaign,
    Piece,
    check,
    launcher_argv,
    load_campaign,
    plan,
)
from lipo.campaign.references import CACHE
from lipo.campaign.state import Left, left
from lipo.errors import ConfigError, LipoError

POLL_S = 30  # a final phase waits this long between looks at a search running elsewhere
# Tests: the campaign interrupts itself (KeyboardInterrupt, as a Ctrl-C) after this many pieces.
STOP_AFTER = "LIPO_CAMPAIGN_STOP_AFTER"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launch.py campaign",
        description=(
            "Run a campaign: per split and study the search, its final phase and each control's, "
            "then the reference models and the report. Re-running continues it."
        ),
    )
    p.add_argument(
        "campaign",
        nargs="?",
        default=None,
        help="a name in campaigns/ (default: default) or a campaign file (.py)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan, one line per piece with its state and estimated cost",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="K processes share each search on this machine (default 1)",
    )
    p.add_argument("--backbone", help="in place of the campaign file's BACKBONE")
    p.add_argument("--data", help="CSV in place of LIPO_DATA_DIR's lipophilicity.csv")
    p.add_argument("--storage", help="Optuna storage (shared by several campaign processes)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI")
    return p


def configure(args) -> Campaign:
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "campaign under torchrun/accelerate launch is not supported: run "
            "'launch.py campaign --workers K', or one campaign process per "
            "machine on a shared --storage and --tracking-uri"
        )
    campaign = load_campaign(args.campaign)
    campaign.backbone = args.backbone or campaign.backbone
    campaign.data, campaign.storage = args.data, args.storage
    campaign.tracking_uri, campaign.workers = args.tracking_uri, args.workers
    check(campaign)
    return campaign


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    campaign = configure(args)
    pieces = plan(campaign)
    history = history_for(campaign, CACHE)
    states = [left(campaign, piece) for piece in pieces]
    if args.dry_run:
        print_plan(campaign, pieces, states, history)
        return
    run_all(campaign, pieces, states, history)


def print_plan(campaign: Campaign, pieces: list[Piece], states: list[Left], history) -> None:
    print(f"campaign {campaign.name} ({campaign.path}): {len(pieces)} pieces")
    total, unknown = 0.0, 0
    for i, (piece, state) in enumerate(zip(pieces, states), 1):
        seconds, source = history.seconds(piece, state)
        total += seconds or 0.0
        unknown += seconds is None
        print(
            f"{i:3d}. {piece.label:52s} {state_text(piece, state):40s} "
            f"{'~' + duration(seconds) if seconds else '':>8s}  {source}"
        )
    print(
        f"estimated: ~{duration(total)} for the pieces with history"
        + (f"; {unknown} without history" if unknown else "")
    )


def state_text(piece: Piece, state: Left) -> str:
    if state.done:
        return "done"
    unit = {"search": "trials", "final": "seeds"}.get(piece.kind)
    text = f"{state.units} of {state.total} {unit} left" if unit else "to run"
    return text if state.ready else f"{text}, {state.why}"


def run_all(campaign: Campaign, pieces: list[Piece], states: list[Left], history) -> None:
    from tqdm.auto import tqdm

    failed, ran = [], 0
    stop_after = int(os.environ.get(STOP_AFTER, "0"))
    with tqdm(total=len(pieces), desc=f"campaign {campaign.name}", unit="piece", position=0) as bar:
        for i, piece in enumerate(pieces):
            # finished stays finished; anything else: other processes may have moved it on
            state = states[i] if states[i].done or i == 0 else left(campaign, piece)
            bar.set_postfix_str(time_left(pieces[i:], states[i:], history))
            if not state.done:
                error = run_piece(campaign, piece, state)
                ran += 1
                history = history_for(campaign, CACHE)  # this piece's runs inform the rest
                if error:
                    failed.append(f"{piece.label}: {error}")
                    bar.write(f"piece failed: {piece.label}: {error}")
            bar.update(1)
            print(
                f"piece {i + 1}/{len(pieces)} {'ran' if not state.done else 'done'}: {piece.label}",
                flush=True,
            )
            if stop_after and ran >= stop_after:
                # what a Ctrl-C here raises; raised, not signalled, because a process started
                # in the background by a shell ignores SIGINT
                raise KeyboardInterrupt
    if failed:
        raise LipoError(
            f"{len(failed)} pieces failed (re-run to retry them):\n  " + "\n  ".join(failed)
        )


def time_left(pieces: list[Piece], states: list[Left], history) -> str:
    """The history's estimate of what is left (the bar's own ETA assumes equal pieces)."""
    costs = [history.seconds(p, s)[0] for p, s in zip(pieces, states)]
    unknown = sum(c is None for c in costs)
    known = sum(c for c in costs if c is not None)
    return f"history: ~{duration(known)} left" + (
        f" + {unknown} pieces without history" if unknown else ""
    )


def run_piece(campaign: Campaign, piece: Piece, state: Left) -> str:
    """'' when the piece ran; else why it did not (the campaign goes on with the others)."""
    try:
        if piece.kind == "final" and not state.ready:
            state = wait_for_search(campaign, piece, state)
            if not state.ready:
                return state.why
        if piece.kind in ("search", "final"):
            launch(launcher_argv(campaign, piece))
        elif piece.kind == "references":
            from lipo.campaign.references import fit

            fit(campaign, piece)
        else:
            report(campaign)
    except LipoError as exc:
        return str(exc).splitlines()[0]
    return ""


def wait_for_search(campaign: Campaign, piece: Piece, state: Left) -> Left:
    """A search still running in another process: its best trial may change, so the final
    phase waits for it. A search with no completed trial and nothing running: give up."""
    if state.why == "after its search":  # the search piece before it ran: look again
        state = left(campaign, piece)
    while not state.ready and "still running" in state.why:
        print(f"{piece.label}: {state.why}; looking again in {POLL_S} s", flush=True)
        time.sleep(POLL_S)
        state = left(campaign, piece)
    return state


def launch(argv: list[str]) -> None:
    """The launcher itself, in this process: its checks, resume paths and errors."""
    from lipo.cli import check as check_flags
    from lipo.cli import parser as launcher_parser
    from lipo.cli import run

    args = launcher_parser().parse_args(argv)
    args.argv = list(argv)  # --workers starts this command once per worker
    check_flags(args)
    run(args)


def report(campaign: Campaign) -> None:
    from lipo.models.backbone_names import DEFAULT_BACKBONE

    argv = ["--report", "--backbone", campaign.backbone or DEFAULT_BACKBONE]
    if campaign.tracking_uri:
        argv += ["--tracking-uri", campaign.tracking_uri]
    launch(argv)
