"""Train and evaluate the customer-value model: expected spend in the target's horizon.

Spend in a window is zero for many customers and heavy-tailed for the others. Two LightGBM
designs fit that (four variants), all fitted on the value target's own train cutoffs and compared
on its validation cutoff (normalized Gini, the ranking that value at risk needs; ties go to the
simpler one):

- ``tweedie``: one model of spend with a Tweedie loss (a compound Poisson-gamma: a point mass
  at zero plus a continuous tail), log link;
- ``tweedie_run_rate``: the same loss boosted from log(last year's spend run rate) instead of
  the mean, so the trees learn corrections to the naive forecast (an offset, as exposure is in
  insurance pricing); it keeps the resolution of a long buying history that a few thousand
  training rows cannot give a tree;
- ``tweedie_btyd``: the same loss boosted from the BTYD forecast (BG/NBD x Gamma-Gamma fitted
  on each cutoff's pre-cutoff history; the test cutoff's fit ships for scoring);
- ``two_part``: P(buy in the horizon) (binary) x E[spend | buy] (gamma loss, log link, fitted
  on the buyers only).

Window spend is capped at a high quantile of the training buyers' spend
(``value_cap_quantile``) for fitting and for the metrics: a few bulk or mistyped lines would
otherwise hold most of the spend and decide every metric. The level is the fit's own
(LightGBM starts from the training mean; log links keep it): the training cutoffs span the
seasons, while a level set on the one validation window would carry that window's season into
every forecast (in the simulation it cut the test total by a third). Model and baselines (last
year's spend scaled to the horizon; BTYD: BG/NBD x Gamma-Gamma fitted on the test cutoff's
pre-cutoff history) are evaluated on the test cutoff only. Nothing is refitted at scoring time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.business import Reference
from pipeline.config import LabelsParams, TrainParams
from pipeline.errors import DataError
from pipeline.features.catalog import Catalog
from pipeline.modeling import btyd, btyd_features, value_metrics
from pipeline.modeling.artifacts import Predictor, RunRate, snapshot_contract
from pipeline.modeling.baselines import absent_inputs_record, fit_record, missing_btyd_inputs
from pipeline.modeling.btyd_features import BtydSpend
from pipeline.modeling.train import (
    SPLITS,
    TrainResult,
    _cutoffs,
    _feature_spec,
    btyd_features_of,
    lgbm_params,
    model_input,
    monotone_constraints,
)
from pipeline.targets import Target, get_target

logger = logging.getLogger(__name__)

LAST_YEAR_FEATURE = "spend_sum_365d"
#: The run-rate offset is log(run rate + floor), floor = this share of the median positive run
#: rate on the training rows: customers without spend last year start low, not at -inf.
RUN_RATE_FLOOR = 0.05


def split_value_panel(panel: pd.DataFrame, target: Target) -> dict[str, pd.DataFrame]:
    """Split the value target's rows by its own split column (non-empty, ordered in time)."""
    column = target.split_column
    if column not in panel.columns:
        raise DataError(f"feature panel lacks column {column}; rerun `loyalty features`")
    parts = {name: panel.loc[panel[column] == name] for name in SPLITS}
    for name, part in parts.items():
        if part.empty:
            raise DataError(f"no {name} rows for {target.name} in the feature panel")
        if part[target.label].isna().any():
            raise DataError(f"{name} split of {target.name} has rows without a label")
        if float(part[target.label].sum()) <= 0:
            raise DataError(f"{name} split of {target.name} has no spend; cannot train")
    if parts["train"]["cutoff"].max() >= parts["valid"]["cutoff"].min() or (
        parts["valid"]["cutoff"].max() >= parts["test"]["cutoff"].min()
    ):
        raise DataError(f"{target.name}: splits overlap in time: need train < valid < test")
    return parts


