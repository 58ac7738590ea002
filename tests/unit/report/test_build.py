"""The rendered pages: sections in order, numbers consistent with the inputs, escaping."""

from __future__ import annotations

import re

import pytest

from pipeline.config import ReportParams
from pipeline.report.build import ReportInputs, build_site
from pipeline.report.customers import headline

EVIL_ID = "<script>alert('x')</script>"  # the id conftest gives customer 0


@pytest.fixture(scope="module")
def site(report_inputs: ReportInputs) -> dict[str, str]:
    return build_site(report_inputs, ReportParams(top_customers=200))


def test_pages_and_section_order(site: dict[str, str]) -> None:
    assert set(site) == {"index.html", "churn.html", "repurchase.html"}
    index = site["index.html"]
    positions = [
        index.index(f"<h2>{n}. {title}")
        for n, title in [
            (1, "Summary"),
            (2, "Drivers"),
            (3, "Segments"),
            (4, "Model quality"),
            (5, "Data and method"),
        ]
    ]
    assert positions == sorted(positions)
    churn = site["churn.html"]
    assert churn.index("<h2>2. Drivers") < churn.index("<h2>4. Model quality")


@pytest.mark.reliability("security: report text containing <script>")
def test_every_data_string_is_escaped(site: dict[str, str]) -> None:
    for html in site.values():
        assert "<script>" not in html and "onerror=alert(1)>" not in html
        assert "<b>unresolved" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in site["index.html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in site["index.html"]
    assert EVIL_ID not in site["index.html"]


def test_images_are_embedded_and_nothing_is_fetched(site: dict[str, str]) -> None:
    for html in site.values():
        sources = re.findall(r'<img src="([^"]*)"', html)
        assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
        assert "http://" not in html and "https://" not in html
    # churn page: concept bars, beeswarm, >= 4 dependence plots, calibration, lift
    assert site["churn.html"].count("data:image/png;base64,") >= 8


def test_numbers_match_the_inputs(site: dict[str, str], report_inputs: ReportInputs) -> None:
    index = site["index.html"]
    assert "0.812" in index and "0.701" in index and "0.733" in index  # AUCs of metrics.json
    assert "(+0.079)" in index  # what satisfaction adds over RFM alone
    # the report's numbers are those of the scores, re-scored nowhere
    numbers = headline(report_inputs.scores, "churn_probability", "repurchase_probability")
    assert numbers["value_at_risk"] == pytest.approx(report_inputs.scores["value_at_risk"].sum())
    assert f"<strong>{numbers['customers']}</strong>" in index
    assert f"<strong>{numbers['predicted_churners']}</strong>" in index
    assert f"<strong>{numbers['value_at_risk']:,.0f}</strong>" in index
    assert "duplicate_row" in index and "late_delivery_share" in index
    assert "Recency" in index  # a top driver, in words
    # customer value: what the number is, its tiers and its quality next to the baselines
    assert "expected spend in the next 180 days" in index
    assert "By value tier" in index and "0.720" in index and "0.570" in index


def test_satisfaction_curve_is_drawn(site: dict[str, str]) -> None:
    assert "the satisfaction curve" in site["churn.html"]


def test_titles_take_the_horizon_from_the_target(site: dict[str, str]) -> None:
    assert "Churn (no order in the next 90 days)" in site["index.html"]
    assert "Repurchase (an order within the next 30 days)" in site["repurchase.html"]


def test_the_method_section_shows_the_choices_and_the_population(site: dict[str, str]) -> None:
    method = site["index.html"][site["index.html"].index('<section id="method">') :]
    assert "Settings chosen from the data" in method
    assert "<code>labels.targets.churn.horizon_days</code>" in method
    assert "90% of the 1,000 repeat purchases come within 72 days" in method
    assert "<code>features.active_within_days</code>" in method
    # what the filter removed, where, and the warning about it
    assert "customers with an order before the cutoff, the last within 365 days of it" in method
    assert "test cutoff 2024-10-01" in method and "400" in method and "40%" in method
    assert "<strong>Warning:</strong> population filter" in method
    assert "cutoffs, every 14 days)" in method  # the grid's step, not "monthly"
