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
    return build_site(report_inputs, ReportParams(top_customers=200, contact_budget=10_000))


def test_pages_and_section_order(site: dict[str, str]) -> None:
    assert set(site) == {"index.html", "method.html", "churn.html", "repurchase.html"}
    index = site["index.html"]
    titles = ["Summary", "Who to contact first", "Why customers leave", "Segments"]
    positions = [index.index(f"<h2>{title}</h2>") for title in titles]
    assert positions == sorted(positions)
    method = site["method.html"]
    assert method.index("<h2>Model quality") < method.index("<h2>Data and method")
    assert method.index("<h2>Data and method") < method.index("<h2>Glossary")
    churn = site["churn.html"]
    assert churn.index("<h2>Drivers") < churn.index("<h2>Model quality")
    # numbers come from the order of the sections (CSS counters), never typed in
    for html in site.values():
        assert not re.search(r"<h2>\d", html)
    assert "counter-increment: section" in index


#: Words a marketing manager should not meet on the overview (they live on method.html).
JARGON = ("RFM", "SHAP", "AUC", "log-odds", "Brier", "lift", "Lift")


def test_the_overview_speaks_business(site: dict[str, str]) -> None:
    text = re.sub(r"<[^>]+>", " ", site["index.html"].split("<main>")[1])
    for word in JARGON:
        assert not re.search(rf"\b{re.escape(word)}\b", text), word
    glossary = site["method.html"][site["method.html"].index('id="glossary"') :]
    for word in ("RFM", "SHAP", "AUC", "Log-odds", "Brier", "Lift", "PSI"):
        assert word in glossary
    assert "riskiest" not in site["repurchase.html"]


def test_expected_churners_are_the_sum_of_probabilities(
    site: dict[str, str], report_inputs: ReportInputs
) -> None:
    index = site["index.html"]
    scores = report_inputs.scores
    expected = scores["churn_probability"].sum()
    above = int((scores["churn_probability"] >= 0.5).sum())
    assert f"<strong>{expected:,.0f}</strong> are expected to stop buying" in index
    assert f"<strong>{above:,}</strong> of them" in index
    assert "sum of churn probabilities" in index


def test_drivers_keep_signals_and_levers_apart(site: dict[str, str]) -> None:
    index = site["index.html"]
    drivers = index[index.index('<section id="drivers">') : index.index('<section id="segments">')]
    assert "signals that a customer is leaving" in drivers
    assert "what the business can change" in drivers
    levers = drivers[drivers.index("what the business can change</th>") :]
    levers = levers[: levers.index("</table>")]
    assert "Complaints and service" in levers and "Satisfaction" in levers
    assert "Recency" not in levers
    assert "How satisfaction acts" in drivers  # the response curve


@pytest.mark.reliability("security: report text containing <script>")
def test_every_data_string_is_escaped(site: dict[str, str]) -> None:
    for html in site.values():
        assert "<script>" not in html and "onerror=alert(1)>" not in html
        assert "<b>unresolved" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in site["index.html"]
    assert "&lt;b&gt;unresolved&lt;/b&gt;" in site["index.html"]  # an actionable reason
    assert EVIL_ID not in site["index.html"]


def test_images_are_embedded_and_nothing_is_fetched(site: dict[str, str]) -> None:
    for name, html in site.items():
        sources = re.findall(r'<img src="([^"]*)"', html)
        assert sources or name == "method.html"
        assert all(s.startswith("data:image/png;base64,") for s in sources)
        assert "http://" not in html and "https://" not in html
    # churn page: concept bars, beeswarm, >= 4 dependence plots, calibration, lift
    assert site["churn.html"].count("data:image/png;base64,") >= 8


def test_numbers_match_the_inputs(site: dict[str, str], report_inputs: ReportInputs) -> None:
    index, method = site["index.html"], site["method.html"]
    assert "0.812" in method and "0.701" in method and "0.733" in method  # AUCs of metrics.json
    assert "(+0.079)" in method  # what satisfaction adds over RFM alone
    # the report's numbers are those of the scores, re-scored nowhere
    numbers = headline(report_inputs.scores, "churn_probability", "repurchase_probability")
    assert numbers["value_at_risk"] == pytest.approx(report_inputs.scores["value_at_risk"].sum())
    assert f"<strong>{numbers['customers']}</strong>" in index
    assert f"<strong>{numbers['predicted_churners']}</strong>" in index
    assert f"<strong>{numbers['value_at_risk']:,.0f}</strong>" in index
    assert "duplicate_row" in method and "late_delivery_share" in method
    assert "Recency" in index  # a top driver, in words
    # customer value: what the number is, its tiers and its quality next to the baselines
    assert "expected spend in the next 180 days" in index
    assert "By value tier" in index and "0.720" in method and "0.570" in method


def test_satisfaction_curve_is_drawn(site: dict[str, str]) -> None:
    assert "the satisfaction curve" in site["churn.html"]


def test_titles_take_the_horizon_from_the_target(site: dict[str, str]) -> None:
    assert "Churn (no order in the next 90 days)" in site["index.html"]
    assert "Repurchase (an order within the next 30 days)" in site["repurchase.html"]


def test_the_method_section_shows_the_choices_and_the_population(site: dict[str, str]) -> None:
    method = site["method.html"][site["method.html"].index('<section id="method">') :]
    assert "Settings chosen from the data" in method
    assert "<code>labels.targets.churn.horizon_days</code>" in method
    assert "90% of the 1,000 repeat purchases come within 72 days" in method
    assert "<code>features.active_within_days</code>" in method
    # what the filter removed, where, and the warning about it
    assert "customers with an order before the cutoff, the last within 365 days of it" in method
    assert "test cutoff 2024-10-01" in method and "400" in method and "40%" in method
    assert "<strong>Warning:</strong> population filter" in method
    assert "cutoffs, every 14 days)" in method  # the grid's step, not "monthly"


def test_amounts_carry_the_source_currency(report_inputs: ReportInputs) -> None:
    from dataclasses import replace

    euro = build_site(replace(report_inputs, scores_manifest={"currency": "EUR"}), ReportParams())[
        "index.html"
    ]
    value = report_inputs.scores["value_at_risk"].sum()
    assert f"€{value:,.0f}" in euro and "Amounts in EUR" in euro
    franc = build_site(replace(report_inputs, scores_manifest={"currency": "CHF"}), ReportParams())[
        "index.html"
    ]
    assert f"{value:,.0f} CHF" in franc
    plain = build_site(report_inputs, ReportParams())["index.html"]
    assert "states no currency" in plain and f"<strong>{value:,.0f}</strong>" in plain


def test_the_pages_are_the_same_bytes_on_every_run(report_inputs: ReportInputs) -> None:
    # dvc.lock hashes reports/site: a chart drawn with unseeded randomness (shap's beeswarm
    # shuffles its dots) would change it on every run
    import numpy as np

    before = np.random.get_state()[1].copy()
    first = build_site(report_inputs, ReportParams())
    assert (np.random.get_state()[1] == before).all()  # the global generator is left as it was
    assert build_site(report_inputs, ReportParams()) == first
