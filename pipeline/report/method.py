"""Model-quality sentences and the data-and-method section, from metrics and manifests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BASELINE_NAMES = {
    "recency": "recency rule (days since last order)",
    "rfm_logistic": "RFM logistic regression",
    "rfm_lgbm": "RFM-only LightGBM",
}
#: Calibration error (share) below which probabilities are read as rates.
WELL_CALIBRATED = 0.03
#: AUC gain over the RFM-only model that counts as a real contribution of the other features.
MATERIAL_AUC_GAIN = 0.005
SHORT_NAMES = {
    "recency": "recency rule",
    "rfm_logistic": "RFM logistic",
    "rfm_lgbm": "RFM LightGBM",
}
METRICS = ("roc_auc", "pr_auc", "lift_top_decile", "capture_top_decile", "brier", "ece")


def quality_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per model (ours first, then the baselines) with the headline metrics."""
    rows = [{"name": "this model", "is_model": True, **_pick(metrics.get("model", {}))}]
    for key, values in (metrics.get("baselines") or {}).items():
        rows.append({"name": BASELINE_NAMES.get(key, key), "is_model": False, **_pick(values)})
    return rows


def _pick(values: Mapping[str, Any]) -> dict[str, Any]:
    return {m: values.get(m) for m in METRICS}


def quality_sentences(
    metrics: Mapping[str, Any], outcome: str, mean_gap: float | None = None
) -> dict[str, str]:
    """One plain sentence each on AUC, calibration, lift and what satisfaction adds.

    ``mean_gap`` is the mean predicted probability minus the observed rate on the test rows
    (positive: the model over-predicts).
    """
    model = metrics.get("model") or {}
    base = metrics.get("baselines") or {}
    out: dict[str, str] = {}
    auc = model.get("roc_auc")
    if auc is not None:
        text = (
            f"AUC {auc:.3f}: given one customer who went on to {outcome} and one who did not, the "
            f"model ranks the first higher {100 * auc:.0f}% of the time (50% is a coin toss)."
        )
        if "recency" in base:
            text += f" The recency rule alone reaches {base['recency']['roc_auc']:.3f}."
        out["auc"] = text
    ece = model.get("ece")
    if ece is not None:
        text = f"Calibration error {100 * ece:.1f} points: "
        if ece <= WELL_CALIBRATED:
            text += (
                f"when the model says 30%, about {30 - 100 * ece:.0f}-{30 + 100 * ece:.0f} in 100 "
                f"such customers {outcome}; the probabilities can be read as they are."
            )
        else:
            way = "over" if (mean_gap or 0) > 0 else "under"
            text += (
                f"on the test period the model {way}-states the {outcome} rate "
                f"(by {100 * abs(mean_gap or ece):.1f} points on average), so read its "
                "probabilities as a ranking of customers more than as exact rates."
            )
        out["calibration"] = text
    lift = model.get("lift_top_decile")
    if lift is not None:
        text = (
            f"Lift {lift:.1f}: the 10% of customers the model ranks first hold {lift:.1f} times "
            f"as many {outcome} cases as a random 10%"
        )
        if "recency" in base and "lift_top_decile" in base["recency"]:
            text += f" (recency rule: {base['recency']['lift_top_decile']:.1f})"
        out["lift"] = text + "."
    rfm = (base.get("rfm_lgbm") or {}).get("roc_auc")
    if auc is not None and rfm is not None:
        gain = auc - rfm
        verdict = (
            "they rank customers better as well"
            if gain > MATERIAL_AUC_GAIN
            else "they rank customers little better, since who is leaving already shows in how "
            "they buy; they matter for why a customer is at risk and what to do about it (the "
            "drivers)"
        )
        out["satisfaction"] = (
            f"Ranking with recency, frequency and spend only reaches AUC {rfm:.3f}; with "
            f"satisfaction, service, delivery, returns and price as well, {auc:.3f} "
            f"({gain:+.3f}): {verdict}."
        )
    return out


def step_words(grid: Mapping[str, Any]) -> str:
    """Return the cutoff step in words ("monthly", "every 14 days") from ``grid``."""
    if grid.get("step_days"):
        return f"every {grid['step_days']} days"
    months = grid.get("step_months") or 1
    return "monthly" if months == 1 else f"every {months} months"


def population_and_choices(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Return the population rule, what its filter removed and the params chosen.

    From the features ``summary.json`` (``population``, ``derived``, ``grid``); empty entries
    for an older summary without them.
    """
    population = summary.get("population") or {}
    filters = [
        {"param": param, **count}
        for param, counts in (population.get("removed_by") or {}).items()
        for count in counts.values()
    ]
    return {
        "population": {
            "rule": population.get("rule"),
            "filters": filters,
            "warnings": list(population.get("warnings") or []),
            "max_filtered_share": population.get("max_filtered_share"),
        },
        "derived": [
            {"param": param, "value": entry.get("value"), "why": entry.get("why")}
            for param, entry in (summary.get("derived") or {}).items()
        ],
        "step": step_words(summary.get("grid") or {}),
    }


def data_and_method(
    manifest: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    metrics: Mapping[str, Mapping[str, Any]],
    model_features: Mapping[str, Mapping[str, Any]],
    scores_as_of: str | None = None,
) -> dict[str, Any]:
    """Source, windows, cutoffs, population, choices, cleaning and absent features (section 5)."""
    manifest = manifest or {}
    summary = summary or {}
    reasons = manifest.get("rejected_by_reason") or {}
    absent = (summary.get("features") or {}).get("absent") or {}
    if isinstance(absent, list):
        absent = {name: "" for name in absent}
    cutoffs: dict[str, Any] = {}
    for target, meta in model_features.items():
        for split, values in (meta.get("cutoffs") or {}).items():
            if values:
                cutoffs.setdefault(split, [values[0], values[-1], len(values)])
        if target in metrics and metrics[target].get("test_cutoff"):
            cutoffs["test"] = [metrics[target]["test_cutoff"]] * 2 + [1]
    horizons = {
        t: m.get("horizon_days") for t, m in model_features.items() if m.get("horizon_days")
    }
    windows = next(
        (m.get("windows_days") for m in model_features.values() if m.get("windows_days")), None
    )
    return {
        **population_and_choices(summary),
        "source": manifest.get("source"),
        "as_of": manifest.get("as_of"),
        "data": summary.get("data") or {},
        "inputs": [
            {k: item.get(k) for k in ("source_file", "table", "rows_read", "accepted", "rejected")}
            for item in manifest.get("inputs") or []
        ],
        "totals": {k: manifest.get(k) for k in ("rows_read", "accepted", "rejected")},
        "rejected_by_reason": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "provided": manifest.get("provided") or {},
        "absent": sorted(absent.items()),
        "cutoffs": {s: cutoffs[s] for s in ("train", "valid", "test") if s in cutoffs},
        "horizons": horizons,
        "windows": windows,
        "scoring_as_of": scores_as_of,
        "rows": summary.get("rows") or {},
    }
