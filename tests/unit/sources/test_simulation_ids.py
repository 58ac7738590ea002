"""Customer ids of the simulation: 5-6 digits up to 900,000 customers, 7 digits above."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.config import GenerateParams
from pipeline.sources.simulation.dynamics import SMALL_IDS_MAX, draw_population
from pipeline.sources.simulation.mechanisms import Effects


def _ids(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return draw_population(n, dt.date(2023, 1, 1), 30, Effects(), rng).customer_id


def test_small_population_keeps_five_or_six_digit_ids() -> None:
    ids = _ids(1000)
    assert ids.min() >= 10_000 and ids.max() <= 999_999
    assert len(np.unique(ids)) == 1000


@pytest.mark.slow
def test_population_above_the_small_limit_gets_unique_seven_digit_ids() -> None:
    ids = _ids(SMALL_IDS_MAX + 1)  # the first size that no longer fits 10000..999999 safely
    assert ids.min() >= 1_000_000 and ids.max() <= 9_999_999
    assert len(np.unique(ids)) == SMALL_IDS_MAX + 1


def test_one_million_customers_is_a_valid_size() -> None:
    assert GenerateParams(n_customers=1_000_000).n_customers == 1_000_000
    with pytest.raises(ValidationError):
        GenerateParams(n_customers=9_000_001)
