"""params.yaml parsing: defaults, typos, types."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_params, parse_params
from pipeline.errors import ConfigError


def test_repository_params_yaml_is_valid(repo_root: Path) -> None:
    params = load_params(repo_root / "params.yaml")
    assert params.data.source == "synthetic"
    # null = chosen from the data by the features stage (pipeline/features/defaults.py)
    assert params.labels.targets["churn"].horizon_days is None
    assert params.features.active_within_days is None and params.features.step_months is None


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"labels\.targets\.churn\.horizon_dayz"):
        parse_params(
            {
                "labels": {
                    "targets": {
                        "churn": {"rule": "no_order_within", "horizon_days": 90, "horizon_dayz": 90}
                    }
                }
            }
        )


def test_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"generate\.n_customers"):
        parse_params({"generate": {"n_customers": "many"}})


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_params(["not", "a", "mapping"])


def test_params_are_frozen() -> None:
    params = parse_params({})
    with pytest.raises(ValueError):
        params.labels.targets["churn"].horizon_days = 1  # type: ignore[misc]


def test_targets_are_defined_once_and_used_by_name() -> None:
    with pytest.raises(ConfigError, match=r"train\.targets.*'nope'.*not defined"):
        parse_params({"train": {"targets": ["churn", "nope"]}})
    with pytest.raises(ConfigError, match=r"spend_within \(value\) targets; set train.value_t"):
        parse_params({"train": {"targets": ["churn", "value"]}})
    with pytest.raises(ConfigError, match=r"train.value_target: 'churn' must have rule spend"):
        parse_params({"train": {"value_target": "churn"}, "business": {"value_target": "churn"}})
    with pytest.raises(ConfigError, match="target names must match"):
        parse_params({"labels": {"targets": {"../x": {"rule": "order_within", "horizon_days": 9}}}})
    params = parse_params(
        {
            "labels": {
                "targets": {
                    "churn": {"rule": "no_order_within", "horizon_days": 90},
                    "repurchase": {"rule": "order_within", "horizon_days": 30},
                    "churn_180d": {"rule": "no_order_within", "horizon_days": 180},
                }
            },
            "train": {"targets": ["churn_180d"], "value_target": None},
            "business": {"value_target": None},
        }
    )
    assert params.train.targets == ("churn_180d",)


def test_any_source_config_name_is_a_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs" / "sources").mkdir(parents=True)
    (tmp_path / "configs" / "sources" / "my_shop.yaml").write_text("{}\n")
    data = parse_params({"data": {"source": "my_shop", "input": "export.csv"}}).data
    assert data.source_config_path() == Path("configs/sources/my_shop.yaml")
    other = parse_params({"data": {"source": "other_shop"}}).data
    with pytest.raises(ConfigError, match=r"data\.source 'other_shop'.*\(there: my_shop\).*"):
        other.source_config_path()
    explicit = parse_params({"data": {"source": "other_shop", "source_config": "x.yaml"}}).data
    assert explicit.source_config_path() == Path("x.yaml")  # checked when it is read
    with pytest.raises(ConfigError, match=r"data\.source"):
        parse_params({"data": {"source": "My Shop"}})
