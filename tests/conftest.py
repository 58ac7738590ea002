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


# --- reliability ledger ------------------------------------------------------------------------
# Tests of the RELIABILITY.md cases carry `@pytest.mark.reliability("case")`. With
# LOYALTY_RELIABILITY_REPORT=path the run writes a ledger (cases tried, passed) that
# `make reliability` turns into docs/reliability.md, so the published figures come from a test run.

_LEDGER: list[dict[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability(case): a RELIABILITY.md case this test checks")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    cases = [kw for kw in report.keywords if kw.startswith("reliability::")]
    captured = report.capstdout + report.capstderr + report.caplog
    traceback = "Traceback (most recent call last)" in captured
    for case in cases:
        _LEDGER.append(
            {
                "case": case.split("::", 1)[1],
                "test": report.nodeid,
                "outcome": report.outcome,
                "traceback_in_output": traceback,
            }
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in item.iter_markers("reliability"):
            item.keywords[f"reliability::{marker.args[0]}"] = True


def pytest_sessionfinish(session: pytest.Session) -> None:
    import json
    import os

    target = os.environ.get("LOYALTY_RELIABILITY_REPORT")
    if not target or not _LEDGER:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"ledger-{worker}.json").write_text(json.dumps(_LEDGER, indent=1))
