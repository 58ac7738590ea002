"""The report's "Change since the last run" and "Drift" sections, from the scores manifest (pure).

:func:`change_context` turns the manifest's ``change`` block (:mod:`pipeline.change`) and
``drift`` block (:mod:`pipeline.drift`) into what ``templates/change.html`` shows a marketing
manager: customers newly at risk, value at risk then and now, and a short table of the inputs
and scores that moved most since the models were tested, in words, with a warning above the
run's ``score.drift_warn_psi``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.drift import MODERATE_PSI, SCORE, shift
from pipeline.reasons import FeatureDictionary

#: Rows of the drift table: the models' scores, then the most shifted inputs.
DRIFT_ROWS = 10
#: Inputs named in the warning sentence.
WARNING_NAMES = 3
#: A shift's size (:func:`pipeline.drift.shift`) as the table says it.
SHIFT_WORDS = {
    "stable": "stable",
    "moderate": "moderate shift",
    "large": "large shift",
    "unknown": "not measured",
}


def change_context(
    scores_manifest: Mapping[str, Any] | None, dictionary: FeatureDictionary
) -> dict[str, Any]:
    """Return the context of ``change.html``: ``change`` and ``drift``."""
    manifest = scores_manifest or {}
    return {
        "change": change_figures(manifest.get("change")),
        "drift": drift_table(manifest.get("drift"), dictionary),
    }


def change_figures(block: Mapping[str, Any] | None) -> dict[str, Any]:
    """Figures of this run against the previous one, or one sentence why there are none."""
    if not block or block.get("previous") is None:
        notes = list((block or {}).get("notes") or [])
        why = notes[0] if notes else "the scores were written without a comparison"
        return {
            "available": False,
            "sentence": f"No earlier scores to compare with ({why}).",
        }
    return {
        "available": True,
        "then": block.get("as_of_then"),
        "now": block.get("as_of_now"),
        "customers_then": block.get("customers_then"),
        "customers_now": block.get("customers_now"),
        "at_risk": "newly_at_risk" in block,
        "newly_at_risk": block.get("newly_at_risk"),
        "no_longer_at_risk": block.get("no_longer_at_risk"),
        "at_risk_then": block.get("at_risk_then"),
        "at_risk_now": block.get("at_risk_now"),
        "value": "value_at_risk_now" in block,
        "value_at_risk_then": block.get("value_at_risk_then"),
        "value_at_risk_now": block.get("value_at_risk_now"),
        "value_at_risk_newly_at_risk": block.get("value_at_risk_newly_at_risk"),
        "notes": list(block.get("notes") or []),
    }


def score_words(column: str) -> str:
    """Return a model's score in words: ``churn_probability`` -> "Churn probability"."""
    words = column.replace("_", " ")
    return words[:1].upper() + words[1:]


def _rows(blocks: Mapping[str, Any], dictionary: FeatureDictionary) -> list[dict[str, Any]]:
    """One row per score and per input (its largest PSI over the models that use it)."""
    scores = [
        {
            "name": SCORE,
            "what": score_words(str(block.get("score_column") or target)),
            "is_score": True,
            "psi": block.get("score_psi"),
            "reference": block.get("reference"),
        }
        for target, block in blocks.items()
    ]
    worst: dict[str, dict[str, Any]] = {}
    for block in blocks.values():
        for name, value in (block.get("features") or {}).items():
            if value is None or (name in worst and worst[name]["psi"] >= value):
                continue
            worst[name] = {
                "name": name,
                "what": dictionary.info(name).description.rstrip(". "),
                "is_score": False,
                "psi": value,
                "reference": block.get("reference"),
            }
    inputs = sorted(worst.values(), key=lambda row: (-row["psi"], row["name"]))
    return scores + inputs


def drift_table(block: Mapping[str, Any] | None, dictionary: FeatureDictionary) -> dict[str, Any]:
    """Return the drift table (scores, then the most shifted inputs) and the warning."""
    if not block or not block.get("models"):
        return {"available": False}
    warn_psi = float(block["warn_psi"])
    rows = _rows(block["models"], dictionary)
    scores = [r for r in rows if r["is_score"]]
    inputs = [r for r in rows if not r["is_score"]]
    shown = scores + inputs[: max(DRIFT_ROWS - len(scores), 0)]
    for row in shown:
        row["shift"] = SHIFT_WORDS[shift(row["psi"], warn_psi)]
    large = [r for r in rows if r["psi"] is not None and r["psi"] >= warn_psi]
    references = sorted({str(r["reference"]) for r in scores if r["reference"]})
    return {
        "available": True,
        "warn_psi": warn_psi,
        "moderate_psi": min(MODERATE_PSI, warn_psi),
        "snapshot": block.get("snapshot"),
        "references": references,
        "rows": shown,
        "hidden": len(rows) - len(shown),
        "large": len(large),
        "large_names": [r["what"] for r in large[:WARNING_NAMES]],
    }