@dataclass(frozen=True)
class Fit:
    """What every design is fitted on: the value target's splits and the model recipe."""

    parts: dict[str, pd.DataFrame]
    names: list[str]
    label: str
    train: TrainParams
    constraints: list[int] | None
    run_rate: RunRate
    # BTYD expected spend fitted per cutoff (None: inputs absent or the test cutoff's fit failed)
    btyd_spend: Mapping[pd.Timestamp, BtydSpend] | None = None

    def y(self, split: str) -> np.ndarray:
        """Return the (capped) spend labels of ``split``."""
        return self.parts[split][self.label].to_numpy(dtype="float64")


SPLITS_FIT = ("train", "valid")


def _booster(
    fit: Fit,
    params: dict[str, Any],
    y: Mapping[str, np.ndarray] | None = None,
    rows: Mapping[str, np.ndarray] | None = None,
    init: Mapping[str, np.ndarray] | None = None,
) -> lgb.Booster:
    """Fit on train with early stopping on valid.

    ``y`` replaces the spend labels, ``rows`` (boolean masks) selects rows, ``init`` gives
    each split's starting margins (an offset).
    """
    data: dict[str, lgb.Dataset] = {}
    for split in SPLITS_FIT:
        keep = slice(None) if rows is None else rows[split]
        data[split] = lgb.Dataset(
            fit.parts[split][fit.names].loc[keep]
            if rows is not None
            else fit.parts[split][fit.names],
            label=(fit.y(split) if y is None else y[split])[keep],
            init_score=None if init is None else init[split][keep],
            reference=data.get("train"),
            free_raw_data=True,
        )
    return lgb.train(
        params,
        data["train"],
        num_boost_round=fit.train.num_boost_round,
        valid_sets=[data["valid"]],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(fit.train.early_stopping_rounds, verbose=False)],
    )


def _params(
    train: TrainParams, objective: str, metric: str, constraints: list[int] | None, **extra: Any
) -> dict[str, Any]:
    out = lgbm_params(train, np.zeros(1), **extra)
    out.update(objective=objective, metric=metric, first_metric_only=False)
    out.pop("scale_pos_weight", None)
    if train.monotone and constraints is not None:
        out["monotone_constraints"] = constraints
    return out


def _model_text(booster: lgb.Booster) -> str:
    return booster.model_to_string(num_iteration=booster.best_iteration or None)


def _tweedie(fit: Fit) -> dict[str, Any]:
    return _params(
        fit.train,
        "tweedie",
        "tweedie",
        fit.constraints,
        tweedie_variance_power=fit.train.tweedie_variance_power,
    )


def fit_tweedie(fit: Fit) -> dict[str, Any]:
    """One Tweedie model of spend (log link); returns its model text."""
    return {"model": _model_text(_booster(fit, _tweedie(fit)))}


def fit_tweedie_run_rate(fit: Fit) -> dict[str, Any]:
    """Fit a Tweedie model boosted from last year's run rate (see the module docstring).

    The trees learn corrections to log(run rate), so a long, steady history keeps its
    resolution.
    """
    init = {s: fit.run_rate.log_offset(fit.parts[s]) for s in SPLITS_FIT}
    booster = _booster(fit, _tweedie(fit), init=init)
    return {"model": _model_text(booster), "offset": fit.run_rate.to_dict()}


def fit_two_part(fit: Fit) -> dict[str, Any]:
    """P(buy) (binary) and E[spend | buy] (gamma loss on buyers); returns both model texts."""
    buys = {s: (fit.y(s) > 0).astype("int64") for s in SPLITS_FIT}
    buy_model = _booster(
        fit, _params(fit.train, "binary", "binary_logloss", fit.constraints), y=buys
    )
    buyers = {s: fit.y(s) > 0 for s in SPLITS_FIT}
    amount_model = _booster(fit, _params(fit.train, "gamma", "gamma", None), rows=buyers)
    return {"model": _model_text(amount_model), "buy_model": _model_text(buy_model)}


