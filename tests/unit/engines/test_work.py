"""The scorer's population: the one the models were trained on, unless params say otherwise."""

from __future__ import annotations

import logging

import pytest

from pipeline.config import Params, parse_params
from pipeline.engines.work import ModelRef, scoring_params
from pipeline.errors import ModelError


def _ref(target: str, population: int | str | None) -> ModelRef:
    return ModelRef(target, "no_order_within", 90, f"models/{target}", target, "v1", population)


def _params(active: int | str | None) -> Params:
    return parse_params({"features": {"active_within_days": active}})


def test_null_takes_the_population_the_models_were_trained_on() -> None:
    models = [_ref("churn", 365), _ref("repurchase", 365)]
    assert scoring_params(_params(None), models).features.active_within_days == 365
    assert scoring_params(_params(None), [_ref("churn", "any")]).features.active_within_days == (
        "any"
    )


def test_an_explicit_population_is_used_as_set(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        params = scoring_params(_params("any"), [_ref("churn", 365)])
    assert params.features.active_within_days == "any"
    assert "trained on 365" in caplog.text  # scored on another population than tested on
    caplog.clear()
    assert scoring_params(_params(365), [_ref("churn", 365)]).features.active_within_days == 365
    assert scoring_params(_params(180), [_ref("churn", None)]).features.active_within_days == 180
    assert "trained on" not in caplog.text


def test_models_without_or_with_different_populations_are_refused() -> None:
    with pytest.raises(ModelError, match="states no population.*retrain"):
        scoring_params(_params(None), [_ref("churn", 365), _ref("repurchase", None)])
    with pytest.raises(ModelError, match="different populations"):
        scoring_params(_params(None), [_ref("churn", 365), _ref("repurchase", "any")])
