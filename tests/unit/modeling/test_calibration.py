import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression

from pipeline.errors import ModelError
from pipeline.modeling.calibration import EPS, apply_calibration, fit_calibration

RNG = np.random.default_rng(1)
MARGIN = RNG.normal(size=2000)
LABEL = (RNG.random(2000) < 1 / (1 + np.exp(-2 * MARGIN))).astype(int)


def test_isotonic_json_round_trip_stays_close_to_sklearn_and_monotone():
    cal = json.loads(json.dumps(fit_calibration(LABEL, MARGIN, "isotonic")))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(MARGIN, LABEL)
    probe = np.linspace(-5, 5, 101)  # includes points outside the fitted range (clipped)
    ours = apply_calibration(cal, probe)
    assert np.all(np.diff(ours) >= 0)
    # Laplace smoothing moves a block of n rows by at most 1 / (n + 2) from sklearn's rate.
    np.testing.assert_allclose(ours, iso.predict(probe), atol=0.1)
    inside = (probe > MARGIN.min() + 1) & (probe < MARGIN.max() - 1)
    assert np.mean(np.abs(ours - iso.predict(probe))[inside]) < 0.02


def test_isotonic_never_says_zero_or_one_even_for_pure_end_blocks():
    margin = np.linspace(-6, 6, 400)
    label = (margin > 0).astype("float64")  # perfectly separable: raw isotonic gives 0 and 1
    cal = fit_calibration(label, margin, "isotonic")
    prob = apply_calibration(cal, np.array([-100.0, 100.0]))
    assert prob[0] == pytest.approx(1 / 202) and prob[1] == pytest.approx(201 / 202)


def test_platt_recovers_the_slope_of_the_simulation():
    cal = fit_calibration(LABEL, MARGIN, "platt")
    assert cal["a"] == pytest.approx(2.0, abs=0.3) and cal["b"] == pytest.approx(0.0, abs=0.2)


def test_unknown_or_broken_calibration_is_a_model_error():
    with pytest.raises(ModelError, match="unknown method"):
        apply_calibration({"method": "magic"}, MARGIN)
    with pytest.raises(ModelError, match="not sorted"):
        apply_calibration({"method": "isotonic", "x": [1.0, 0.0], "y": [0.1, 0.2]}, MARGIN)


@settings(max_examples=50, deadline=None)
@given(
    method=st.sampled_from(["isotonic", "platt"]),
    margins=st.lists(st.floats(-50, 50), min_size=2, max_size=50),
)
def test_calibrated_probabilities_are_monotone_and_inside_zero_one(method, margins):
    cal = fit_calibration(LABEL, MARGIN, method)
    m = np.sort(np.asarray(margins))
    p = apply_calibration(cal, m)
    assert np.all(np.diff(p) >= 0)
    assert np.all((p >= EPS) & (p <= 1 - EPS))
