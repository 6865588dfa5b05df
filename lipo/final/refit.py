"""Refit members: once validation has chosen all it chooses (the study's settings, each final
seed's epoch count, the partner's weight, the interval), each final seed's settings train once
more on training + validation molecules, for the epochs that seed's own fit kept, and the last
epoch is kept. The served ensemble (``lipo.final.export``) predicts with these refits; the
weight and the conformal interval stay the final seeds' (their validation predictions are the
only ones made on molecules their model did not see).

The final seeds stay what every table compares: a refit is its own MLflow run in phase
``refit`` (tagged with the final run it refits), tested once like them, and counted by no
reader of final runs. Only strategies whose fit is one plain fit on the training split refit:
the others choose examples (curriculum, active learning, influence) or adapt the encoder on the
training molecules (masked-LM), which a bigger training split would change, not only enlarge.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext

import numpy as np
from tqdm.auto import tqdm

from lipo.final.export import refit_runs
from lipo.final.recorded import fail_stale_runs, seed_runs, train_and_test
from lipo.runtime.devices import release
from lipo.runtime.distributed import broadcast
from lipo.tracking import schema
from lipo.tracking.finals import newest_per_seed
from lipo.training.trial_run import Workspace

REFITTABLE = ("all",)  # the strategies that train once on every training molecule


def refits(inv, cfg) -> bool:
    """Whether this final phase refits its seeds (``--no-refit`` turns it off)."""
    return inv.refit and cfg.strategy in REFITTABLE


def refit_workspace(ws: Workspace) -> Workspace:
    """``ws`` with its validation molecules moved into training too (the test part as it is;
    the validation part stays, scored each epoch but choosing nothing). Its own name: MLflow
    keeps one dataset per name and digest, and this training part is not the split's."""
    split = ws.split
    joined = np.concatenate([split.train, split.val])
    refit = dataclasses.replace(split, name=f"{split.name}+val", train=joined)
    return dataclasses.replace(ws, split=refit)


def newest_final(tracker, inv, trial_number: int, seed: int):
    """The seed's newest finished final run, or None."""
    finals = newest_per_seed(seed_runs(tracker, inv, trial_number, seed))
    return finals[0] if finals else None


def refitted(tracker, inv, trial_number: int, seed: int) -> bool:
    """Whether the seed needs no refit now: this phase does not refit, the seed has no
    finished final run, or that run's refit has finished (a campaign's bookkeeping)."""
    if not refits(inv, inv.base):
        return True
    final = newest_final(tracker, inv, trial_number, seed)
    return final is None or final.run_id in refit_runs(inv, tracker, trial_number)


def refit_seeds(inv, accelerator, cfg, tracker, parent, trial_number, seeds, claims) -> None:
    """Refits each finished final seed that has no finished refit yet; every rank calls it."""
    main = accelerator.is_main_process
    title = f"{inv.study} refit on train + val"
    for seed in tqdm(seeds, desc=title, unit="seed", disable=not main):
        plan = broadcast(accelerator, to_refit(inv, tracker, trial_number, seed) if main else None)
        if plan is None:
            continue
        key = inv.final_state_root(trial_number, seed, "refit").name
        with claims.hold(key) if main else nullcontext(True) as free:
            if not broadcast(accelerator, free):
                if main:
                    tqdm.write(f"seed {seed}: another launch is refitting it, skipped")
                continue
            if main:
                fail_stale_runs(tracker, inv, trial_number, seed, phase="refit")
            one_refit(inv, accelerator, cfg, tracker, parent, trial_number, seed, plan)
        release(accelerator)


def to_refit(inv, tracker, trial_number: int, seed: int) -> tuple[str, int] | None:
    """(final run id, epochs) of the seed's newest finished final run, unless it failed or a
    finished refit of that run exists."""
    final = newest_final(tracker, inv, trial_number, seed)
    if final is None:
        return None
    if final.run_id in refit_runs(inv, tracker, trial_number):
        tqdm.write(f"seed {seed}: already refitted for trial {trial_number}, skipped")
        return None
    return final.run_id, int(final.metrics["best_epoch"])


def one_refit(inv, accelerator, cfg, tracker, parent, trial_number, seed, plan) -> None:
    """The seed's settings on training + validation for ``epochs``, the last one kept."""
    main = accelerator.is_main_process
    final_run, epochs = plan
    ws = inv.seed_workspace(seed)
    refit_cfg = inv.seed_config(cfg, seed).replace(phase="refit", epochs=epochs)
    tags = {
        "lipo.best_trial": trial_number,
        "optuna.trial_number": trial_number,
        schema.REFIT_OF: final_run,
        **inv.seed_tags(ws),
    }
    root = broadcast(
        accelerator, inv.final_state_root(trial_number, seed, "refit") if main else None
    )
    name = f"final seed {seed} refit"
    refit_ws = refit_workspace(ws)
    done = train_and_test(inv, accelerator, refit_cfg, refit_ws, tracker, parent, name, tags, root)
    if main and done is not None:
        molecules = len(refit_ws.split.train)
        tqdm.write(
            f"seed {seed}: refitted on {molecules} molecules for {epochs} epochs, "
            f"test/mse {done[1]['test/mse']:.4f}"
        )
