"""Drift: how far a scoring snapshot has moved from a model's reference population (pure).

The reference is the model's test-cutoff population, shipped in its ``features.json``
(:class:`pipeline.business.Reference`: quantiles of every numeric feature, each feature's
``known_share`` and ``zero_share``, quantiles of the prediction). Drift is measured as the
**population stability index** of each model input and of the model's score:

    PSI = sum over bins i of (a_i - e_i) x ln(a_i / e_i)

with ``e_i`` the reference's share of bin ``i`` and ``a_i`` the snapshot's, both floored at
:data:`EPSILON` (an empty bin would make the logarithm infinite). Customary reading: below 0.1
stable, 0.1 to 0.25 a moderate shift, above 0.25 a large one (``score.drift_warn_psi``).

Bins (:func:`bins_from_quantiles`) come from the reference alone, so every partition of a run
bins alike: the reference deciles, deduplicated (a point mass such as many zeros or a count
of 1 covers several deciles and becomes one cut); zero, when it is such a cut, is a bin of its
own whose share is the exact ``zero_share``; missing values are a bin of their own, with share
``1 - known_share``. Bin ``j`` holds values in ``[cut_{j-1}, cut_j)`` (open at both ends of the
line). The reference's share of a bin is read off its quantile table (every 1%), so it is
exact up to one quantile step. A categorical input ships no level shares: it is binned as
known / missing only.

Counts add up: a run's counts are the sums of its partitions' (:func:`add_counts`), so the
engines compute :func:`partition_counts` in the map and the PSI once, on the totals, after it.
Drift is a run-level summary in the scores manifest, never an input to a customer's row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.business import PROBABILITY_QUANTILES, QUANTILES, Reference

#: Reference quantile levels whose values cut the bins: the deciles.
CUT_LEVELS: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(1, 10))
#: Floor of a bin's share in the PSI (an empty bin adds a large, finite term).
EPSILON = 1e-4
#: A value bin the reference holds less of is merged into a neighbour: the quantile table
#: (every 1%) is exact to one step, so a smaller share could be the table's error alone.
MIN_SHARE = 0.01
#: PSI at and above which a shift is moderate (customary; large is ``score.drift_warn_psi``).
MODERATE_PSI = 0.1
#: The key of the score in a model's counts, next to its features' names.
SCORE = "score"


@dataclass(frozen=True)
class Bins:
    """The bins of one variable: cut points and the reference's share of every bin.

    Bin ``j`` (``0 .. len(cuts)``) holds values in ``[cuts[j-1], cuts[j])``; the last of the
    ``len(cuts) + 2`` shares is the missing-value bin.
    """

    cuts: tuple[float, ...]
    expected: tuple[float, ...]

    def counts(self, values: Any) -> list[int]:
        """Return how many of ``values`` fall in each bin (missing values in the last)."""
        x = np.asarray(values, dtype="float64")
        missing = np.isnan(x)
        where = np.searchsorted(np.asarray(self.cuts, dtype="float64"), x[~missing], "right")
        counts = np.bincount(where, minlength=len(self.cuts) + 1)
        return [*(int(c) for c in counts), int(missing.sum())]


def share_below(levels: Sequence[float], values: Sequence[float], x: float) -> float:
    """Return P(X < x) by the quantile table (``values`` at ``levels``), up to one step."""
    q = np.asarray(values, dtype="float64")
    if not q.size or x <= q[0]:
        return 0.0
    if x > q[-1]:
        return 1.0
    i = int(np.searchsorted(q, x, side="left"))  # the first quantile at or above x
    if q[i] == x:
        return float(levels[i])
    low, high = q[i - 1], q[i]
    return float(levels[i - 1] + (x - low) / (high - low) * (levels[i] - levels[i - 1]))


def bins_from_quantiles(
    levels: Sequence[float],
    values: Sequence[float],
    known_share: float = 1.0,
    zero_share: float | None = None,
) -> Bins:
    """Bins cut at the reference deciles; zero apart when it is a cut (see module docstring).

    ``values`` are the reference quantiles at ``levels`` (of the known values); ``zero_share``
    the share of zeros among them.
    """
    if not len(values):
        return Bins((), (known_share, 1.0 - known_share))
    deciles = [float(np.interp(level, levels, values)) for level in CUT_LEVELS]
    cuts = sorted(set(deciles))
    below = [share_below(levels, values, c) for c in cuts]
    if 0.0 in cuts and zero_share is not None:
        at = cuts.index(0.0)
        cuts.insert(at + 1, float(np.nextafter(0.0, 1.0)))
        below.insert(at + 1, below[at] + zero_share)
    # Read off a table, the shares below two cuts may cross by a step: keep them ordered.
    cumulative = np.clip(np.maximum.accumulate(np.asarray([0.0, *below, 1.0])), 0.0, 1.0)
    kept, shares = merge_small(cuts, [float(s) for s in np.diff(cumulative)], MIN_SHARE)
    return Bins(tuple(kept), (*(s * known_share for s in shares), 1.0 - known_share))


def merge_small(
    cuts: Sequence[float], shares: Sequence[float], min_share: float
) -> tuple[list[float], list[float]]:
    """Merge each bin under ``min_share`` into the next one (the last into the one before).

    ``shares`` has one more entry than ``cuts`` (bin ``j`` ends at ``cuts[j]``); merging bins
    ``k`` and ``k + 1`` removes ``cuts[k]``.
    """
    kept, merged = list(cuts), list(shares)
    j = 0
    while len(merged) > 1 and j < len(merged):
        if merged[j] >= min_share:
            j += 1
            continue
        k = j if j < len(merged) - 1 else j - 1
        merged[k : k + 2] = [merged[k] + merged[k + 1]]
        del kept[k]
        j = k
    return kept, merged


def feature_bins(reference: Reference, name: str) -> Bins:
    """Return the bins of model input ``name`` on its reference (known/missing if categorical)."""
    known = float(reference.known_share.get(name, 1.0))
    return bins_from_quantiles(
        QUANTILES, reference.features.get(name, ()), known, reference.zero_share.get(name)
    )


def score_bins(reference: Reference) -> Bins:
    """Return the bins of the model's prediction (probability or expected value)."""
    return bins_from_quantiles(PROBABILITY_QUANTILES, reference.probability)


