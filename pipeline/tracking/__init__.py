"""MLflow tracking and registry: the only package that imports :mod:`mlflow`.

=================  ==========================================================================
``store``          tracking URI, reachability check, MLflow retry/telemetry environment
``model_uri``      registry names (``loyalty-<target>``), aliases, ``models:/`` URIs
``run_data``       what a run records: its name, params, metrics, checksums, git and DVC origin
``runs``           logging a training run (and registering it), attaching the report
``promotion``      the rule that moves ``champion``, and what a promotion records
``registry``       moving aliases, promoting by hand, loading and resolving registered versions
``pyfunc``         the logged pyfunc and its signature
``pyfunc_entry``   the file MLflow runs to declare the pyfunc ("models from code")
=================  ==========================================================================

``store``, ``model_uri``, ``run_data`` and ``promotion`` do not import MLflow. The names below
are exported lazily (PEP 562), so that importing this package, or one of those modules, does not
import MLflow (no work at import); ``from pipeline.tracking import log_training`` loads ``runs``
then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names as _EXPORTS, for mypy and readers
    from pipeline.tracking.model_uri import CHALLENGER as CHALLENGER
    from pipeline.tracking.model_uri import CHAMPION as CHAMPION
    from pipeline.tracking.model_uri import parse_model_uri as parse_model_uri
    from pipeline.tracking.model_uri import registered_model_name as registered_model_name
    from pipeline.tracking.pyfunc import PYFUNC_ENTRY as PYFUNC_ENTRY
    from pipeline.tracking.pyfunc import LoyaltyPyfunc as LoyaltyPyfunc
    from pipeline.tracking.pyfunc import set_pyfunc_model as set_pyfunc_model
    from pipeline.tracking.pyfunc import signature as signature
    from pipeline.tracking.registry import Promotion as Promotion
    from pipeline.tracking.registry import ResolvedModel as ResolvedModel
    from pipeline.tracking.registry import load_registered as load_registered
    from pipeline.tracking.registry import load_registered_predictor as load_registered_predictor
    from pipeline.tracking.registry import promote as promote
    from pipeline.tracking.registry import resolve_model as resolve_model
    from pipeline.tracking.run_data import data_checksums as data_checksums
    from pipeline.tracking.run_data import dvc_context as dvc_context
    from pipeline.tracking.run_data import flatten as flatten
    from pipeline.tracking.run_data import git_state as git_state
    from pipeline.tracking.run_data import input_example as input_example
    from pipeline.tracking.run_data import numeric_metrics as numeric_metrics
    from pipeline.tracking.run_data import run_name as run_name
    from pipeline.tracking.runs import log_report as log_report
    from pipeline.tracking.runs import log_training as log_training
    from pipeline.tracking.runs import run_tags as run_tags
    from pipeline.tracking.store import check_reachable as check_reachable
    from pipeline.tracking.store import resolve_tracking_uri as resolve_tracking_uri

# Public name -> the submodule that defines it (imported on first access).
_EXPORTS = {
    "CHALLENGER": "model_uri",
    "CHAMPION": "model_uri",
    "parse_model_uri": "model_uri",
    "registered_model_name": "model_uri",
    "PYFUNC_ENTRY": "pyfunc",
    "LoyaltyPyfunc": "pyfunc",
    "set_pyfunc_model": "pyfunc",
    "signature": "pyfunc",
    "Promotion": "registry",
    "ResolvedModel": "registry",
    "load_registered": "registry",
    "load_registered_predictor": "registry",
    "promote": "registry",
    "resolve_model": "registry",
    "data_checksums": "run_data",
    "flatten": "run_data",
    "dvc_context": "run_data",
    "git_state": "run_data",
    "input_example": "run_data",
    "numeric_metrics": "run_data",
    "run_name": "run_data",
    "log_report": "runs",
    "log_training": "runs",
    "run_tags": "runs",
    "check_reachable": "store",
    "resolve_tracking_uri": "store",
}


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
