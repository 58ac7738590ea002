"""Satisfaction features: review and survey scores, NPS, time since the last feedback."""

from __future__ import annotations

import numpy as np

from pipeline.features.prepare import DAY_US, Prepared, starts

Columns = dict[str, np.ndarray]
LOW_SCORE = 2.0


def _last(arrays: dict[str, np.ndarray], n: int, count: np.ndarray, column: str) -> np.ndarray:
    """Value of ``column`` in each customer's last row before the cutoff (NaN when none)."""
    values = arrays[column]
    if values.size == 0:
        return np.full(n, np.nan)
    has = count > 0
    row = np.where(has, starts(arrays["code"], n) + count.astype(np.int64) - 1, 0)
    return np.where(has, values[np.minimum(row, values.size - 1)], np.nan)


def _score_features(kind: str, arrays: dict[str, np.ndarray], n: int, cutoff: int) -> Columns:
    before = arrays["ts"] < cutoff
    code, score = arrays["code"][before], arrays["score"][before]
    count = np.bincount(code, minlength=n).astype(np.float64)
    total = np.bincount(code, weights=score, minlength=n)
    low = np.bincount(code, weights=(score <= LOW_SCORE).astype(np.float64), minlength=n)
    lowest = np.full(n, np.inf)
    np.minimum.at(lowest, code, score)
    has = count > 0
    last = _last(arrays, n, count, "score")
    earlier = np.divide(
        total - np.nan_to_num(last), count - 1, out=np.full(n, np.nan), where=count >= 2
    )
    return {
        f"{kind}_count": count,
        f"{kind}_score_mean": np.divide(total, count, out=np.full(n, np.nan), where=has),
        f"{kind}_score_last": last,
        f"{kind}_score_min": np.where(has, lowest, np.nan),
        f"{kind}_score_trend": last - earlier,
        f"{kind}_low_score_share": np.divide(low, count, out=np.full(n, np.nan), where=has),
    }


def satisfaction_features(prepared: Prepared, cutoff: int) -> Columns:
    """Per-customer satisfaction features at ``cutoff``; empty when the source has no feedback.

    Counts are 0 for customers who never gave feedback; means, last values and the NPS group are
    then NaN ("never happened"), and ``has_feedback`` says so explicitly.
    """
    fb, n = prepared.feedback, prepared.n
    if fb is None:
        return {}
    out: Columns = {}
    for kind in ("review", "survey"):
        out.update(_score_features(kind, fb[kind], n, cutoff))
    nps = fb["nps"]
    nps_count = np.bincount(nps["code"][nps["ts"] < cutoff], minlength=n).astype(np.float64)
    nps_last = _last(nps, n, nps_count, "score")
    out["nps_last"] = nps_last
    # promoter 9-10, passive 7-8, detractor 0-6; -1 = no NPS answer before the cutoff.
    group = np.select([nps_last >= 9, nps_last >= 7, nps_last >= 0], [2, 1, 0], default=-1)
    out["nps_group"] = group.astype(np.int16)
    anyfb = fb["any"]
    any_count = np.bincount(anyfb["code"][anyfb["ts"] < cutoff], minlength=n).astype(np.float64)
    last_ts = _last(anyfb, n, any_count, "ts")
    out["days_since_last_feedback"] = np.where(any_count > 0, (cutoff - last_ts) / DAY_US, np.nan)
    out["has_feedback"] = (any_count > 0).astype(np.float64)
    return out
