"""What a strategy may use of its trial: ``train(run: Trial) -> FitResult``.

``lipo.training.trial_run.TrialRun`` is the implementation; a strategy that reaches past this
surface (its workspace, its token table) breaks when those change, so a test holds every
strategy module to the names below."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.splits import Split


class Trial(Protocol):
    cfg: RunConfig  # the trial's settings; strategy knobs via lipo.strategies.knobs(KNOBS, cfg)
    split: Split  # positions of train / val / test; test is for the final phase alone
    accelerator: Accelerator  # rank checks, prepare, unwrap_model, wait_for_everyone
    log: Callable[[dict, int], None]  # metrics of the trial's run at a step (an epoch)

    @property
    def smiles(self) -> list[str]:
        """Every molecule of the data table, by position."""

    @property
    def rows(self) -> np.ndarray:
        """Each position's row number in the data file (as predictions tables name them)."""

    @property
    def train_smiles(self) -> list[str]:
        """The training split's SMILES."""

    @property
    def data_sha256(self) -> str:
        """Digest of the data table: part of any cache key of a strategy's computation."""

    def targets(self, positions) -> np.ndarray:
        """The logD labels at ``positions``."""

    def token_lengths(self, positions) -> np.ndarray:
        """Token counts of the molecules at ``positions`` (after ``new_model``)."""

    def new_model(self, backbone=None) -> Any:
        """A fresh model on the configured backbone (or on ``backbone``)."""

    def fit(
        self, model, train_positions, pools=None, report: bool = True, phase: str | None = None
    ) -> Any:
        """Train ``model``: a ``FitResult``; ``pools`` gives each epoch's positions."""

    def loader(self, positions, shuffle: bool) -> Any:
        """A length-bucketed loader over ``positions``."""

    def predict_positions(self, model, positions) -> tuple:
        """(predictions, labels, positions) from this process alone."""

    def extend(self, smiles: list[str], labels: np.ndarray) -> np.ndarray:
        """Add molecules from outside the table; returns their positions."""

    def extended(self, smiles: list[str], labels: np.ndarray) -> AbstractContextManager:
        """``extend`` for the duration of a block only."""

    def save_table(self, name: str, table: pd.DataFrame) -> None:
        """A strategy output, logged as CSV with the trial's artifacts."""

    def add_input(self, name: str, molecules: pd.DataFrame) -> None:
        """Molecules trained on beyond the split, logged as an MLflow dataset input."""