def per_cutoff_offset(part: pd.DataFrame, fits: Mapping[pd.Timestamp, BtydSpend]) -> np.ndarray:
    """Each row's ``log(BTYD spend + floor)`` from its own cutoff's fit."""
    out = np.zeros(len(part))
    for cutoff, fitted in fits.items():
        rows = (part["cutoff"] == cutoff).to_numpy()
        if rows.any():
            # a cutoff whose fit failed starts from the floor alone
            out[rows] = fitted.log_offset(part.loc[rows]) if fitted.usable else np.log(fitted.floor)
    return out


def fit_tweedie_btyd(fit: Fit) -> dict[str, Any]:
    """Fit a Tweedie model boosted from BTYD expected spend (BG/NBD x Gamma-Gamma, per cutoff).

    Each cutoff's rows start from their own cutoff's BTYD forecast; the test cutoff's fit
    ships (``value_offset`` of kind ``btyd``), so scoring starts from the same forecast.
    """
    if fit.btyd_spend is None:
        raise DataError("no BTYD expected spend to boost from")
    init = {s: per_cutoff_offset(fit.parts[s], fit.btyd_spend) for s in SPLITS_FIT}
    booster = _booster(fit, _tweedie(fit), init=init)
    valid = np.exp(
        np.asarray(booster.predict(fit.parts["valid"][fit.names], raw_score=True)) + init["valid"]
    )
    shipped = fit.btyd_spend[max(fit.btyd_spend)]
    return {"model": _model_text(booster), "offset": shipped.to_dict(), "valid": valid}


FITTERS: dict[str, Callable[[Fit], dict[str, Any]]] = {
    "tweedie": fit_tweedie,
    "tweedie_run_rate": fit_tweedie_run_rate,
    "tweedie_btyd": fit_tweedie_btyd,
    "two_part": fit_two_part,
}
#: Validation normalized Gini within this of the best counts as a tie (sampling noise of one
#: validation cutoff); a tie goes to the design listed first in ``train.value_models``.
GINI_TIE = 0.002


def choose_design(validation: Mapping[str, Mapping[str, float]]) -> str:
    """Return the design with the best validation normalized Gini; the first listed wins a tie."""
    best = max(v["normalized_gini"] for v in validation.values())
    return next(d for d, v in validation.items() if v["normalized_gini"] >= best - GINI_TIE)


def _predictor(design: str, fitted: Mapping[str, Any], features: dict[str, Any]) -> Predictor:
    calibration = {"method": "log_link", "scale": 1.0}
    meta = {**features, "value_model": design}
    if "offset" in fitted:
        meta["value_offset"] = fitted["offset"]
    return Predictor(fitted["model"], calibration, meta, buy_model_text=fitted.get("buy_model"))


def spend_cap(train_spend: np.ndarray, quantile: float) -> float:
    """Return the cap on window spend: ``quantile`` of the training buyers' spend (inf at 1.0)."""
    buyers = train_spend[train_spend > 0]
    if quantile >= 1 or buyers.size == 0:
        return float("inf")
    return float(np.quantile(buyers, quantile))


def btyd_spend_fits(
    parts: Mapping[str, pd.DataFrame], horizon_days: int, cap: float
) -> dict[pd.Timestamp, BtydSpend] | None:
    """BTYD expected spend fitted on each cutoff's rows, with one floor (from the training rows).

    None when the inputs are absent or the test cutoff's fit (the one that ships) failed; a
    cutoff whose fit fails starts its rows from the floor alone (logged).
    """
    if missing_btyd_inputs(parts["train"]):
        return None
    rows = pd.concat([parts[name] for name in SPLITS])
    fits = {
        cast(pd.Timestamp, cutoff): BtydSpend.fit(group, horizon_days, cap)
        for cutoff, group in rows.groupby("cutoff", sort=True)
    }
    test = max(fits)
    if not fits[test].usable:
        logger.warning("tweedie_btyd: the test cutoff's BTYD fit failed: %s", fits[test].message)
        return None
    usable = {c: f for c, f in fits.items() if f.usable}
    for cutoff in sorted(set(fits) - set(usable)):
        logger.warning(
            "tweedie_btyd: BTYD fit failed at %s: %s", cutoff.date(), fits[cutoff].message
        )
    train = parts["train"]
    spend = np.concatenate(
        [f.spend(train.loc[(train["cutoff"] == c).to_numpy()]) for c, f in usable.items()]
    )
    floor = float(np.median(spend[spend > 0]) * RUN_RATE_FLOOR) if (spend > 0).any() else 1.0
    return {c: replace(f, floor=floor) for c, f in fits.items()}


