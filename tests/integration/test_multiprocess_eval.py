"""Evaluation under two processes scores every test molecule exactly once, with the metrics
one process gets from the same weights."""

import numpy as np
import pandas as pd
import pytest

from tests.integration.helpers import launch, trial_runs

pytestmark = pytest.mark.slow
TINY = ("--study", "baseline", "--backbone", "tiny", "--epochs", "1")
TORCHRUN = ("torchrun", "--nproc_per_node", "2", "--master_port", "29523")


def test_final_phase_under_torchrun_scores_each_test_molecule_once(tmp_path):
    from lipo.inference.predict import predict_logd
    from lipo.metrics import regression_metrics
    from lipo.models.checkpoint import load_checkpoint
    from lipo.tracking.store import download_artifacts
    from lipo.training.trial_run import Workspace

    launch(tmp_path, *TINY, "--trials", "1", prefix=TORCHRUN)
    launch(tmp_path, *TINY, "--final", "--seeds", "0", prefix=TORCHRUN)
    [run] = trial_runs(tmp_path, "baseline", phase="final")
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    table = pd.read_csv(
        download_artifacts(uri, run.info.run_id, "predictions_test.csv", tmp_path / "artifacts")
    )
    ws = Workspace.load(None, "random", 0, strict=False)
    expected_rows = ws.mols.rows[np.asarray(ws.split.test)]
    assert len(table) == len(expected_rows) == 420
    assert sorted(table["row"]) == sorted(expected_rows.tolist())  # each exactly once

    # The same weights in one process, without Accelerate: the same test metrics.
    folder = download_artifacts(uri, run.info.run_id, "checkpoint", tmp_path / "artifacts")
    model, tokenizer, cfg = load_checkpoint(folder)
    test = np.asarray(ws.split.test)
    pred = predict_logd(
        model, tokenizer, cfg, [ws.mols.smiles[p] for p in test], cfg.eval_batch_size
    )
    single = regression_metrics(ws.mols.y[test], pred, "test")
    logged = {k: run.data.metrics[k] for k in single}
    assert logged == pytest.approx(single, abs=1e-6)
    by_row = table.set_index("row")["y_pred"]
    assert by_row[ws.mols.rows[test]].to_numpy() == pytest.approx(pred, abs=1e-5)
