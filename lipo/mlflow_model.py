"""A run's checkpoint as an MLflow pyfunc model: ``mlflow.pyfunc.load_model`` and
``mlflow models serve`` predict logD from a DataFrame with a ``smiles`` column.

This module imports mlflow although tracking.py is otherwise the only one that does: the
pyfunc loader imports the model's class by its module, in whatever process loads or serves the
model, and that process needs the predicting code (checkpoint, predict) without the tracking
code (Tracker, the study's stores). The model carries the ``lipo`` package (``code_paths``), so
it loads where lipo is not installed; its requirements are pinned to the versions it ran with.
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
from mlflow.types import ColSpec, Schema

PACKAGE = Path(__file__).resolve().parent
# What loading and predicting import, pinned (mlflow records them in requirements.txt).
REQUIREMENTS = ("mlflow", "torch", "transformers", "tokenizers", "peft", "accelerate",
                "safetensors", "rdkit", "numpy", "pandas", "scipy")
SIGNATURE = ModelSignature(inputs=Schema([ColSpec("string", "smiles")]),
                           outputs=Schema([ColSpec("double", "logd_pred"),
                                           ColSpec("string", "error")]))


class LogDModel(mlflow.pyfunc.PythonModel):
    """logD for each row of a DataFrame's ``smiles`` column; a row RDKit cannot parse gets a
    missing ``logd_pred`` and the reason in ``error`` (the other rows are predicted)."""

    def load_context(self, context) -> None:
        """On the GPU when the loading process has one; ``model_config={"device": "cpu"}``
        (``mlflow.pyfunc.load_model``) chooses, as ``predict --device`` does."""
        from lipo.checkpoint import load_checkpoint
        from lipo.devices import inference_device
        self.model, self.tokenizer, self.cfg = load_checkpoint(
            Path(context.artifacts["checkpoint"]))
        config = getattr(context, "model_config", None) or {}
        self.model.to(inference_device(config.get("device", "auto")))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from lipo.errors import DataError
        from lipo.predict import predictions_table
        if "smiles" not in model_input.columns:
            raise DataError(f"the input needs a 'smiles' column (got {list(model_input.columns)})")
        raw = [s if isinstance(s, str) else "" for s in model_input["smiles"]]
        table = predictions_table(self.model, self.tokenizer, self.cfg, raw, 128)
        return table[["logd_pred", "error"]]


def pinned_requirements() -> list[str]:
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue  # not installed here, so not needed by what ran
    return pins


def save_pyfunc(path: Path, checkpoint: Path, example_smiles: list[str],
                extra_files: list[Path] = ()) -> Path:
    """Write the pyfunc model folder at ``path`` (which must not exist yet)."""
    # MLflow warns that the model object is cloudpickled: LogDModel is pickled by reference to
    # lipo.mlflow_model, which the model ships in code_paths; nothing else is in the pickle.
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        code = shutil.copytree(PACKAGE, Path(tmp) / "lipo",
                               ignore=shutil.ignore_patterns("__pycache__"))
        mlflow.pyfunc.save_model(
            str(path), python_model=LogDModel(), artifacts={"checkpoint": str(checkpoint)},
            code_paths=[str(code)], signature=SIGNATURE,
            input_example=pd.DataFrame({"smiles": example_smiles}),
            pip_requirements=pinned_requirements())
    for extra in extra_files:
        (path / extra.name).write_bytes(extra.read_bytes())
    return path
