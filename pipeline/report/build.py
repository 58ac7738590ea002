"""Assemble the report: numbers and charts from the pipeline's outputs -> HTML pages.

Pure: :func:`build_site` takes frames and dicts (read by the CLI through :mod:`pipeline.io`)
and returns ``{file name: html}``. Pages: ``index.html`` (sections 1-5 for everyone) and one
``<target>.html`` per model (drivers and model quality in depth). Jinja2 autoescape is on
for every template, so a customer id or a reason containing ``<script>`` is shown as text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
import pandas as pd

from pipeline.config import BusinessParams, ReportParams
from pipeline.explain import KEYS
from pipeline.modeling.metrics import curves
from pipeline.reasons import FeatureDictionary
from pipeline.report import charts
from pipeline.report.change import change_context
from pipeline.report.contacts import contact_list
from pipeline.report.customers import headline, segment_table
from pipeline.report.drivers import (
    at_risk_rows,
    concept_effects,
    driver_summary,
    satisfaction_curve_feature,
)
from pipeline.report.method import (
    BASELINE_NAMES,
    SHORT_NAMES,
    data_and_method,
    quality_rows,
    quality_sentences,
)
from pipeline.schemas import CONTACT_FIELDS
from pipeline.targets import Target

logger = logging.getLogger(__name__)

SATISFACTION = "satisfaction"


@dataclass(frozen=True)
class TargetInputs:
    """One model's outputs: metrics, test predictions, SHAP table and explain summaries."""

    target: Target
    metrics: Mapping[str, Any]
    shap: pd.DataFrame
    explained: pd.DataFrame
    concepts: pd.DataFrame
    features: pd.DataFrame
    test_predictions: pd.DataFrame | None = None
    model_features: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows."""

    targets: Mapping[str, TargetInputs]
    dictionary: FeatureDictionary
    scores: pd.DataFrame
    business: BusinessParams
    scores_manifest: Mapping[str, Any] | None = None
    manifest: Mapping[str, Any] | None = None
    feature_summary: Mapping[str, Any] | None = None
    source: str = ""
    # reports/metrics/value.json: the value model and its baselines on the test cutoff.
    value_metrics: Mapping[str, Any] | None = None
    # The clean customers table, for the contact list's contact fields (name, email, phone).
    customers: pd.DataFrame | None = None


def align_explained(shap_table: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    """Feature values of the explained rows, in the SHAP table's row order."""
    keys = list(KEYS)
    left = shap_table[keys].copy()
    left["_row"] = range(len(left))
    names = [c for c in shap_table.columns if c not in (*keys, "base_value")]
    right = panel[[*keys, *[n for n in names if n in panel.columns]]]
    merged = left.merge(right, on=keys, how="left", validate="one_to_one")
    return merged.sort_values("_row").drop(columns="_row").reset_index(drop=True)


#: Symbols written before an amount; any other ISO 4217 code is written after it.
CURRENCY_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$", "JPY": "¥", "INR": "₹"}


def money_format(currency: str | None) -> Any:
    """Return the ``money`` filter: whole units in ``currency`` ("€1,234", "1,234 CHF")."""

    def money(value: Any) -> str:
        if value is None or pd.isna(value):
            return "n/a"
        amount = f"{value:,.0f}"
        if not currency:
            return amount
        symbol = CURRENCY_SYMBOLS.get(currency)
        if symbol is None:
            return f"{amount} {currency}"
        return f"-{symbol}{amount[1:]}" if amount.startswith("-") else f"{symbol}{amount}"

    return money


