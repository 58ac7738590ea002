"""The scorer's population: the one the models were trained on, unless params say otherwise."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from pipeline.config import Params, parse_params
from pipeline.engines import work
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


def test_a_cached_model_is_keyed_on_the_folder_it_is_not_the_path_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: the per-process model cache keyed on the path string, so after a chdir
    # "models/churn" served the previous project's model (a shape's scores used another
    # shape's churn model, caught only when its features differed).
    for project in ("a", "b"):
        (tmp_path / project / "models" / "churn").mkdir(parents=True)
        (tmp_path / project / "models" / "churn" / "model.txt").write_text(project)
    monkeypatch.chdir(tmp_path / "a")
    first = work.file_identity("models/churn")
    monkeypatch.chdir(tmp_path / "b")
    assert work.file_identity("models/churn")[0] != first[0]
    # retrained in place: same path, a newer file
    model = tmp_path / "b" / "models" / "churn" / "model.txt"
    before = work.file_identity("models/churn")
    os.utime(model, ns=(before[1] + 10**9, before[1] + 10**9))
    assert work.file_identity("models/churn")[1] > before[1]
