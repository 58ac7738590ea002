"""Hyper-parameter search with Optuna on the time-based validation split (bounded, seeded).

The objective is the validation log loss of the early-stopped booster (the metric the final
fit stops on). Trials run one after another with a seeded TPE sampler, so the same panel and
params give the same trials and the same choice; ``timeout_seconds`` is a safety cap on top of
``n_trials`` (a run that hits it depends on the machine's speed and says so in the log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import optuna

from pipeline.config import TuningParams

logger = logging.getLogger(__name__)

#: The search space: LightGBM parameter -> (low, high, log scale).
SPACE: dict[str, tuple[float, float, bool]] = {
    "num_leaves": (7, 127, True),
    "min_data_in_leaf": (20, 1000, True),
    "learning_rate": (0.02, 0.2, True),
    "feature_fraction": (0.4, 1.0, False),
    "lambda_l2": (1e-3, 30.0, True),
}
INTEGER = frozenset({"num_leaves", "min_data_in_leaf"})


def _suggest(trial: optuna.Trial) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (low, high, log) in SPACE.items():
        if name in INTEGER:
            out[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            out[name] = trial.suggest_float(name, low, high, log=log)
    return out


def tune(
    fit: Callable[[dict[str, Any]], lgb.Booster], settings: TuningParams, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Search :data:`SPACE`; return the best overrides and every trial as JSON-ready dicts.

    ``fit(overrides)`` fits an early-stopped booster with those LightGBM parameters.
    """
    trials: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        overrides = _suggest(trial)
        booster = fit(overrides)
        scores = booster.best_score["valid"]
        trials.append(
            {
                "params": overrides,
                "best_iteration": int(booster.best_iteration),
                "valid_logloss": float(scores["binary_logloss"]),
                "valid_auc": float(scores["auc"]),
            }
        )
        return float(scores["binary_logloss"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=settings.n_trials, timeout=settings.timeout_seconds)
    if len(trials) < settings.n_trials:
        logger.warning(
            "tuning stopped after %d of %d trials (train.tuning.timeout_seconds %s): the "
            "choice depends on this machine's speed",
            len(trials),
            settings.n_trials,
            settings.timeout_seconds,
        )
    best = min(trials, key=lambda t: t["valid_logloss"])
    return dict(best["params"]), trials
