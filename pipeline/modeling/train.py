"""Train, calibrate and evaluate one target's LightGBM model on the feature panel (pure core).

``train_target(panel, target, params, ...)`` splits the panel by its ``split`` column (the
features stage assigns whole cutoffs: train < valid < test in time), fits LightGBM with early
stopping on the validation cutoffs, fits the calibrator on validation margins only, and
evaluates the model and the baselines on the test cutoff only. It returns every artefact as
data (model text, JSON-ready dicts, frames); the CLI writes them and :mod:`pipeline.tracking`
logs them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.business import ReasonCuts, Reference
from pipeline.config import LabelsParams, TrainParams
from pipeline.errors import DataError, QualityGateError
from pipeline.features.catalog import Catalog
from pipeline.modeling import baselines, btyd_features, metrics, scoreboard, tuning
from pipeline.modeling.artifacts import Predictor, snapshot_contract
from pipeline.modeling.calibration import apply_calibration, fit_calibration
from pipeline.targets import Target, get_target, non_feature_columns

logger = logging.getLogger(__name__)

KEY_COLUMNS = ("customer_id", "cutoff", "split")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class TrainResult:
    """Everything one training run produces, as data."""

    target: str
    model_text: str
    calibration: dict[str, Any]
    features: dict[str, Any]
    metrics: dict[str, Any]
    curves: dict[str, pd.DataFrame]
    test_predictions: pd.DataFrame
    test_frame: pd.DataFrame
    lgbm_params: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    # Further model texts by artefact name (the P(buy) part of a two-part value model).
    extra_models: dict[str, str] = field(default_factory=dict)

    def predictor(self) -> Predictor:
        """Rebuild the predictor from the artefacts, exactly as a loader would."""
        return Predictor(
            self.model_text, self.calibration, self.features, self.extra_models.get("buy_model")
        )


def feature_columns(panel: pd.DataFrame, labels: LabelsParams) -> list[str]:
    """Feature columns: every panel column except keys, labels and splits, in panel order."""
    excluded = set(KEY_COLUMNS) | set(non_feature_columns(labels))
    return [c for c in panel.columns if c not in excluded]


def split_of(panel: pd.DataFrame, target: Target) -> str:
    """Return the split column ``target`` trains on: its own, else the shared ``split``.

    A panel without the target's own column (written by an older features stage, or built
    by hand) falls back to the shared split, planned on the longest binary window: the
    conservative choice, never a leak.
    """
    return target.split_column if target.split_column in panel.columns else "split"


def split_panel(panel: pd.DataFrame, label: str, column: str = "split") -> dict[str, pd.DataFrame]:
    """Split by ``column``; check each split is non-empty and ordered in time."""
    parts = {name: panel.loc[panel[column] == name] for name in SPLITS}
    for name, part in parts.items():
        if part.empty:
            raise DataError(
                f"no {name}ing rows in the feature panel"
                if name == "train"
                else f"no {name} rows in the feature panel"
            )
        if part[label].isna().any():
            raise DataError(f"{name} split has rows without a {label} label")
        if part[label].nunique() < 2:
            raise DataError(f"{name} split has a single {label} class; cannot train or evaluate")
    if parts["train"]["cutoff"].max() >= parts["valid"]["cutoff"].min() or (
        parts["valid"]["cutoff"].max() >= parts["test"]["cutoff"].min()
    ):
        raise DataError("splits overlap in time: need train cutoffs < valid < test")
    return parts


def lgbm_params(params: TrainParams, y_train: np.ndarray, **overrides: Any) -> dict[str, Any]:
    """LightGBM parameters: the ``train.lgbm`` section plus the determinism and imbalance rules."""
    out: dict[str, Any] = {**params.lgbm.model_dump(), **overrides}
    out.update(
        objective="binary",
        metric=["binary_logloss", "auc"],
        first_metric_only=True,
        deterministic=True,
        force_row_wise=True,
        num_threads=params.num_threads,
        seed=params.seed,
        bagging_seed=params.seed,
        feature_fraction_seed=params.seed,
        data_random_seed=params.seed,
        verbosity=-1,
    )
    if params.class_weight == "balanced":
        positives = float(np.sum(y_train))
        out["scale_pos_weight"] = (len(y_train) - positives) / positives
    return out


MONOTONE = {"higher_is_riskier": 1, "lower_is_riskier": -1}


def monotone_constraints(
    frame: pd.DataFrame, names: list[str], target: Target, catalog: Catalog
) -> list[int] | None:
    """LightGBM monotone constraints from the dictionary's ``direction`` (churn-risk sign).

    ``higher_is_riskier`` -> the target's risk direction (+1 churn, -1 repurchase); categorical
    and undirected features are free (0). None when no feature has a direction.
    """
    sign = int(target.risk_direction)
    out = [
        0
        if isinstance(frame[name].dtype, pd.CategoricalDtype)
        else sign * MONOTONE.get(catalog.direction_of(name) or "", 0)
        for name in names
    ]
    return out if any(out) else None


def _monotone_params(
    frame: pd.DataFrame,
    names: list[str],
    target: Target,
    params: TrainParams,
    catalog: Catalog,
) -> dict[str, Any]:
    constraints = monotone_constraints(frame, names, target, catalog)
    if not params.monotone or constraints is None:
        return {}
    return {"monotone_constraints": constraints}


def sample_weights(part: pd.DataFrame, rule: str) -> np.ndarray | None:
    """Row weights of a training split: None (equal), or 1 / the customer's rows in it.

    ``customer`` makes each customer weigh the same in total however many cutoffs they are
    in, scaled so that the weights add up to the rows (mean 1).
    """
    if rule == "none":
        return None
    counts = part.groupby("customer_id", sort=False, observed=True)["customer_id"].transform("size")
    weights = 1.0 / counts.to_numpy(dtype="float64")
    return weights * (len(weights) / weights.sum())


def fit_lgbm(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
    params: dict[str, Any],
    num_boost_round: int,
    early_stopping_rounds: int,
    weight: np.ndarray | None = None,
) -> lgb.Booster:
    """Fit a booster with early stopping on the validation set (first metric: log loss)."""
    train_set = lgb.Dataset(x_train, label=y_train, weight=weight, free_raw_data=True)
    valid_set = lgb.Dataset(x_valid, label=y_valid, reference=train_set)
    return lgb.train(
        params,
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
        ],
    )


def _feature_spec(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    spec: list[dict[str, Any]] = []
    for name in names:
        dtype = frame[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            spec.append(
                {
                    "name": name,
                    "dtype": "category",
                    "levels": [_plain(v) for v in dtype.categories.tolist()],
                }
            )
        else:
            spec.append({"name": name, "dtype": "float64", "levels": None})
    return spec


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _model_frame(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Training input: category columns kept, everything else float64 (nullable -> NaN)."""
    columns: dict[str, Any] = {}
    for name in names:
        series = frame[name]
        if isinstance(series.dtype, pd.CategoricalDtype):
            columns[name] = series
        elif pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            columns[name] = series.to_numpy(dtype="float64", na_value=np.nan)
        else:
            columns[name] = series.astype("category")
    return pd.DataFrame(columns, index=frame.index)


