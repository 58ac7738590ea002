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
from pipeline.report.customers import headline, segment_table, top_value_at_risk
from pipeline.report.method import (
    SHORT_NAMES,
    data_and_method,
    quality_rows,
    quality_sentences,
)
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


def align_explained(shap_table: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    """Feature values of the explained rows, in the SHAP table's row order."""
    keys = list(KEYS)
    left = shap_table[keys].copy()
    left["_row"] = range(len(left))
    names = [c for c in shap_table.columns if c not in (*keys, "base_value")]
    right = panel[[*keys, *[n for n in names if n in panel.columns]]]
    merged = left.merge(right, on=keys, how="left", validate="one_to_one")
    return merged.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=True,  # every data-derived string is escaped, in every template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, d=0: "n/a" if v is None or pd.isna(v) else f"{100 * v:.{d}f}%"
    env.filters["money"] = lambda v: "n/a" if v is None or pd.isna(v) else f"{v:,.0f}"
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


def build_site(inputs: ReportInputs, settings: ReportParams) -> dict[str, str]:
    """Render every page of the report; returns ``{file name: html}``."""
    env = _environment()
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
    top = top_value_at_risk(scores, settings.top_customers)
    reason_cols = [c for c in top.columns if c.startswith("reason_")]
    common = {"targets": list(pages), "source": inputs.source}
    index = env.get_template("index.html").render(
        **common,
        page="index",
        numbers=numbers,
        settings=settings,
        business=business,
        risk_page=pages.get(business.risk_target),
        risk_title=risk.target.title if risk else business.risk_target,
        tier_title=tier.target.title if tier else business.tier_target,
        risk_column=risk_column,
        value_words=value_words(inputs.scores_manifest),
        value_quality=value_quality(inputs.value_metrics),
        **change_context(inputs.scores_manifest, inputs.dictionary),
        pages=pages,
        segments=segments.to_dict(orient="records"),
        segment_chart=charts.segment_bars(segments, "Value at risk by RFM segment")
        if len(segments) and numbers["has_churn"]
        else None,
        tiers=tiers.to_dict(orient="records"),
        value_tiers=value_tiers.to_dict(orient="records") if numbers["has_value"] else [],
        top_customers=[
            {
                "expected_value": None,
                **row,
                "reasons": [row[c] for c in reason_cols if not pd.isna(row[c])],
            }
            for row in top.to_dict(orient="records")
        ],
        method=data_and_method(
            inputs.manifest,
            inputs.feature_summary,
            {t: ti.metrics for t, ti in inputs.targets.items()},
            {t: ti.model_features for t, ti in inputs.targets.items()},
            scores_as_of=str(scores["as_of"].iloc[0]) if len(scores) else None,
        ),
    )
    site = {"index.html": index}
    for target, context in pages.items():
        site[f"{target}.html"] = env.get_template("target.html").render(
            **common, page=target, t=context, settings=settings
        )
    logger.info("report: %d pages, %d customers", len(site), numbers["customers"])
    return site
