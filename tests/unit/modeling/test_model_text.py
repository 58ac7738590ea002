"""The structure check a LightGBM text model passes before LightGBM parses it.

Each damaged text below made LightGBM abort the process from C++ ("terminate called without an
active exception", std::bad_alloc), or load and then ask for tens of GiB, before the check.
"""

from __future__ import annotations

import re

import pytest

from pipeline.modeling.model_text import check_model_text


def _resized(text: str) -> str:
    """``text`` with tree_sizes rewritten to its trees' lengths: damage inside a tree only."""
    starts = [m.start() for m in re.finditer(r"^Tree=\d+$", text, re.M)]
    bounds = [*starts, text.find("\nend of trees") + 1]
    sizes = " ".join(str(b - a) for a, b in zip(bounds, bounds[1:], strict=False))
    return re.sub(r"^tree_sizes=.*$", f"tree_sizes={sizes}", text, count=1, flags=re.M)


def test_a_trained_model_passes(churn_result):
    check_model_text(churn_result.model_text)


@pytest.mark.reliability("model file from another LightGBM major version, or corrupted")
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda t: "", "empty file"),
        (lambda t: t[: len(t) // 3], "truncated"),
        (lambda t: "\x00\x17garbage" + t, "not a LightGBM text model"),
        (lambda t: re.sub(r"max_feature_idx=\d+", "max_feature_idx=999999999999", t), "outside"),
        (lambda t: re.sub(r"num_class=\d+", "num_class=2000000000", t), "num_class=2000000000"),
        (lambda t: re.sub(r"^feature_names=.*\n", "", t, flags=re.M), "feature_names"),
        (lambda t: re.sub(r"version=v\d+", "version=x", t), "version"),
        (lambda t: re.sub(r"^tree_sizes=(\d+)", r"tree_sizes=9\1", t, flags=re.M), "bytes"),
        (
            lambda t: _resized(re.sub(r"num_leaves=\d+", "num_leaves=2000000000", t, count=1)),
            "outside",
        ),
        (
            lambda t: _resized(re.sub(r"split_feature=(\d+)", "split_feature=99999", t, count=1)),
            "a split on a feature",
        ),
        (
            lambda t: _resized(re.sub(r"left_child=(-?\d+)", "left_child=-99999", t, count=1)),
            "left_child points outside",
        ),
        (
            lambda t: _resized(re.sub(r"leaf_value=(\S+) ", "leaf_value=", t, count=1)),
            "leaf_value does not have",
        ),
    ],
    ids=[
        "empty",
        "truncated",
        "random_bytes",
        "huge_feature_count",
        "huge_class_count",
        "no_feature_names",
        "no_version",
        "tree_sizes_disagree",
        "huge_leaf_count",
        "split_on_unknown_feature",
        "child_outside_the_tree",
        "leaf_values_missing",
    ],
)
def test_damaged_text_is_one_value_error(churn_result, damage, says):
    with pytest.raises(ValueError, match=says):
        check_model_text(damage(churn_result.model_text))
