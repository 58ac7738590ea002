"""The helpers of benchmarks/bench_oracle.py: the bootstrap ECE and the latent-state join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.bench_btyd_features import resample_counts
from benchmarks.bench_oracle import STATE, weighted_ece, with_state
from pipeline.modeling.metrics import expected_calibration_error


def test_weighted_ece_with_unit_weights_is_the_metric() -> None:
    rng = np.random.default_rng(3)
    prob = rng.random(400)
    y = (rng.random(400) < prob**2).astype(np.float64)  # miscalibrated on purpose
    expected = expected_calibration_error(y.astype(int), prob)
    assert np.isclose(weighted_ece(prob, y, np.ones((1, 400)))[0], expected)


def test_weighted_ece_with_integer_weights_is_the_metric_of_the_repeated_rows() -> None:
    rng = np.random.default_rng(4)
    prob = np.round(rng.random(150), 1)  # values on the bin edges too
    y = (rng.random(150) < prob).astype(np.float64)
    for w in resample_counts(150, 3, seed=1):
        rows = np.repeat(np.arange(150), w.astype(int))
        expected = expected_calibration_error(y[rows].astype(int), prob[rows])
        assert np.isclose(weighted_ece(prob, y, w[None, :])[0], expected)


def _state(ids: list[str], cutoff: pd.Timestamp) -> pd.DataFrame:
    frame = pd.DataFrame({c: 0.5 for c in STATE}, index=range(len(ids)))
    frame["customer_id"] = pd.array(ids, dtype="string")
    frame["cutoff"] = cutoff
    frame["signed_up_at_cutoff"] = True
    return frame


def test_the_state_joins_on_customer_and_cutoff_keeping_the_panel_rows() -> None:
    cutoff = pd.Timestamp("2024-01-01", tz="UTC")
    # two rows of the panel in an order different from the state's; a third state row unused
    panel = pd.DataFrame(
        {"customer_id": pd.array(["20", "10"], dtype="string"), "cutoff": cutoff, "x": [1, 2]}
    )
    joined = with_state(panel, _state(["10", "20", "30"], cutoff))
    assert joined["customer_id"].tolist() == ["20", "10"] and joined["x"].tolist() == [1, 2]
    assert {f"true_{c}" for c in STATE} <= set(joined.columns)
    assert "signed_up_at_cutoff" not in joined


def test_a_panel_customer_unknown_to_the_simulation_stops_the_benchmark() -> None:
    cutoff = pd.Timestamp("2024-01-01", tz="UTC")
    panel = pd.DataFrame({"customer_id": pd.array(["99"], dtype="string"), "cutoff": cutoff})
    with pytest.raises(SystemExit, match="not signed-up customers"):
        with_state(panel, _state(["10"], cutoff))
