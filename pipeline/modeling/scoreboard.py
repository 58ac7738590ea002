"""The quality scoreboard: the model against every baseline on the test cutoff (pure core).

``train`` stores, per test customer, the label, the model's probability, every baseline's score
and the days since the customer's last order (``test_predictions.parquet``).
:func:`scoreboard` turns that table into, per population (everyone, and the *early warning*
population of customers who ordered within ``early_warning_days`` before the cutoff, where
recency gives nothing away), the metrics of each scorer and a paired bootstrap 95% interval of
model minus each baseline: the test customers are resampled with replacement ``n_boot`` times
(fixed seed), and every scorer is scored on the same resamples, so the interval is that of the
*difference*, not of two separate figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.errors import DataError
from pipeline.modeling import baselines, metrics
from pipeline.targets import Target

MODEL = "model"
#: Baselines in scoreboard order; ``recency`` is a ranking rule (no probability metrics).
BASELINES = ("recency", "rfm_logistic", "rfm_lgbm", "btyd")
RANKING_ONLY = frozenset({"recency"})
SCORE_PREFIX = "score_"
RECENCY_COLUMN = baselines.RECENCY_FEATURE
#: Resamples per vectorised batch (CHUNK x rows weights in memory).
CHUNK = 100


def score_column(scorer: str) -> str:
    """Column of ``test_predictions.parquet`` holding a baseline's test score."""
    return f"{SCORE_PREFIX}{scorer}"


def scorers_of(predictions: pd.DataFrame) -> dict[str, np.ndarray]:
    """Return the model's probability and every baseline score the table holds, in order."""
    out = {MODEL: predictions["probability"].to_numpy(dtype="float64")}
    for name in BASELINES:
        column = score_column(name)
        if column in predictions.columns:
            out[name] = predictions[column].to_numpy(dtype="float64")
    return out


def populations(predictions: pd.DataFrame, early_warning_days: int) -> dict[str, np.ndarray]:
    """Row masks: ``all`` and ``early_warning`` (last order within ``early_warning_days``)."""
    if RECENCY_COLUMN not in predictions.columns:
        raise DataError(
            f"test predictions lack {RECENCY_COLUMN}: retrain the model (loyalty train) to "
            "get the early-warning population"
        )
    days = predictions[RECENCY_COLUMN].to_numpy(dtype="float64", na_value=np.nan)
    return {
        "all": np.ones(len(predictions), dtype=bool),
        "early_warning": np.nan_to_num(days, nan=np.inf) <= early_warning_days,
    }


def resample_weights(n: int, n_boot: int, seed: int) -> list[np.ndarray]:
    """Bootstrap weights (times each row is drawn), in batches of :data:`CHUNK` resamples."""
    rng = np.random.default_rng(seed)
    batches = []
    for start in range(0, n_boot, CHUNK):
        size = min(CHUNK, n_boot - start)
        draws = rng.integers(0, n, size=(size, n))
        offsets = (np.arange(size) * n)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=size * n)
        batches.append(counts.reshape(size, n).astype("float64"))
    return batches


def weighted_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``score`` under each row of ``weights`` (ties count one half), vectorised.

    Equal to scikit-learn's ``roc_auc_score(y, score, sample_weight=w)`` for every row ``w``.
    """
    order = np.argsort(score, kind="stable")
    s, yy, w = score[order], y[order].astype(bool), weights[:, order]
    # Last row of each run of equal scores: the tie groups, in increasing score.
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    neg_cum = np.cumsum(np.where(yy, 0.0, w), axis=1)[:, ends]
    pos_cum = np.cumsum(np.where(yy, w, 0.0), axis=1)[:, ends]
    neg = np.diff(neg_cum, axis=1, prepend=0.0)
    pos = np.diff(pos_cum, axis=1, prepend=0.0)
    below = neg_cum - neg
    total_pos, total_neg = pos_cum[:, -1], neg_cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(pos * (below + 0.5 * neg), axis=1) / (total_pos * total_neg)


def weighted_brier(y: np.ndarray, prob: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Brier score under each row of ``weights``."""
    return (weights @ (prob - y) ** 2) / weights.sum(axis=1)


