"""The final phase: re-train the study's best settings once per seed, then, and only then,
evaluate the test split. Seeds already finished for the same best trial (and control) are
skipped. With ``--control NAME`` the same settings run as the strategy's control: the same
seeds, so the report pairs them with the strategy's own final runs."""

from __future__ import annotations

import statistics
from contextlib import nullcontext

from accelerate import Accelerator
from tqdm.auto import tqdm

from lipo.errors import ConfigError
from lipo.final.export import command_line, export_models, group_runs
from lipo.final.recorded import fail_stale_runs, seed_runs, train_and_test
from lipo.final.refit import refit_seeds, refits
from lipo.invocation import Invocation
from lipo.runtime.devices import release
from lipo.runtime.distributed import broadcast
from lipo.search.book import TrialBook
from lipo.search.claims import SeedClaims
from lipo.tracking.store import Tracker


def final(
    inv: Invocation,
    accelerator: Accelerator,
    seeds: list[int],
    argv: list[str] = (),
    register: str | None = None,
) -> None:
    """``argv``: the command line, for the model cards; ``register``: a model registry name."""
    main = accelerator.is_main_process
    chosen = tracker = parent = claims = None
    if main:
        chosen = best_settings(inv)
        claims = SeedClaims(inv.optuna_name, inv.storage, inv.heartbeat)
    trial_number, overrides = broadcast(accelerator, chosen)
    cfg = inv.base.with_overrides({**overrides, **inv.control_knobs}).replace(phase="final")
    title = f"{inv.study} final" + (f" control={inv.control}" if inv.control else "")
    title += " split per seed" if inv.split_per_seed else ""
    if main:
        tracker = Tracker(inv.tracking_uri, inv.study)
        parent = tracker.start_run(
            title,
            inv.tags(cfg),
            params={
                "seeds": ",".join(map(str, seeds)),
                "best_trial": trial_number,
                "command": command_line(argv),
            },
        )
    try:
        for seed in tqdm(seeds, desc=title, unit="seed", disable=not main):
            done = broadcast(accelerator, main and finished(tracker, inv, trial_number, seed))
            if done:
                if main:
                    tqdm.write(f"seed {seed}: already finished for trial {trial_number}, skipped")
                continue
            # Two final phases of one study at once (a second terminal, a second machine on
            # the same storage) would both train this seed. The claim is taken in the shared
            # Optuna storage: one trains it; the others move on.
            key = inv.final_state_root(trial_number, seed).name
            with claims.hold(key) if main else nullcontext(True) as free:
                if not broadcast(accelerator, free):
                    if main:
                        tqdm.write(
                            f"seed {seed}: another launch is training it for trial "
                            f"{trial_number}, skipped (re-run once it ends)"
                        )
                    continue
                if main:
                    fail_stale_runs(tracker, inv, trial_number, seed)
                seed_cfg = inv.seed_config(cfg, seed)
                one_seed(inv, accelerator, seed_cfg, tracker, parent, trial_number)
            release(accelerator)  # this seed's model and optimiser, before the next seed
        if refits(inv, cfg):
            refit_seeds(inv, accelerator, cfg, tracker, parent, trial_number, seeds, claims)
    except KeyboardInterrupt:
        if main:
            tracker.finish(parent, "KILLED")
        raise
    if main:
        tracker.finish(parent, "FINISHED")
        summarise(inv, tracker, trial_number)
        export_models(inv, tracker, trial_number, list(argv), register, parent)
        print(tracker.runs_view())


def best_settings(inv: Invocation) -> tuple[int, dict]:
    book = TrialBook.load(inv.optuna_name, inv.storage)
    if book is None:
        raise ConfigError(
            f"no study {inv.optuna_name} in the Optuna storage: run "
            f"'python launch.py --study {inv.study}' first"
        )
    best = book.best()
    if best is None:
        raise ConfigError(f"study {inv.optuna_name} has no completed trial yet")
    return best.number, best.settings


def finished(tracker: Tracker, inv: Invocation, trial_number: int, seed: int) -> bool:
    return bool(seed_runs(tracker, inv, trial_number, seed))


def one_seed(inv, accelerator, cfg, tracker, parent, trial_number) -> None:
    main = accelerator.is_main_process
    ws = inv.seed_workspace(cfg.seed)  # every rank reads the same split
    tags = {"lipo.best_trial": trial_number, "optuna.trial_number": trial_number}
    state_root = broadcast(
        accelerator, inv.final_state_root(trial_number, cfg.seed) if main else None
    )
    name = f"final seed {cfg.seed}"
    done = train_and_test(
        inv, accelerator, cfg, ws, tracker, parent, name, {**tags, **inv.seed_tags(ws)}, state_root
    )
    if main and done is not None:
        result, test = done
        tqdm.write(
            f"seed {cfg.seed}: val/mse {result.best['val/mse']:.4f}  "
            f"test/mse {test['test/mse']:.4f}  test/r2 {test['test/r2']:.3f}"
        )


def summarise(inv: Invocation, tracker: Tracker, trial_number: int) -> None:
    """Mean ± std over seeds, each seed once (its newest finished run, as the report and the
    exported models count it): a seed finished twice must not weigh twice."""
    runs = group_runs(inv, tracker, trial_number)
    control = f" (control {inv.control})" if inv.control else ""
    for key in ("test/mse", "test/r2"):
        values = [r.metrics[key] for r in runs if key in r.metrics]
        if values:
            spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
            print(
                f"{inv.study} final{control}, trial {trial_number}, {len(values)} seeds: "
                f"{key} {statistics.mean(values):.4f}{spread}"
            )
