"""Every MLflow tag and metric name that lipo writes, in one place. Stored runs, the report,
outside dashboards and queries rely on these strings: a test holds this module against
ARCHITECTURE.md's contract, and another fails on a tag literal in the code that is not here,
so a rename cannot slip through unnoticed."""

from __future__ import annotations

# Where runs go unless --tracking-uri says otherwise (artifacts beside it, under mlruns/)
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"

# Tags on every trial and final-seed run
STUDY = "lipo.study"
STRATEGY = "lipo.strategy"
ADAPTER = "lipo.adapter"
BACKBONE = "lipo.backbone"
PHASE = "lipo.phase"  # "search" | "final" | "refit" (and "report" on the report's own run)
SEED = "lipo.seed"
SPLIT = "lipo.split"
SPLIT_SHA256 = "lipo.split_sha256"
OPTUNA_STUDY = "lipo.optuna_study"
TRIAL_NUMBER = "optuna.trial_number"
PRECISION = "lipo.precision"
RUN_TAGS = (
    STUDY,
    STRATEGY,
    ADAPTER,
    BACKBONE,
    PHASE,
    SEED,
    SPLIT,
    SPLIT_SHA256,
    OPTUNA_STUDY,
    TRIAL_NUMBER,
    PRECISION,
)

# Final runs also carry
CONTROL = "lipo.control"  # the control's name, on a control's final runs only
BEST_TRIAL = "lipo.best_trial"
MODEL = "lipo.model"  # the artifact path of the run's pyfunc model
SPLIT_PER_SEED = "lipo.split_per_seed"  # "1" on --split-per-seed runs (their own random split)
REFIT_OF = "lipo.refit_of"  # on a refit run (phase "refit"): the final run it refits
FINAL_TAGS = (CONTROL, BEST_TRIAL, MODEL, SPLIT_PER_SEED, REFIT_OF)

# How a run ended
STATE = "lipo.state"  # COMPLETE | PRUNED | FAIL
ERROR = "lipo.error"  # the reason of a failed run (or a lost worker, on the parent)
END_TAGS = (STATE, ERROR)

# What a strategy states about its runs
INFLUENCE_HESSIAN = "lipo.influence.hessian"
STRATEGY_TAGS = (INFLUENCE_HESSIAN,)

TAGS = RUN_TAGS + FINAL_TAGS + END_TAGS + STRATEGY_TAGS

# Names runs were once written under, read as today's
RENAMED = {"lipo.strategies.influence_math.hessian": INFLUENCE_HESSIAN}

# Metrics: per epoch (step = epoch), the final phase's test metrics, the model's size and
# where a completed run's time went
REGRESSION = ("mse", "rmse", "mae", "r2")
# train/aux_loss: only with aux_descriptors > 0 (the descriptor loss; train/loss then adds it)
EPOCH_METRICS = ("train/loss", "train/aux_loss", *(f"val/{m}" for m in REGRESSION))
STEP_METRICS = ("train/step_loss", "train/lr")  # every few optimiser steps (step = that step)
TEST_METRICS = tuple(f"test/{m}" for m in REGRESSION)
# On a completed run: the best epoch's validation metrics, the epoch whose weights it keeps
# (the per-epoch val/mse's latest value is the last epoch's, which early stopping passed over)
BEST_METRICS = tuple(f"best/val_{m}" for m in REGRESSION)
SIZE_METRICS = ("trainable_params", "total_params")
# On a final phase's parent run: what its ensemble serves (the seeds' mean blended with the
# descriptor partner, lipo.inference.partner), beside the seeds' mean and the partner alone
SERVED_METRICS = (
    *(f"served/test_{m}" for m in REGRESSION),
    "served/val_mse",
    "served/ensemble_test_mse",
    "served/ensemble_val_mse",
    "served/partner_test_mse",
    "served/partner_val_mse",
    "served/partner_weight",
    "served/refit_members",
    "served/unrefitted_test_mse",
)
TIME_METRICS = ("wall_time_s", "time/train_s", "time/eval_s", "time/save_s")
# What strategies and masked-LM training log beside them (step = epoch, round or MLM step)
STRATEGY_METRICS = (
    "curriculum/pool_size",
    "curriculum/pool_fraction",
    "active/labelled",
    "active/val_mse",
    "influence/selected",
    "influence/damping",
    "influence/ihvp_norm",
    "influence/cg_iterations",
    "influence/solve_residual",
    "influence/solve_time_s",
    "influence/lowest_eigenvalue",
    "influence/lissa_tail_drift",
    "mlm/loss",
    "mlm/accuracy",
    "mlm/descriptor_loss",
    "heldout/mlm_loss",
    "heldout/accuracy",
    "heldout/descriptor_mse",
)
METRICS = (
    EPOCH_METRICS
    + STEP_METRICS
    + TEST_METRICS
    + BEST_METRICS
    + SIZE_METRICS
    + TIME_METRICS
    + SERVED_METRICS
)
METRIC_NAMESPACES = {name.split("/")[0] for name in METRICS + STRATEGY_METRICS if "/" in name}

# Optuna user attributes (not MLflow tags), read by lipo/search/ alone
OPTUNA_ATTRS = (
    "lipo.origin",
    "lipo.worker",
    "lipo.warm_start",
    "lipo.first_trial",  # trial 0 of a new study trained the study file's FIRST_TRIAL
    "lipo.claim",
    "lipo.lease_until",
)  # the last two: final seeds' claims


def current_names(tags: dict) -> dict:
    """``tags`` with any renamed tag under today's name (today's value wins)."""
    old = {RENAMED[k]: v for k, v in tags.items() if k in RENAMED}
    return {**old, **{k: v for k, v in tags.items() if k not in RENAMED}}
