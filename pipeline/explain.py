"""SHAP contributions as data: exact TreeSHAP per customer, additivity, concept groups.

Contributions are LightGBM's ``pred_contrib`` output: exact path-dependent TreeSHAP in
log-odds, identical to ``shap.TreeExplainer(booster).shap_values`` and much faster (see
``docs/explanations.md``). They stay numbers here; words are made at the edge
(:mod:`pipeline.reasons`, :mod:`pipeline.report`), and who gets reason codes is the scorer's
rule (:func:`pipeline.scoring.reasons_of`).

The SHAP table has one row per explained customer: ``customer_id``, ``cutoff``, one column
per model feature (same names and order as the model), and ``base_value``, so that for
every row ``base_value + sum(features) == raw margin``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pipeline.errors import DataError, ModelError
from pipeline.reasons import FeatureDictionary
from pipeline.scoring import reasons_of
from pipeline.targets import Target

logger = logging.getLogger(__name__)

KEYS = ("customer_id", "cutoff")
BASE = "base_value"
ADDITIVITY_TOL = 1e-6
OTHER_CONCEPT = "other"


class ContributionModel(Protocol):
    """What explain needs from a model: raw margins and per-feature contributions."""

    def raw_margin(self, frame: pd.DataFrame) -> Any:
        """Log-odds score of each row (before calibration)."""
        ...

    def contributions(self, frame: pd.DataFrame) -> Any:
        """TreeSHAP contributions, one column per feature plus the base value last."""
        ...


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int = 0) -> pd.DataFrame:
    """Return at most ``max_rows`` rows, chosen by a hash of the keys (same rows every run).

    Hashing the keys rather than drawing with a random generator makes the choice independent
    of row order and of the other rows, so a customer explained today is explained tomorrow.
    """
    if max_rows < 1:
        raise ValueError("max_rows must be >= 1")
    if len(frame) <= max_rows:
        return frame
    keys = [k for k in KEYS if k in frame.columns] or None
    hashed = pd.util.hash_pandas_object(
        frame[keys] if keys else frame.index.to_series(), index=False, hash_key=f"{seed:016d}"
    ).to_numpy()
    chosen = np.sort(np.argsort(hashed, kind="stable")[:max_rows])
    return frame.iloc[chosen]


def shap_table(
    keys: pd.DataFrame, contributions: Any, feature_names: Sequence[str]
) -> pd.DataFrame:
    """Build the SHAP table from a ``(n, n_features + 1)`` contribution matrix (base last)."""
    matrix = np.asarray(contributions, dtype="float64")
    names = list(feature_names)
    if matrix.ndim != 2 or matrix.shape != (len(keys), len(names) + 1):
        raise ModelError(
            f"contributions have shape {matrix.shape}; expected ({len(keys)}, {len(names) + 1})"
            " (one column per feature plus the base value)"
        )
    clash = set(names) & {*KEYS, BASE}
    if clash:
        raise ModelError(f"feature names clash with SHAP table columns: {sorted(clash)}")
    values = pd.DataFrame(matrix[:, :-1], columns=names, index=keys.index)
    out = pd.concat([keys.loc[:, [k for k in KEYS if k in keys.columns]], values], axis=1)
    out[BASE] = matrix[:, -1]
    return out.reset_index(drop=True)


def feature_columns(table: pd.DataFrame) -> list[str]:
    """Feature columns of a SHAP table, in model order."""
    return [c for c in table.columns if c not in (*KEYS, BASE)]


def additivity_error(table: pd.DataFrame, raw_margin: Any) -> float:
    """Max absolute difference between ``base_value + sum(contributions)`` and the raw margin."""
    margin = np.asarray(raw_margin, dtype="float64").reshape(-1)
    if len(margin) != len(table):
        raise ModelError(f"{len(margin)} raw margins for {len(table)} SHAP rows")
    if not len(table):
        return 0.0
    total = table[feature_columns(table)].to_numpy().sum(axis=1) + table[BASE].to_numpy()
    return float(np.max(np.abs(total - margin)))


def check_additivity(table: pd.DataFrame, raw_margin: Any, tol: float = ADDITIVITY_TOL) -> float:
    """Raise :class:`ModelError` unless contributions add up to the raw margin within ``tol``."""
    error = additivity_error(table, raw_margin)
    if not error <= tol:
        raise ModelError(f"SHAP additivity broken: max abs error {error:.3g} > {tol:g}")
    return error


def explain_frame(
    model: ContributionModel,
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    max_rows: int,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Explain a snapshot: sample rows, compute TreeSHAP, assert additivity.

    Returns the SHAP table and a small summary (rows in, rows explained, additivity error).
    """
    missing = [name for name in (*KEYS, *feature_names) if name not in frame.columns]
    if missing:
        raise DataError(f"columns missing from the snapshot to explain: {missing}")
    if frame.empty:
        raise DataError("no rows to explain")
    rows = sample_rows(frame, max_rows, seed)
    x = rows.loc[:, list(feature_names)]
    table = shap_table(rows.loc[:, list(KEYS)], model.contributions(x), feature_names)
    error = check_additivity(table, model.raw_margin(x))
    logger.info("explained %d of %d rows; additivity error %.2g", len(rows), len(frame), error)
    return table, {
        "rows_in": int(len(frame)),
        "rows_explained": int(len(rows)),
        "additivity_max_abs_error": error,
        "base_value": float(table[BASE].iloc[0]),
    }