def _cutoffs(part: pd.DataFrame) -> list[str]:
    return [pd.Timestamp(c).isoformat() for c in sorted(part["cutoff"].unique())]


def model_input(
    panel: pd.DataFrame, labels: LabelsParams, keys: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Return the panel's ``keys`` plus its features in training dtypes, and the feature names.

    One-line errors for an empty panel, missing key columns or no feature column.
    """
    if panel.empty:
        raise DataError("no training rows: the feature panel is empty")
    missing = [c for c in keys if c not in panel.columns]
    if missing:
        raise DataError(f"feature panel lacks column(s): {', '.join(missing)}")
    names = feature_columns(panel, labels)
    if not names:
        raise DataError("the feature panel has no feature columns")
    return pd.concat([panel[keys], _model_frame(panel, names)], axis=1), names


def train_target(
    panel: pd.DataFrame,
    target_name: str,
    params: TrainParams,
    labels: LabelsParams,
    catalog: Catalog,
    summary: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fit, calibrate and evaluate the target's model and its baselines on ``panel``."""
    target = get_target(labels, target_name)
    label = target.label
    column = split_of(panel, target)
    frame, names = model_input(panel, labels, list(dict.fromkeys([*KEY_COLUMNS, column, label])))
    parts = split_panel(frame, label, column)
    derived = btyd_features_of(parts, target, params)
    if derived is not None:
        parts = {name: derived.add(part) for name, part in parts.items()}
        names = [*names, *btyd_features.NAMES]
    y = {name: part[label].to_numpy(dtype="int64") for name, part in parts.items()}

    trials: list[dict[str, Any]] = []
    overrides: dict[str, Any] = {}
    fixed = _monotone_params(parts["train"], names, target, params, catalog)
    weight = sample_weights(parts["train"], params.sample_weight)

    def fit(extra: dict[str, Any]) -> lgb.Booster:
        return fit_lgbm(
            parts["train"][names],
            y["train"],
            parts["valid"][names],
            y["valid"],
            lgbm_params(params, y["train"], **fixed, **extra),
            params.num_boost_round,
            params.early_stopping_rounds,
            weight,
        )

    if params.tuning.enabled:
        overrides, trials = tuning.tune(fit, params.tuning, params.seed)
    lgb_params = lgbm_params(params, y["train"], **fixed, **overrides)
    booster = fit(overrides)
    best_iteration = booster.best_iteration or booster.current_iteration()
    model_text = booster.model_to_string(num_iteration=best_iteration)

    features_meta = {
        "target": target.name,
        "rule": target.rule,
        "label": label,
        "features": _feature_spec(parts["train"], names),
        "cutoffs": {name: _cutoffs(part) for name, part in parts.items()},
        "horizon_days": target.horizon_days,
        **snapshot_contract(summary),
        "lightgbm_version": lgb.__version__,
        "best_iteration": int(best_iteration),
        "class_weight": params.class_weight,
        "monotone_constraints": lgb_params.get("monotone_constraints"),
    }
    if derived is not None:
        features_meta["derived"] = derived.shipped.to_dict()
        features_meta["derived_fits"] = derived.messages()
    # Calibrate on validation margins of the very model that is saved (rebuilt from its text).
    uncalibrated = Predictor(model_text, {"method": "platt", "a": 1.0, "b": 0.0}, features_meta)
    calibration = fit_calibration(
        y["valid"], uncalibrated.raw_margin(parts["valid"]), params.calibration
    )
    predictor = Predictor(model_text, calibration, features_meta)

    test = parts["test"]
    margin = predictor.raw_margin(test)
    prob = predictor.predict_proba(test)
    evaluation, baseline_scores = _evaluate(parts, y, names, label, target, prob, params, catalog)
    evaluation["best_iteration"] = int(best_iteration)
    # What business rules and reason codes need of the population ships with the model: who
    # gets reasons is decided against the ranking of these very customers (ReasonCuts).
    cuts = ReasonCuts.fit(prob, margin, test["customer_id"], target.risk_direction)
    reference = Reference.fit(
        test[names], prob, f"test cutoff {evaluation['test_cutoff'][:10]}", cuts
    )
    features_meta["reference"] = reference.to_dict()
    predictions = pd.DataFrame(
        {
            "customer_id": test["customer_id"].to_numpy(),
            "cutoff": test["cutoff"].to_numpy(),
            "label": y["test"].astype("int8"),
            "raw_margin": margin,
            "probability": prob,
            scoreboard.RECENCY_COLUMN: test[scoreboard.RECENCY_COLUMN].to_numpy(
                dtype="float64", na_value=np.nan
            ),
            **{scoreboard.score_column(name): s for name, s in baseline_scores.items()},
        }
    )
    return TrainResult(
        target=target.name,
        model_text=model_text,
        calibration=calibration,
        features=features_meta,
        metrics=evaluation,
        curves=metrics.curves(y["test"], prob),
        test_predictions=predictions,
        test_frame=test[names].reset_index(drop=True),
        lgbm_params=lgb_params,
        trials=trials,
    )


def btyd_features_of(
    parts: Mapping[str, pd.DataFrame], target: Target, params: TrainParams
) -> btyd_features.CutoffFits | None:
    """Return the per-cutoff BTYD fits of ``target``'s panel rows, or None.

    None when not asked for, when the inputs are absent, or when the test cutoff's fit (the
    one that ships) failed (one line each); another cutoff whose fit fails gets NaN features.
    """
    if target.name not in params.btyd_features:
        return None
    missing = baselines.missing_btyd_inputs(parts["train"])
    if missing:
        logger.warning("%s: no BTYD features: the panel lacks %s", target.name, ", ".join(missing))
        return None
    rows = pd.concat([parts[name] for name in SPLITS])
    fitted = btyd_features.CutoffFits.fit(rows, int(target.horizon_days or 0))
    if not fitted.shipped.usable:
        logger.warning(
            "%s: no BTYD features: the test cutoff's fit failed: %s",
            target.name,
            fitted.shipped.model.message,
        )
        return None
    for cutoff, message in fitted.failed().items():
        logger.warning("%s: BTYD features empty at cutoff %s: %s", target.name, cutoff, message)
    return fitted


def _evaluate(
    parts: dict[str, pd.DataFrame],
    y: dict[str, np.ndarray],
    names: list[str],
    label: str,
    target: Target,
    prob: np.ndarray,
    params: TrainParams,
    catalog: Catalog,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Model and baseline metrics on the test rows, row counts per split; baseline scores."""
    test = parts["test"]
    rfm = baselines.rfm_features(names, catalog)
    rfm_booster = fit_lgbm(
        parts["train"][rfm],
        y["train"],
        parts["valid"][rfm],
        y["valid"],
        lgbm_params(
            params,
            y["train"],
            **_monotone_params(parts["train"], rfm, target, params, catalog),
        ),
        params.num_boost_round,
        params.early_stopping_rounds,
        sample_weights(parts["train"], params.sample_weight),
    )
    rfm_valid = np.asarray(rfm_booster.predict(parts["valid"][rfm], raw_score=True))
    rfm_calibration = fit_calibration(y["valid"], rfm_valid, params.calibration)
    rfm_test = np.asarray(rfm_booster.predict(test[rfm], raw_score=True))
    rfm_prob = apply_calibration(rfm_calibration, rfm_test)
    baseline_scores = {
        "recency": baselines.recency_score(test, target.risk_direction),
        "rfm_logistic": baselines.rfm_logistic_scores(
            parts["train"],
            y["train"],
            test,
            rfm,
            params.seed,
            sample_weights(parts["train"], params.sample_weight),
        ),
        "rfm_lgbm": rfm_prob,
    }
    btyd_prob, btyd_fit = baselines.btyd_probability(
        test, int(target.horizon_days or 0), target.risk_direction
    )
    if btyd_prob is not None:
        baseline_scores["btyd"] = btyd_prob
    scores = {
        name: scoreboard.scorer_metrics(name, y["test"], s) for name, s in baseline_scores.items()
    }
    evaluation = {
        "target": target.name,
        "test_cutoff": _cutoffs(test)[-1],
        "model": metrics.probability_metrics(y["test"], prob),
        "baselines": scores,
        "btyd": btyd_fit,
        "rows": {name: int(len(part)) for name, part in parts.items()},
        "label_rate": {name: float(y[name].mean()) for name in SPLITS},
        "n_features": len(names),
        "n_rfm_features": len(rfm),
    }
    return evaluation, baseline_scores


def check_quality_gate(result_metrics: Mapping[str, Any], params: TrainParams) -> None:
    """Raise :class:`QualityGateError` when the model loses to recency or looks leaky."""
    auc = result_metrics["model"]["roc_auc"]
    recency = result_metrics["baselines"]["recency"]["roc_auc"]
    gate = params.quality_gate
    target = result_metrics.get("target", "model")
    if auc >= gate.max_auc:
        raise QualityGateError(
            f"{target}: test AUC {auc:.4f} >= {gate.max_auc} (quality_gate.max_auc): "
            "suspiciously good, check the features for label leakage"
        )
    if auc < recency + gate.min_auc_margin_over_recency:
        raise QualityGateError(
            f"{target}: test AUC {auc:.4f} is below the recency rule's {recency:.4f}"
            f" + margin {gate.min_auc_margin_over_recency}"
        )
