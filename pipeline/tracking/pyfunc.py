"""The logged model: a pyfunc "from code" that rebuilds the predictor from its three files.

Its artefacts are ``model.txt``, ``calibration.json`` and ``features.json``, so loading it never
unpickles anything; :data:`PYFUNC_ENTRY` is the file MLflow runs to declare it. Its pip
requirements (:func:`requirements`) name this package itself, which defines the pyfunc.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from pipeline.modeling.artifacts import (
    BUY_MODEL_FILE,
    CALIBRATION_FILE,
    FEATURES_FILE,
    MODEL_FILE,
    load_predictor_files,
)

PYFUNC_ENTRY = Path(__file__).parent / "pyfunc_entry.py"
#: The distribution that holds :mod:`pipeline` (``pyproject.toml``).
PACKAGE = "loyalty-pipeline"
#: What the pyfunc imports when it loads, besides this package, pinned to the versions logged.
_LIBRARIES = ("mlflow", "lightgbm", "pandas", "numpy", "scikit-learn")


def requirements() -> list[str]:
    """Pip requirements of the logged model: this package and the libraries, at their versions.

    ``loyalty-pipeline`` is pinned to the installed version; from a source tree that is not
    installed (``PYTHONPATH``), it is named without one. It is not on a public index: serve with
    ``--env-manager local`` in an environment that has it installed (docs/modeling.md, "MLflow").
    """
    return [_pinned(PACKAGE, missing_ok=True), *(_pinned(name) for name in _LIBRARIES)]


def _pinned(distribution: str, missing_ok: bool = False) -> str:
    try:
        return f"{distribution}=={importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        if not missing_ok:
            raise
        return distribution


def signature(features: Mapping[str, Any]) -> ModelSignature:
    """Input: one column per feature; output: probability.

    Numeric features are ``double``. Categorical ones are ``any``: MLflow has no category type
    and refuses to cast a pandas ``category`` column to ``string``, while snapshot frames carry
    categories; the predictor itself maps values to the stored levels.
    """
    inputs = Schema(
        [
            ColSpec(AnyType() if f["dtype"] == "category" else "double", f["name"])
            for f in features["features"]
        ]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", output_name(features))]))


def output_name(features: Mapping[str, Any]) -> str:
    """Return the output column: ``probability``, or ``expected_value`` for a value model."""
    return "expected_value" if features.get("value_model") else "probability"


class LoyaltyPyfunc(PythonModel):
    """Pyfunc wrapper: calibrated probabilities (or expected value) from snapshot features."""

    def load_context(self, context: Any) -> None:
        """Rebuild the predictor from the logged LightGBM text and JSON files (no pickle)."""
        self._predictor = load_predictor_files(
            context.artifacts[MODEL_FILE],
            context.artifacts[CALIBRATION_FILE],
            context.artifacts[FEATURES_FILE],
            context.artifacts.get(BUY_MODEL_FILE),
        )
        self._output = output_name(self._predictor.features)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """One column, ``probability`` (or ``expected_value``), in input row order."""
        return pd.DataFrame({self._output: self._predictor.predict(model_input)})


def set_pyfunc_model() -> None:
    """Declare the pyfunc for MLflow's "models from code" (called by pyfunc_entry.py)."""
    mlflow.models.set_model(LoyaltyPyfunc())
