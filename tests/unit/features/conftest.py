"""Fixtures of the feature tests (the tables themselves are in feature_tables.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import FeaturesParams, LabelsParams
from pipeline.features.catalog import Catalog, load_catalog
from tests.support.params import fixed_features
from tests.support.targets import churn_and_repurchase

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(REPO_ROOT / "configs" / "features.yaml")


@pytest.fixture
def fparams() -> FeaturesParams:
    return fixed_features(partitions=1, workers=1)


@pytest.fixture
def lparams() -> LabelsParams:
    return churn_and_repurchase()
