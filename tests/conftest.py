"""Shared test helpers: the repository root and the real Online Retail II export."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL_II = (
    REPO_ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_ii_2009_2010.csv.gz"
)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def online_retail_ii() -> Path:
    if not ONLINE_RETAIL_II.exists():
        pytest.skip(f"real export not available at {ONLINE_RETAIL_II}")
    return ONLINE_RETAIL_II