def last_year_spend(frame: pd.DataFrame, horizon_days: int, cap: float) -> np.ndarray:
    """Baseline: spend over the last 365 days scaled to the horizon (a run rate), capped."""
    return RunRate(LAST_YEAR_FEATURE, horizon_days / 365.0, cap, 0.0).spend(frame)


def btyd_expected_spend(
    frame: pd.DataFrame, horizon_days: int, cap: float
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """BTYD baseline: BG/NBD x Gamma-Gamma fitted on ``frame``'s pre-cutoff history only.

    Capped at ``cap`` like every forecast here (the labels are capped spend). Returns
    (None, record) when a fit does not converge; the record says so (and is logged).
    """
    absent = absent_inputs_record(frame)
    if absent is not None:
        return None, absent
    x, t_x, age, spend = btyd.inputs_from_snapshot(frame)
    bg = btyd.fit_bgnbd(x, t_x, age)
    gg = btyd.fit_gamma_gamma(x, spend)
    record: dict[str, Any] = {"bgnbd": fit_record(bg), "gamma_gamma": fit_record(gg)}
    for fit in (bg, gg):
        if not fit.converged:
            logger.warning("BTYD baseline left out: %s", fit.message)
            return None, record
    predicted = btyd.expected_spend(bg, gg, float(horizon_days), x, t_x, age, spend)
    if not np.isfinite(predicted).all():
        bad = int((~np.isfinite(predicted)).sum())
        logger.warning("BTYD baseline left out: %d non-finite expected spend value(s)", bad)
        record["failure"] = f"{bad} non-finite expected spend value(s)"
        return None, record
    return np.minimum(predicted, cap), record


def train_value(
    panel: pd.DataFrame,
    target_name: str,
    params: TrainParams,
    labels: LabelsParams,
    catalog: Catalog,
    summary: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fit the value model designs, keep the better on validation, evaluate on the test cutoff."""
    target = get_target(labels, target_name)
    if target.kind != "regression" or target.horizon_days is None:
        raise DataError(f"{target_name} is not a value target with a horizon")
    label = target.label
    frame, names = model_input(panel, labels, ["customer_id", "cutoff", target.split_column, label])
    parts = split_value_panel(frame, target)
    raw = {name: part[label].to_numpy(dtype="float64") for name, part in parts.items()}
    cap = spend_cap(raw["train"], params.value_cap_quantile)
    y = {name: np.minimum(values, cap) for name, values in raw.items()}
    parts = {name: part.assign(**{label: y[name]}) for name, part in parts.items()}
    derived = btyd_features_of(parts, target, params)
    if derived is not None:
        parts = {name: derived.add(part) for name, part in parts.items()}
        names = [*names, *btyd_features.NAMES]
    constraints = monotone_constraints(parts["train"], names, target, catalog)
    rate = last_year_spend(parts["train"], target.horizon_days, cap)
    floor = float(np.median(rate[rate > 0]) * RUN_RATE_FLOOR) if (rate > 0).any() else 1.0
    fit = Fit(
        parts,
        names,
        label,
        params,
        constraints,
        RunRate(LAST_YEAR_FEATURE, target.horizon_days / 365.0, cap, floor),
        btyd_spend_fits(parts, target.horizon_days, cap)
        if "tweedie_btyd" in params.value_models
        else None,
    )

    features_meta: dict[str, Any] = {
        "target": target.name,
        "rule": target.rule,
        "label": label,
        "features": _feature_spec(parts["train"], names),
        "cutoffs": {name: _cutoffs(part) for name, part in parts.items()},
        "horizon_days": target.horizon_days,
        **snapshot_contract(summary),
        "lightgbm_version": lgb.__version__,
        "monotone_constraints": constraints if params.monotone else None,
    }
    if derived is not None:
        features_meta["derived"] = derived.shipped.to_dict()
        features_meta["derived_fits"] = derived.messages()
    candidates: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for design in params.value_models:
        if design == "tweedie_btyd" and fit.btyd_spend is None:
            skipped[design] = (
                "no BTYD expected spend (inputs absent or the test cutoff's fit failed)"
            )
            logger.warning("%s %s: left out: %s", target.name, design, skipped[design])
            continue
        fitted = FITTERS[design](fit)
        predicted_valid = (
            fitted.pop("valid")
            if "valid" in fitted
            else _predictor(design, fitted, features_meta).predict(parts["valid"])
        )
        candidates[design] = {
            "fitted": fitted,
            "valid": value_metrics.value_metrics(y["valid"], predicted_valid),
        }
        logger.info(
            "%s %s: validation normalized Gini %.4f, decile MAPE %.1f%%",
            target.name,
            design,
            candidates[design]["valid"]["normalized_gini"],
            candidates[design]["valid"]["decile_mape"],
        )
    chosen = choose_design({d: c["valid"] for d, c in candidates.items()})
    best = candidates[chosen]["fitted"]
    predictor = _predictor(chosen, best, features_meta)
    features_meta = predictor.features

    test = parts["test"]
    predicted = predictor.predict(test)
    horizon = target.horizon_days
    btyd_prediction, btyd_record = btyd_expected_spend(test, horizon, cap)
    baselines: dict[str, Any] = {
        "last_year_spend": value_metrics.value_metrics(
            y["test"], last_year_spend(test, horizon, cap)
        )
    }
    if btyd_prediction is not None:
        baselines["btyd"] = value_metrics.value_metrics(y["test"], btyd_prediction)
    evaluation: dict[str, Any] = {
        "target": target.name,
        "horizon_days": horizon,
        "test_cutoff": _cutoffs(test)[-1],
        "model_design": chosen,
        "model": value_metrics.value_metrics(y["test"], predicted),
        "baselines": baselines,
        "selection": {
            **{design: {"validation": c["valid"]} for design, c in candidates.items()},
            **{design: {"skipped": why} for design, why in skipped.items()},
        },
        "btyd": btyd_record,
        "value_cap": {
            "quantile": params.value_cap_quantile,
            "value": cap,
            "customers_capped": {name: int((raw[name] > cap).sum()) for name in SPLITS},
            "spend_above_cap_share": {
                name: float((raw[name] - y[name]).sum() / raw[name].sum()) for name in SPLITS
            },
        },
        "rows": {name: int(len(part)) for name, part in parts.items()},
        "mean_value": {name: float(y[name].mean()) for name in SPLITS},
        "n_features": len(names),
    }
    reference = Reference.fit(
        test[names], predicted, f"test cutoff {evaluation['test_cutoff'][:10]}"
    )
    features_meta["reference"] = reference.to_dict()
    predictions = pd.DataFrame(
        {
            "customer_id": test["customer_id"].to_numpy(),
            "cutoff": test["cutoff"].to_numpy(),
            "label": y["test"],
            "prediction": predicted,
            "last_year_spend": last_year_spend(test, horizon, cap),
            "btyd": btyd_prediction if btyd_prediction is not None else np.nan,
        }
    )
    return TrainResult(
        target=target.name,
        model_text=best["model"],
        calibration=predictor.calibration,
        features=features_meta,
        metrics=evaluation,
        curves=value_metrics.value_curves(y["test"], predicted),
        test_predictions=predictions,
        test_frame=test[names].reset_index(drop=True),
        lgbm_params={},
        extra_models={"buy_model": best["buy_model"]} if "buy_model" in best else {},
    )
