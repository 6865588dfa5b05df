"""One fit of the final phase as an MLflow run: trained (resumable from its saved state),
tested once, recorded. A failure is recorded as failed and the phase goes on; Ctrl-C leaves
the state for a re-run to resume."""

from __future__ import annotations

from tqdm.auto import tqdm

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