@dataclass(frozen=True)
class ModelBins:
    """The bins of one model: of each of its inputs, in model order, and of its score."""

    features: Mapping[str, Bins]
    score: Bins

    @classmethod
    def of(cls, reference: Reference, feature_names: Sequence[str]) -> ModelBins:
        """Bin every input and the score of a model on its reference."""
        return cls({n: feature_bins(reference, n) for n in feature_names}, score_bins(reference))


def as_numbers(series: pd.Series) -> np.ndarray:
    """Return a column as floats: a categorical's level codes, missing as NaN."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy(dtype="float64")
        return np.where(codes < 0, np.nan, codes)
    return series.to_numpy(dtype="float64", na_value=np.nan)


def partition_counts(inputs: pd.DataFrame, score: Any, bins: ModelBins) -> dict[str, list[int]]:
    """Bin counts of one partition: every model input (a column of ``inputs``) and the score.

    ``inputs`` is the model's input frame (``Predictor.prepare``), ``score`` its predictions.
    JSON-ready, so that a Spark executor can send them to the driver.
    """
    counts = {name: b.counts(as_numbers(inputs[name])) for name, b in bins.features.items()}
    return {**counts, SCORE: bins.score.counts(score)}


def add_counts(parts: Iterable[Mapping[str, Sequence[int]]]) -> dict[str, list[int]]:
    """Sum bin counts over partitions, variable by variable, bin by bin."""
    total: dict[str, list[int]] = {}
    for part in parts:
        for name, counts in part.items():
            if name not in total:
                total[name] = [0] * len(counts)
            if len(total[name]) != len(counts):
                raise ValueError(f"{name}: partitions binned differently")
            total[name] = [a + int(b) for a, b in zip(total[name], counts, strict=True)]
    return total


def psi(counts: Sequence[int], expected: Sequence[float]) -> float | None:
    """Return the PSI of observed bin ``counts`` against ``expected`` shares (None: no rows)."""
    n = sum(counts)
    if n == 0:
        return None
    a = np.maximum(np.asarray(counts, dtype="float64") / n, EPSILON)
    e = np.maximum(np.asarray(expected, dtype="float64"), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def shift(value: float | None, warn_psi: float) -> str:
    """Return the size of a shift in words: "stable", "moderate" or "large" ("unknown")."""
    if value is None or not math.isfinite(value):
        return "unknown"
    if value >= warn_psi:
        return "large"
    return "moderate" if value >= min(MODERATE_PSI, warn_psi) else "stable"


@dataclass(frozen=True)
class ModelDrift:
    """What a model's drift block needs besides its counts."""

    target: str
    score_column: str
    reference_date: str | None
    reference_population: str
    bins: ModelBins

    @classmethod
    def of(
        cls,
        target: str,
        score_column: str,
        features: Mapping[str, Any],
        feature_names: Sequence[str],
    ) -> ModelDrift:
        """Read what drift needs from a model's ``features.json`` (reference, test cutoff)."""
        reference = Reference.from_dict(features.get("reference"), target)
        tested = (features.get("cutoffs") or {}).get("test") or [None]
        date = None if tested[-1] is None else str(tested[-1])[:10]
        bins = ModelBins.of(reference, feature_names)
        return cls(target, score_column, date, reference.population, bins)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def model_drift(model: ModelDrift, counts: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """One model's drift: PSI of each input and of the score, on the run's total counts."""
    features = {
        name: _rounded(psi(counts[name], b.expected))
        for name, b in model.bins.features.items()
        if name in counts
    }
    return {
        "reference": model.reference_date,
        "reference_population": model.reference_population,
        "score_column": model.score_column,
        "score_psi": _rounded(psi(counts[SCORE], model.bins.score.expected))
        if SCORE in counts
        else None,
        "features": dict(sorted(features.items())),
    }


def drift_block(
    models: Sequence[ModelDrift],
    per_partition: Sequence[Mapping[str, Mapping[str, Sequence[int]]]],
    snapshot: str | None,
    warn_psi: float,
) -> dict[str, Any]:
    """Return the manifest's ``drift``: per model, PSI of inputs and score, what passed the line.

    ``per_partition`` holds each partition's :func:`partition_counts` by target.
    """
    blocks = {
        m.target: model_drift(m, add_counts(part.get(m.target, {}) for part in per_partition))
        for m in models
    }
    return {
        "measure": "population stability index (PSI), reference deciles as bins",
        "snapshot": snapshot,
        "warn_psi": warn_psi,
        "models": blocks,
        "above_warn_psi": above_line(blocks, warn_psi),
    }


def above_line(blocks: Mapping[str, Mapping[str, Any]], warn_psi: float) -> list[dict[str, Any]]:
    """Every input and score at or above ``warn_psi``, most drifted first."""
    found = [
        {"model": target, "name": name, "psi": value}
        for target, block in blocks.items()
        for name, value in [(SCORE, block["score_psi"]), *block["features"].items()]
        if value is not None and value >= warn_psi
    ]
    return sorted(found, key=lambda item: (-item["psi"], item["model"], item["name"]))


def warning_line(block: Mapping[str, Any], top: int = 3) -> str | None:
    """Return the run's one drift warning (the ``top`` most drifted), None when nothing passed."""
    found = block.get("above_warn_psi") or []
    if not found:
        return None
    named = ", ".join(f"{f['model']} {f['name']} {f['psi']:.2f}" for f in found[:top])
    more = f" and {len(found) - top} more" if len(found) > top else ""
    return (
        f"drift: {len(found)} model input(s) or score(s) moved since the test cutoff with PSI "
        f"at or above score.drift_warn_psi={block['warn_psi']}: {named}{more} "
        "(scores manifest, block drift)"
    )
