"""One fit of the final phase as an MLflow run: trained (resumable from its saved state),
tested once, recorded. A failure is recorded as failed and the phase goes on; Ctrl-C leaves
the state for a re-run to resume."""

from __future__ import annotations

from tqdm.auto import tqdm

from lipo.final.export import same_control
from lipo.tracking.finals import final_query
from lipo.tracking.recorder import EpochReporter, Recorder, describe_error
from lipo.training.trial_run import TrialRun, Workspace, train_trial


def train_and_test(inv, accelerator, cfg, ws: Workspace, tracker, parent, name, tags, state_root):
    """Every rank calls it; returns (FitResult, test metrics), or None where the fit failed.
    The run logs its test predictions and, in phase ``final``, the kept epoch's validation
    predictions (a refit's validation molecules are among its training ones: none)."""
    main = accelerator.is_main_process
    recorder = Recorder(inv, tracker, parent, cfg, name, tags, split=ws.split) if main else None
    reporter = EpochReporter(accelerator, None, recorder.log if main else None)
    run = TrialRun(
        cfg,
        ws,
        accelerator,
        reporter,
        recorder.log if main else None,
        state_root=state_root,
        save_every=inv.save_every,
    )
    try:
        result = train_trial(run)
    except KeyboardInterrupt:
        if main:  # a re-run resumes this fit from its saved state; FINISHED ones are skipped
            recorder.end("FAIL", "interrupted by the user; a re-run resumes this fit", run)
        raise
    except Exception as exc:
        if main:
            recorder.end("FAIL", describe_error(exc), run)
            tqdm.write(f"{name} failed: {describe_error(exc).splitlines()[0]}")
        run.discard_state()
        return None
    tables = {"predictions_val": run.val_table(result)} if cfg.phase == "final" else {}
    test_metrics, test_table = run.evaluate(result.model, "test")  # the only test evaluation
    if main:
        tables = {**tables, "predictions_test": test_table, **run.tables}
        recorder.complete(run, result, extra_metrics=test_metrics, tables=tables)
    run.discard_state()  # recorded: nothing left to resume
    return result, test_metrics


def seed_runs(
    tracker, inv, trial_number: int, seed: int, status: str = "FINISHED", phase: str = "final"
) -> list:
    """The seed's runs of this best trial and control in ``phase`` (its final runs, or their
    refits), in MLflow state ``status``."""
    query = final_query(inv.optuna_name, trial_number, seed, status, phase)
    return same_control(inv, tracker.runs(query))


def fail_stale_runs(tracker, inv, trial_number: int, seed: int, phase: str = "final") -> None:
    """This launch holds the seed's claim (for ``phase``), so a run of the seed still RUNNING
    is one whose launcher died without ending it (killed hard, out of memory, its machine
    lost): it is marked FAILED with why, as a search trial's lost run is, not left RUNNING in
    the UI."""
    redo = "refits this seed" if phase == "refit" else "trains this seed again"
    for run in seed_runs(tracker, inv, trial_number, seed, status="RUNNING", phase=phase):
        tracker.fail_lost_run(
            run.run_id,
            f"its launcher stopped without ending it (killed or lost); a later launch {redo}",
        )
        tqdm.write(f"seed {seed}: an earlier launch's run {run.run_id} was left running, failed")
