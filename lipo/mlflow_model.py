"""A run's checkpoint as an MLflow pyfunc model: ``mlflow.pyfunc.load_model`` and
``mlflow models serve`` predict logD from a DataFrame with a ``smiles`` column.

This module imports mlflow although tracking.py is otherwise the only one that does: the
pyfunc loader imports the model's class by its module, in whatever process loads or serves the
model, and that process needs the predicting code (checkpoint, predict) without the tracking
code (Tracker, the study's stores). The model carries the ``lipo`` package (``code_paths``), so
it loads where lipo is not installed; its requirements are the distributions that code imports,
pinned to the versions it ran with without their local labels (``torch==2.13.0``, not
``2.13.0+cpu``: a local build resolves nowhere else).

Two models: ``LogDModel``, one final run (``runs:/RUN/model``; stored models unpickle it by
this name), and ``EnsembleModel``, every seed of a final phase with its conformal interval and
similarity to the training set (``lipo.inference.bundle``), the one ``--register`` registers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from lipo.inference.conformal import DEFAULT_COVERAGE

PACKAGE = Path(__file__).resolve().parent
# The distributions whose modules the serving code (this module, lipo.models.checkpoint,
# lipo.inference.predict, lipo.inference and what they import) imports;
# tests/unit/test_model_export_parts.py checks the list against a process that loads that
# code. MLflow adds its own needs (cloudpickle).
REQUIREMENTS = (
    "mlflow",
    "torch",
    "transformers",
    "tokenizers",
    "huggingface_hub",
    "peft",
    "accelerate",
    "safetensors",
    "rdkit",
    "lightgbm",
    "scikit-learn",  # the partner's kernel model is fitted with it (bundle.fit_partner)
    "joblib",
    "numpy",
    "pandas",
    "tqdm",
)
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "smiles")]),
    outputs=Schema([ColSpec("double", "logd_pred"), ColSpec("string", "error")]),
)
ENSEMBLE_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "smiles")]),
    outputs=Schema(
        [
            ColSpec("double", c)
            for c in ("logd_pred", "logd_std", "logd_lo", "logd_hi", "similarity")
        ]
        + [ColSpec("string", "error")]
    ),
    params=ParamSchema([ParamSpec("coverage", "double", DEFAULT_COVERAGE)]),
)


class LogDModel(mlflow.pyfunc.PythonModel):
    """logD for each row of a DataFrame's ``smiles`` column; a row RDKit cannot parse gets a
    missing ``logd_pred`` and the reason in ``error`` (the other rows are predicted)."""

    def load_context(self, context) -> None:
        """On the GPU when the loading process has one; ``model_config={"device": "cpu"}``
        (``mlflow.pyfunc.load_model``) chooses, as ``predict --device`` does."""
        from lipo.models.checkpoint import load_checkpoint

        self.model, self.tokenizer, self.cfg = load_checkpoint(
            Path(context.artifacts["checkpoint"])
        )
        self.model.to(device_of(context))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from lipo.inference.predict import predictions_table

        table = predictions_table(self.model, self.tokenizer, self.cfg, smiles_of(model_input), 128)
        return table[["logd_pred", "error"]]


class EnsembleModel(mlflow.pyfunc.PythonModel):
    """Every seed of a final phase: per row of the ``smiles`` column ``logd_pred`` (mean),
    ``logd_std`` (spread across seeds), ``logd_lo``/``logd_hi`` (a conformal interval of the
    mean holding the true logD with probability ``coverage``, a param, 0.9 unless given),
    ``similarity`` (largest Tanimoto to a training molecule) and ``error``."""

    def load_context(self, context) -> None:
        """On the GPU when the loading process has one, as ``LogDModel``."""
        from lipo.inference.bundle import Bundle

        self.bundle = Bundle(Path(context.artifacts["ensemble"]), device_of(context))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from lipo.inference.bundle import COLUMNS

        coverage = (params or {}).get("coverage")
        table = self.bundle.table(
            smiles_of(model_input), 128, coverage=None if coverage is None else float(coverage)
        )
        return table[list(COLUMNS)]


def device_of(context):
    """``model_config={"device": "cpu"}`` (``mlflow.pyfunc.load_model``) chooses, as
    ``predict --device`` does; by default the GPU when the loading process has one."""
    from lipo.runtime.devices import inference_device

    config = getattr(context, "model_config", None) or {}
    return inference_device(config.get("device", "auto"))


def smiles_of(model_input: pd.DataFrame) -> list[str]:
    from lipo.errors import DataError

    if "smiles" not in model_input.columns:
        raise DataError(f"the input needs a 'smiles' column (got {list(model_input.columns)})")
    return [s if isinstance(s, str) else "" for s in model_input["smiles"]]


def pinned_requirements() -> list[str]:
    pins = []
    for name in REQUIREMENTS:
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # not installed here, so not needed by what ran
        pins.append(f"{name}=={installed.split('+')[0]}")  # 2.13.0+cpu -> 2.13.0
    return pins


def save_pyfunc(
    path: Path, checkpoint: Path, example_smiles: list[str], extra_files: list[Path] = ()
) -> Path:
    """Write one run's pyfunc model folder at ``path`` (which must not exist yet)."""
    return save(
        path, LogDModel(), {"checkpoint": str(checkpoint)}, SIGNATURE, example_smiles, extra_files
    )


def save_ensemble_pyfunc(
    path: Path, bundle: Path, example_smiles: list[str], extra_files: list[Path] = ()
) -> Path:
    """The ensemble's pyfunc model folder, from a ``lipo.inference.bundle`` folder."""
    return save(
        path,
        EnsembleModel(),
        {"ensemble": str(bundle)},
        ENSEMBLE_SIGNATURE,
        example_smiles,
        extra_files,
    )


def save(
    path: Path,
    model,
    artifacts: dict,
    signature,
    example_smiles: list[str],
    extra_files: list[Path],
) -> Path:
    # MLflow warns that the model object is cloudpickled: the model class is pickled by
    # reference to lipo.mlflow_model, which the model ships in code_paths; nothing else is in
    # the pickle.
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        code = shutil.copytree(
            PACKAGE, Path(tmp) / "lipo", ignore=shutil.ignore_patterns("__pycache__")
        )
        mlflow.pyfunc.save_model(
            str(path),
            python_model=model,
            artifacts=artifacts,
            code_paths=[str(code)],
            signature=signature,
            input_example=pd.DataFrame({"smiles": example_smiles}),
            pip_requirements=pinned_requirements(),
        )
    for extra in extra_files:
        (path / extra.name).write_bytes(extra.read_bytes())
    return path