def _interval(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    return [float(v) for v in np.quantile(finite, [0.025, 0.975])]


def paired_differences(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    n_boot: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Model minus each other scorer: AUC (and Brier) differences with bootstrap 95% intervals.

    A positive AUC difference and a negative Brier difference favour the model.
    """
    yf = y.astype("float64")
    model = scores[MODEL]
    others = [name for name in scores if name != MODEL]
    auc: dict[str, list[np.ndarray]] = {name: [] for name in others}
    brier: dict[str, list[np.ndarray]] = {n: [] for n in others if n not in RANKING_ONLY}
    for w in resample_weights(len(y), n_boot, seed):
        model_auc = weighted_auc(y, model, w)
        model_brier = weighted_brier(yf, model, w)
        for name in others:
            auc[name].append(model_auc - weighted_auc(y, scores[name], w))
            if name in brier:
                brier[name].append(model_brier - weighted_brier(yf, scores[name], w))
    point = {name: float(roc_auc_score(y, score)) for name, score in scores.items()}
    out: dict[str, dict[str, Any]] = {}
    for name in others:
        entry: dict[str, Any] = {
            "roc_auc": point[MODEL] - point[name],
            "roc_auc_ci95": _interval(np.concatenate(auc[name])),
        }
        if name in brier:
            entry["brier"] = float(np.mean((model - y) ** 2) - np.mean((scores[name] - y) ** 2))
            entry["brier_ci95"] = _interval(np.concatenate(brier[name]))
        out[name] = entry
    return out


def scorer_metrics(name: str, y: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """Return a scorer's metrics: ranking ones for a ranking rule, probability ones otherwise."""
    if name in RANKING_ONLY:
        return metrics.ranking_metrics(y, score)
    return metrics.probability_metrics(y, score)


def population_board(
    y: np.ndarray, scores: Mapping[str, np.ndarray], n_boot: int, seed: int
) -> dict[str, Any]:
    """Metrics of every scorer and the paired differences on one population."""
    if len(y) == 0 or y.min() == y.max():
        return {"rows": int(len(y)), "skipped": "fewer than two classes"}
    return {
        "rows": int(len(y)),
        "base_rate": float(y.mean()),
        "scorers": {name: scorer_metrics(name, y, s) for name, s in scores.items()},
        "model_minus": paired_differences(y, scores, n_boot, seed),
    }


def scoreboard(
    predictions: pd.DataFrame,
    early_warning_days: int = 30,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Return the scoreboard of one target's test predictions (see the module docstring)."""
    y = predictions["label"].to_numpy(dtype="int64")
    scores = scorers_of(predictions)
    boards = {
        name: population_board(y[mask], {k: v[mask] for k, v in scores.items()}, n_boot, seed)
        for name, mask in populations(predictions, early_warning_days).items()
    }
    return {
        "populations": boards,
        "early_warning_days": early_warning_days,
        "bootstrap": {"resamples": n_boot, "seed": seed, "unit": "customer"},
    }


def best_baseline(board: Mapping[str, Any]) -> str | None:
    """Return the baseline with the highest AUC on a population board (None when none)."""
    scorers = board.get("scorers", {})
    names = [n for n in scorers if n != MODEL]
    return max(names, key=lambda n: scorers[n]["roc_auc"]) if names else None


def headline(
    trained: Mapping[str, Mapping[str, Any]], targets: Mapping[str, Target]
) -> dict[str, float]:
    """One figure per target, ``<target>_<metric>``, for `dvc exp show` to set side by side.

    ``trained`` maps each target to its model's metrics (``metrics.json``); the figure is the
    target's headline metric on the test cutoff (:attr:`Target.headline_metric`). The full
    metrics files stay as they are; this is the short list that fits a terminal.
    """
    return {
        f"{name}_{target.headline_metric}": trained[name][MODEL][target.headline_metric]
        for name, target in targets.items()
    }


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(boards: Mapping[str, Mapping[str, Any]], title: str = "") -> str:
    """Render several targets' scoreboards as Markdown (one table per target, population)."""
    lines = [f"### {title}", ""] if title else []
    for target, board in boards.items():
        for population, pop in board["populations"].items():
            lines.append(
                f"**{target}, {population.replace('_', ' ')}** ({pop['rows']:,} customers"
                + (f", base rate {pop['base_rate']:.3f})" if "base_rate" in pop else ")")
            )
            lines.append("")
            if "scorers" not in pop:
                lines += [f"Skipped: {pop['skipped']}.", ""]
                continue
            lines.append(
                "| scorer | AUC | PR AUC | Brier | ECE | model - scorer AUC [95% CI] "
                "| model - scorer Brier [95% CI] |"
            )
            lines.append("|---|---|---|---|---|---|---|")
            for name, m in pop["scorers"].items():
                diff = pop["model_minus"].get(name)
                auc_diff = (
                    f"{diff['roc_auc']:+.4f} [{diff['roc_auc_ci95'][0]:+.4f}, "
                    f"{diff['roc_auc_ci95'][1]:+.4f}]"
                    if diff
                    else ""
                )
                brier_diff = (
                    f"{diff['brier']:+.4f} [{diff['brier_ci95'][0]:+.4f}, "
                    f"{diff['brier_ci95'][1]:+.4f}]"
                    if diff and "brier" in diff
                    else ""
                )
                lines.append(
                    f"| {name} | {_fmt(m['roc_auc'])} | {_fmt(m['pr_auc'])} "
                    f"| {_fmt(m.get('brier'))} | {_fmt(m.get('ece'))} | {auc_diff} | {brier_diff} |"
                )
            lines.append("")
    return "\n".join(lines)


def check_columns(predictions: pd.DataFrame, origin: str, required: Sequence[str]) -> None:
    """One-line error when a predictions table lacks a column the scoreboard needs."""
    missing = [c for c in required if c not in predictions.columns]
    if missing:
        raise DataError(f"{origin} lacks column(s) {', '.join(missing)}; rerun loyalty train")