def feature_importance(table: pd.DataFrame, concepts: Mapping[str, str]) -> pd.DataFrame:
    """Mean |SHAP| and mean signed SHAP per feature, strongest first."""
    names = feature_columns(table)
    values = table[names]
    out = pd.DataFrame(
        {
            "feature": names,
            "concept": [concepts.get(n, OTHER_CONCEPT) for n in names],
            "mean_abs_shap": values.abs().mean().to_numpy(),
            "mean_shap": values.mean().to_numpy(),
        }
    )
    return _ranked(out, "feature")


def concept_contributions(table: pd.DataFrame, concepts: Mapping[str, str]) -> pd.DataFrame:
    """Per-row contributions summed per concept group (columns = concepts; keys kept)."""
    names = feature_columns(table)
    groups = pd.Series({n: concepts.get(n, OTHER_CONCEPT) for n in names})
    summed = table[names].T.groupby(groups.loc[names].to_numpy(), sort=True).sum().T
    return pd.concat([table[[k for k in KEYS if k in table.columns]], summed], axis=1)


def concept_importance(table: pd.DataFrame, concepts: Mapping[str, str]) -> pd.DataFrame:
    """Mean |summed SHAP| and mean signed SHAP per concept group, strongest first.

    Contributions are summed per customer within a concept before taking the absolute value,
    so two features of one concept that cancel out for a customer count as no effect.
    """
    per_row = concept_contributions(table, concepts).drop(columns=list(KEYS), errors="ignore")
    names = feature_columns(table)
    counts = pd.Series([concepts.get(n, OTHER_CONCEPT) for n in names]).value_counts()
    out = pd.DataFrame(
        {
            "concept": per_row.columns,
            "mean_abs_shap": per_row.abs().mean().to_numpy(),
            "mean_shap": per_row.mean().to_numpy(),
            "n_features": [int(counts.get(c, 0)) for c in per_row.columns],
        }
    )
    return _ranked(out, "concept")


def _ranked(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    out = frame.sort_values(["mean_abs_shap", name], ascending=[False, True], kind="stable")
    out = out.reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


# --- the explain stage -------------------------------------------------------------------------


class StageModel(ContributionModel, Protocol):
    """A loaded predictor as the explain stage uses it."""

    feature_names: list[str]
    features: dict[str, Any]

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        """Calibrated probability of the target."""
        ...

    def derive(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` plus the features the model derives from the others (BTYD)."""
        ...


def explain_target(
    model: StageModel,
    panel: pd.DataFrame,
    dictionary: FeatureDictionary,
    target: Target,
    max_rows: int,
    top_k: int,
    top_share: float,
) -> dict[str, Any]:
    """Everything the explain stage writes for one target, as frames and a summary dict.

    ``panel`` is the feature panel: its ``test`` rows (the model's reference population) are
    explained. Reason codes follow the scorer's rule (:func:`pipeline.scoring.reasons_of`):
    the explained customers at or above the model's cut of ``top_share`` get them, in the same
    words, so with every test row explained exactly ``round(top_share x rows)`` do. A reason
    is a concept that raises the target's risk (:attr:`pipeline.targets.Target.risk_direction`).
    """
    if "split" not in panel.columns:
        raise DataError("feature panel has no 'split' column")
    test = panel.loc[panel["split"] == "test"]
    if test.empty:
        raise DataError("feature panel has no test rows to explain")
    names = list(model.feature_names)
    direction = target.risk_direction
    rows = model.derive(sample_rows(test, max_rows).reset_index(drop=True))
    table, summary = explain_frame(model, rows, names, max_rows)
    summary["rows_in"] = int(len(test))
    probability = model.predict_proba(rows)
    reasons = reasons_of(rows, probability, model, target, top_share, top_k, dictionary, True)
    summary["rows_with_reasons"] = int(reasons["reason_1"].notna().sum())
    summary["reasons_top_share"] = top_share
    concepts = dictionary.concepts(names)
    return {
        "shap": table,
        "reasons": pd.concat([table[list(KEYS)], reasons], axis=1),
        "concepts": concept_importance(table, concepts),
        "features": feature_importance(table, concepts),
        "summary": {**summary, "target": target.name, "risk_direction": direction},
    }
