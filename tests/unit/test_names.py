"""One rule per kind of name that becomes part of a path, checked before the path is built."""

from __future__ import annotations

import pytest

from pipeline import names
from pipeline.errors import ConfigError, ModelError
from pipeline.tracking.model_uri import parse_model_uri

#: Names that must never become part of a path: traversal, absolute, empty, NUL, too long, dot.
BAD = ["../../x", "/etc/x", "", "a\x00b", "x" * 1000, "..", "a/b", ".hidden", "a\nb"]


@pytest.mark.reliability("security: names read from a registry or a file")
@pytest.mark.parametrize("value", BAD, ids=range(len(BAD)))
def test_bad_names_are_one_line_errors(value):
    for pattern in (names.NAME, names.REGISTRY_NAME):
        with pytest.raises(ConfigError) as caught:
            names.checked(value, "--name", pattern)
        assert "\n" not in caught.value.message and len(caught.value.message) < 250
        assert caught.value.message.startswith("--name ")


def test_good_names_pass():
    assert names.checked("churn_90d", "target") == "churn_90d"
    assert names.checked("loyalty-churn", "model", names.REGISTRY_NAME) == "loyalty-churn"
    with pytest.raises(ModelError):
        names.checked(None, "features.json target", error=ModelError)


@pytest.mark.reliability("security: names read from a registry or a file")
@pytest.mark.parametrize(
    "uri",
    [
        "models:/../../x@champion",
        "models://etc/x@champion",
        "models:/@champion",
        "models:/loyalty-churn@..",
        "models:/loyalty-churn/../../x",
        "models:/a\x00b/1",
        f"models:/{'x' * 1000}@champion",
    ],
)
def test_model_uri_parts_are_checked(uri):
    with pytest.raises(ModelError, match="not a valid name"):
        parse_model_uri(uri)


def test_model_uri_parts():
    assert parse_model_uri("models:/loyalty-churn@champion") == ("loyalty-churn", "champion", None)
    assert parse_model_uri("models:/loyalty-churn/3") == ("loyalty-churn", None, "3")
    assert parse_model_uri("models:/loyalty-churn") == ("loyalty-churn", None, None)