def _environment(currency: str | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=True,  # every data-derived string is escaped, in every template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, d=0: "n/a" if v is None or pd.isna(v) else f"{100 * v:.{d}f}%"
    env.filters["money"] = money_format(currency)
    env.filters["day"] = lambda v: str(v)[:10] if v else "n/a"
    env.filters["nodot"] = lambda v: str(v).rstrip(". ")
    env.filters["lcfirst"] = lambda v: v[:1].lower() + v[1:] if v[1:2].islower() else v
    env.filters["num"] = lambda v, d=0: "n/a" if v is None or pd.isna(v) else f"{v:,.{d}f}"
    return env


def driver_words(
    concepts: pd.DataFrame, features: pd.DataFrame, dictionary: FeatureDictionary, n: int = 3
) -> list[dict[str, str]]:
    """Return the ``n`` strongest concept groups, each with its strongest feature in words."""
    out = []
    for concept in concepts["concept"].head(n):
        top = features.loc[features["concept"] == concept, "feature"].head(1).tolist()
        detail = dictionary.info(top[0]).description.rstrip(". ") if top else ""
        out.append({"concept": dictionary.label(str(concept)), "feature": detail})
    return out


def _dependence_features(features: pd.DataFrame, n: int) -> list[str]:
    chosen = features["feature"].head(n).tolist()
    satisfaction = features.loc[features["concept"] == SATISFACTION, "feature"].head(1).tolist()
    return chosen + [f for f in satisfaction if f not in chosen]


def target_context(
    inputs: TargetInputs, dictionary: FeatureDictionary, settings: ReportParams
) -> dict[str, Any]:
    """Numbers, sentences and charts of one target's page."""
    outcome = inputs.target.outcome
    labels = {c: dictionary.label(c) for c in inputs.concepts["concept"]}
    names = inputs.features["feature"].tolist()
    base = float(inputs.shap["base_value"].iloc[0]) if len(inputs.shap) else 0.0
    dependence = [
        {
            "feature": name,
            "description": dictionary.info(name).description,
            "is_satisfaction": dictionary.info(name).concept == SATISFACTION,
            "image": charts.dependence(
                inputs.explained[name], inputs.shap[name], base, dictionary, outcome
            ),
        }
        for name in _dependence_features(inputs.features, settings.dependence_plots)
        if name in inputs.explained.columns
    ]
    curve = None
    mean_gap = None
    if inputs.test_predictions is not None and len(inputs.test_predictions):
        y = inputs.test_predictions["label"].to_numpy(dtype="int64")
        p = inputs.test_predictions["probability"].to_numpy(dtype="float64")
        mean_gap = float(p.mean() - y.mean())
        if 0 < y.sum() < len(y):
            curve = curves(y, p)
    model = inputs.metrics.get("model", {})
    baselines = inputs.metrics.get("baselines", {})
    return {
        "target": inputs.target.name,
        "title": inputs.target.title,
        "ranking": inputs.target.ranking,
        "outcome": outcome,
        "concepts": [
            {**row, "label": labels[row["concept"]]}
            for row in inputs.concepts.to_dict(orient="records")
        ],
        "top_features": [
            {**row, "description": dictionary.info(row["feature"]).description}
            for row in inputs.features.head(settings.top_features).to_dict(orient="records")
        ],
        "drivers": driver_words(inputs.concepts, inputs.features, dictionary),
        "concept_chart": charts.concept_bar(inputs.concepts, labels, outcome),
        "beeswarm": charts.beeswarm(
            inputs.shap, inputs.explained, names, min(settings.top_features, len(names))
        ),
        "dependence": dependence,
        "rows_explained": len(inputs.shap),
        "quality": quality_rows(inputs.metrics),
        "sentences": quality_sentences(inputs.metrics, outcome, mean_gap),
        "calibration_chart": charts.calibration(curve["calibration"], outcome) if curve else None,
        "lift_chart": charts.lift(
            curve["lift"],
            {
                SHORT_NAMES.get(k, k): v["lift_top_decile"]
                for k, v in baselines.items()
                if "lift_top_decile" in v
            },
            float(model.get("lift_top_decile", float("nan"))),
        )
        if curve
        else None,
    }


def value_words(scores_manifest: Mapping[str, Any] | None) -> str:
    """Return what ``expected_value`` is, in words ("expected spend in the next 180 days")."""
    meaning = (scores_manifest or {}).get("expected_value") or {}
    return str(meaning.get("meaning") or "expected spend")


VALUE_NAMES = {"model": "value model", "btyd": "BTYD (BG/NBD x Gamma-Gamma)"}


def value_quality(metrics: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Rows of the value model's test quality next to its baselines (empty without one)."""
    if not metrics:
        return []
    rows = [("model", metrics["model"]), *metrics.get("baselines", {}).items()]
    return [
        {
            "name": VALUE_NAMES.get(name, name.replace("_", " ")),
            "normalized_gini": m["normalized_gini"],
            "top_decile_capture": m["top_decile_capture"],
            "decile_mape": m["decile_mape"],
            "total_error_pct": m["total_error_pct"],
        }
        for name, m in rows
    ]


def contacts_of(inputs: ReportInputs, settings: ReportParams) -> pd.DataFrame:
    """Return the contact list (``contact_list.csv``) of :func:`.contacts.contact_list`."""
    business = inputs.business
    return contact_list(
        inputs.scores,
        settings.contact_budget,
        business.actions,
        f"{business.risk_target}_probability",
        inputs.customers,
    )


def risk_drivers(
    risk: TargetInputs | None, business: BusinessParams, dictionary: FeatureDictionary
) -> dict[str, Any]:
    """Signals and levers of the risk model among customers at risk, and their chart."""
    if risk is None:
        return {"signals": [], "levers": [], "customers": 0, "chart": None, "curve": None}
    rows = at_risk_rows(
        risk.shap, risk.test_predictions, business.risk_high, risk.target.risk_direction
    )
    effects = concept_effects(
        risk.shap, dictionary, rows, business.levers, risk.target.risk_direction
    )
    curve_feature = satisfaction_curve_feature(
        risk.features, dictionary, list(risk.explained.columns)
    )
    curve = None
    if curve_feature is not None:
        base = float(risk.shap["base_value"].iloc[0]) if len(risk.shap) else 0.0
        curve = {
            "feature": curve_feature,
            "description": dictionary.info(curve_feature).description,
            "image": charts.dependence(
                risk.explained[curve_feature],
                risk.shap[curve_feature],
                base,
                dictionary,
                risk.target.outcome,
            ),
        }
    return {
        **driver_summary(effects),
        "chart": charts.effect_bars(effects, risk.target.outcome) if len(rows) else None,
        "curve": curve,
    }


def plain_quality(pages: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per binary model: the share of real cases its top 10% finds, next to the recency rule."""
    out = []
    for context in pages.values():
        rows = {r["name"]: r for r in context["quality"]}
        model = next((r for r in context["quality"] if r["is_model"]), None)
        if model is None or model.get("capture_top_decile") is None:
            continue
        recency = rows.get(BASELINE_NAMES["recency"], {})
        out.append(
            {
                "title": context["title"],
                "outcome": context["outcome"],
                "ranking": context["ranking"],
                "capture": model["capture_top_decile"],
                "recency_capture": recency.get("capture_top_decile"),
                "ece": model.get("ece"),
            }
        )
    return out


def build_site(inputs: ReportInputs, settings: ReportParams) -> dict[str, str]:
    """Render every page of the report; returns ``{file name: html}``.

    ``index.html`` is for everyone (business words only), ``method.html`` holds the data,
    the method, model quality in the usual measures and a glossary, and each
    ``<target>.html`` the drivers and quality of one model in depth.
    """
    currency = (inputs.scores_manifest or {}).get("currency")
    env = _environment(currency)
    pages = {t: target_context(ti, inputs.dictionary, settings) for t, ti in inputs.targets.items()}
    business = inputs.business
    risk = inputs.targets.get(business.risk_target)
    tier = inputs.targets.get(business.tier_target)
    risk_column = f"{business.risk_target}_probability"
    tier_column = f"{business.tier_target}_probability"
    scores = inputs.scores
    numbers = headline(scores, risk_column, tier_column)
    segments = segment_table(scores, "rfm_segment", risk_column, tier_column)
    tiers = segment_table(scores, "loyalty_tier", risk_column, tier_column)
    value_tiers = segment_table(scores, "value_tier", risk_column, tier_column)
    contacts = contacts_of(inputs, settings)
    spend = value_words(inputs.scores_manifest)
    common = {
        "targets": list(pages),
        "source": inputs.source,
        "currency": currency,
        "value_words": spend,
    }
    index = env.get_template("index.html").render(
        **common,
        page="index",
        numbers=numbers,
        settings=settings,
        business=business,
        risk_title=risk.target.title if risk else business.risk_target,
        risk_event=risk.target.event if risk else "",
        tier_title=tier.target.title if tier else business.tier_target,
        **change_context(inputs.scores_manifest, inputs.dictionary),
        pages=pages,
        drivers=risk_drivers(risk, business, inputs.dictionary),
        segments=segments.to_dict(orient="records"),
        segment_chart=charts.segment_bars(segments, "Value at risk by customer segment", spend)
        if len(segments) and numbers["has_churn"]
        else None,
        tiers=tiers.to_dict(orient="records"),
        value_tiers=value_tiers.to_dict(orient="records") if numbers["has_value"] else [],
        contacts=contacts.head(settings.top_customers).to_dict(orient="records"),
        contact_count=len(contacts),
        contacts_without_reason=int(contacts["reason"].isna().sum()),
        contact_fields=[c for c in CONTACT_FIELDS if c in contacts.columns],
        plain_quality=plain_quality(pages),
    )
    method = env.get_template("method.html").render(
        **common,
        page="method",
        pages=pages,
        value_quality=value_quality(inputs.value_metrics),
        method=data_and_method(
            inputs.manifest,
            inputs.feature_summary,
            {t: ti.metrics for t, ti in inputs.targets.items()},
            {t: ti.model_features for t, ti in inputs.targets.items()},
            scores_as_of=str(scores["as_of"].iloc[0]) if len(scores) else None,
        ),
    )
    site = {"index.html": index, "method.html": method}
    for target, context in pages.items():
        site[f"{target}.html"] = env.get_template("target.html").render(
            **common, page=target, t=context, settings=settings
        )
    logger.info("report: %d pages, %d customers", len(site), numbers["customers"])
    return site
