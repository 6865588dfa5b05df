"""Final runs as every reader counts them: finished, of a best trial, each seed once (its
newest run: two launches may both have finished the same seed). The final phase's summary,
the exported models, ``predict --final`` and the report all go through here."""

from __future__ import annotations

from lipo.tracking import schema


def final_query(
    optuna_study: str,
    trial_number: int,
    seed: int | None = None,
    status: str = "FINISHED",
    phase: str = "final",
) -> str:
    """MLflow filter for the final runs of one best trial (and one seed), finished unless
    ``status`` says otherwise; ``phase="refit"``: their refits on training + validation
    (``lipo.final.refit``), which no reader counts as final runs."""
    seed_clause = f"AND tags.`{schema.SEED}` = '{seed}' " if seed is not None else ""
    return (
        f"tags.`{schema.PHASE}` = '{phase}' AND tags.`{schema.OPTUNA_STUDY}` = '{optuna_study}' "
        f"AND tags.`{schema.BEST_TRIAL}` = '{trial_number}' {seed_clause}"
        f"AND attributes.status = '{status}'"
    )


def seed_of(run) -> int:
    return int(run.tags.get(schema.SEED, run.params.get("seed", 0)))


def newest_per_seed(runs: list) -> list:
    """One run per seed, the newest, in seed order."""
    by_seed = {}
    for run in sorted(runs, key=lambda r: r.start_time):
        by_seed[seed_of(run)] = run
    return [by_seed[s] for s in sorted(by_seed)]


def final_runs(runs: list) -> list:
    """Finished final runs that reached their test metrics."""
    return [
        r
        for r in runs
        if r.tags.get(schema.PHASE) == "final"
        and r.status == "FINISHED"
        and schema.BEST_TRIAL in r.tags
        and "test/mse" in r.metrics
    ]


def newest_group(finals: list) -> list:
    """The final runs of the newest (optuna study, best trial), one per seed."""
    groups: dict[tuple, list] = {}
    for run in finals:
        key = (run.tags.get(schema.OPTUNA_STUDY), run.tags[schema.BEST_TRIAL])
        groups.setdefault(key, []).append(run)
    newest = max(groups.values(), key=lambda g: max(r.start_time for r in g))
    return newest_per_seed(newest)


def newest_refits(runs: list) -> dict[str, str]:
    """The newest finished refit (phase "refit", ``lipo.final.refit``) of each final run among
    ``runs``: its run id, by the id of the final run it refits."""
    refits = {}
    for run in sorted(runs, key=lambda r: r.start_time):
        if run.tags.get(schema.PHASE) == "refit" and run.status == "FINISHED":
            refits[run.tags.get(schema.REFIT_OF, "")] = run.run_id
    return refits
