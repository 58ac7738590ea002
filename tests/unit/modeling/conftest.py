"""Fixtures of the modelling tests: a small synthetic panel and one model trained on it."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config import TrainParams
from pipeline.modeling.train import TrainResult
from tests.support.demo_panel import make_demo_panel, train_demo


@pytest.fixture(scope="session")
def small_panel() -> pd.DataFrame:
    # 800 customers x 5 monthly cutoffs: 3 train, 1 valid, 1 test; big enough to beat recency.
    return make_demo_panel(n_customers=800, n_cutoffs=5, seed=3)


@pytest.fixture(scope="session")
def churn_result(small_panel: pd.DataFrame) -> TrainResult:
    return train_demo(small_panel, "churn", TrainParams())
