"""Feedback rows (reviews, surveys, NPS, complaints) and customer attributes."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from pipeline.cleaning.parsing import parse_bool, parse_number, parse_timestamp
from pipeline.cleaning.reasons import Reason
from pipeline.cleaning.rules import CleanRules
from pipeline.cleaning.transactions import TableResult, Verdicts, common_checks, date_format
from pipeline.schemas import CONTACT_FIELDS

KINDS = ("review", "survey", "nps", "complaint")
SCORE_RANGE = {"review": (1.0, 5.0), "survey": (1.0, 5.0), "nps": (0.0, 10.0)}


def clean_feedback(rows: pd.DataFrame, rules: CleanRules, as_of: pd.Timestamp) -> TableResult:
    """Validate feedback rows; scores must lie in their kind's range; complaints carry no score."""
    verdicts = Verdicts(rows.index)
    ids_normalised: Counter[str] = Counter()
    ids, stamps = common_checks(
        rows, verdicts, rules, "feedback_ts", as_of, ids_normalised=ids_normalised
    )
    kind = rows["kind"].str.strip().str.lower()
    verdicts.reject(~kind.isin(KINDS).fillna(False), Reason.INVALID_KIND)
    out = pd.DataFrame({"customer_id": ids, "feedback_ts": stamps, "kind": kind})
    if "score" in rows.columns:
        score, bad = parse_number(rows["score"], rules.decimal)
        needs_score = kind.isin(tuple(SCORE_RANGE)).fillna(False)
        verdicts.reject(bad | (needs_score & score.isna()), Reason.NON_NUMERIC_SCORE)
        low = kind.map(lambda k: SCORE_RANGE.get(k, (float("-inf"),))[0]).astype("float64")
        high = kind.map(lambda k: SCORE_RANGE.get(k, (0.0, float("inf")))[1]).astype("float64")
        out_of_range = needs_score & ((score < low) | (score > high))
        scored_complaint = (kind == "complaint").fillna(False) & score.notna()  # must be empty
        verdicts.reject(out_of_range | scored_complaint, Reason.SCORE_OUT_OF_RANGE)
        out["score"] = score
    if "resolved" in rows.columns:
        resolved, bad = parse_bool(rows["resolved"])
        verdicts.reject(bad, Reason.NON_BOOLEAN_RESOLVED)
        out["resolved"] = resolved
    if "resolution_hours" in rows.columns:
        hours, bad = parse_number(rows["resolution_hours"], rules.decimal)
        verdicts.reject(bad | (hours < 0), Reason.NON_NUMERIC_RESOLUTION_HOURS)
        verdicts.reject(hours > rules.max_resolution_hours, Reason.RESOLUTION_HOURS_OUT_OF_RANGE)
        out["resolution_hours"] = hours
    feedback = out[verdicts.accepted].sort_values(
        ["customer_id", "feedback_ts", "kind"], kind="stable", ignore_index=True
    )
    return TableResult({"feedback": feedback}, verdicts.reason, id_counts(ids_normalised))


def clean_customers(rows: pd.DataFrame, rules: CleanRules, as_of: pd.Timestamp) -> TableResult:
    """Validate customer attributes; one row per customer (later repeats are rejected)."""
    verdicts = Verdicts(rows.index)
    ids_normalised: Counter[str] = Counter()
    ids, _ = common_checks(rows, verdicts, rules, "__none__", as_of, ids_normalised=ids_normalised)
    out = pd.DataFrame({"customer_id": ids})
    if "signup_ts" in rows.columns:
        signup, bad = parse_timestamp(
            rows["signup_ts"], date_format(rules, "signup_ts"), rules.timezone
        )
        verdicts.reject(bad, Reason.BAD_DATE)
        verdicts.reject(signup > as_of, Reason.FUTURE_DATE)
        out["signup_ts"] = signup
    if "loyalty_member" in rows.columns:
        member, bad = parse_bool(rows["loyalty_member"])
        verdicts.reject(bad, Reason.NON_BOOLEAN_LOYALTY_MEMBER)
        out["loyalty_member"] = member
    if "region" in rows.columns:
        out["region"] = rows["region"].str.strip()
    for field in CONTACT_FIELDS:
        if field in rows.columns:
            text = rows[field].str.strip()
            out[field] = text.where(text != "")
    # a repeat of an accepted id only counts against rows that are still accepted
    repeated = ids[verdicts.accepted].duplicated(keep="first").reindex(ids.index, fill_value=False)
    verdicts.reject(repeated, Reason.DUPLICATE_CUSTOMER)
    customers = out[verdicts.accepted].sort_values("customer_id", kind="stable", ignore_index=True)
    return TableResult({"customers": customers}, verdicts.reason, id_counts(ids_normalised))


def id_counts(ids_normalised: Counter[str]) -> dict[str, object]:
    """Return the ``counts`` of a table whose only id column is the customer id."""
    return {"ids_normalised": {"customer_id": int(ids_normalised["customer_id"])}}
