"""Charts of the report as embedded PNG data URIs (matplotlib and the ``shap`` plots).

Every function takes plain frames and returns a ``data:image/png;base64,...`` string, so the
HTML needs no server and no internet. Figures are closed after rendering (no global state
left behind in pyplot).
"""

from __future__ import annotations

import base64
import io as _bytes_io
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.reasons import FeatureDictionary

RISK = "#c0392b"
SAFE = "#2471a3"
GREY = "#7f8c8d"
DPI = 110
BEESWARM_SEED = 0


def to_data_uri(fig: Figure) -> str:
    """Render ``fig`` to PNG, close it, and return it as a base64 data URI."""
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", alpha=0.3)


def concept_bar(concepts: pd.DataFrame, labels: Mapping[str, str], outcome: str) -> str:
    """Horizontal bars: mean |SHAP| per concept group; colour = average direction."""
    data = concepts.sort_values("mean_abs_shap")
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(data) + 1.2))
    # One colour: the mean *signed* SHAP of a group is close to zero by construction, so
    # colouring by it would suggest a direction the data do not have.
    ax.barh([labels.get(c, c) for c in data["concept"]], data["mean_abs_shap"], color=SAFE)
    ax.set_xlabel(f"average strength of effect on {outcome} (mean |SHAP|, log-odds)")
    ax.set_title(f"What drives {outcome}, by business concept", loc="left", fontsize=11)
    _style(ax)
    return to_data_uri(fig)


def beeswarm(
    shap_values: pd.DataFrame, feature_values: pd.DataFrame, names: Sequence[str], max_display: int
) -> str:
    """Draw the ``shap`` beeswarm of per-customer contributions (one dot per customer)."""
    import shap

    data = feature_values[list(names)].apply(_as_numeric)
    explanation = shap.Explanation(
        values=shap_values[list(names)].to_numpy(dtype="float64"),
        base_values=shap_values["base_value"].to_numpy(dtype="float64"),
        data=data.to_numpy(dtype="float64"),
        feature_names=list(names),
    )
    fig = plt.figure(figsize=(8, 0.4 * max_display + 1.5))
    ax = fig.add_subplot(1, 1, 1)
    # shap's beeswarm shuffles the dots with numpy's global generator (no rng argument): a
    # fixed seed, restored afterwards, draws the same picture, so the report has the same
    # bytes on every run and machine (dvc.lock unchanged).
    state = np.random.get_state()
    np.random.seed(BEESWARM_SEED)
    try:
        shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None)
    finally:
        np.random.set_state(state)
    ax.set_xlabel("contribution to the model score (SHAP value, log-odds)")
    return to_data_uri(fig)


def _as_numeric(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy(dtype="float64")
        return pd.Series(np.where(codes < 0, np.nan, codes), index=series.index)
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype="float64")))


def dependence(
    values: pd.Series,
    contributions: pd.Series,
    base_value: float,
    dictionary: FeatureDictionary,
    outcome: str,
) -> str:
    """Feature value (business unit) against its effect on the probability, in points.

    The effect is ``sigmoid(base + shap) - sigmoid(base)``: how many percentage points this
    feature moves an otherwise average customer's (uncalibrated) probability.
    """
    info = dictionary.info(str(values.name))
    effect = 100 * (_sigmoid(base_value + contributions.to_numpy()) - _sigmoid(base_value))
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values):
        frame = pd.DataFrame({"level": values.astype("string").fillna("missing"), "e": effect})
        means = frame.groupby("level", sort=True)["e"].mean()
        ax.bar(
            means.index.tolist(), means.to_numpy(), color=[RISK if v > 0 else SAFE for v in means]
        )
        ax.tick_params(axis="x", labelrotation=35)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.set_xlabel(_wrap(info.description))
    else:
        x = values.to_numpy(dtype="float64", na_value=np.nan)
        known = ~np.isnan(x)
        ax.scatter(x[known], effect[known], s=6, alpha=0.25, color=GREY, linewidths=0)
        line = _binned_mean(x[known], effect[known])
        if len(line):
            ax.plot(line["x"], line["y"], color=RISK, linewidth=2, label="average effect")
            ax.legend(frameon=False, loc="best", fontsize=8)
        unit = f" ({info.unit})" if info.unit else ""
        ax.set_xlabel(_wrap(f"{info.description.rstrip('. ')}{unit}"))
        if (~known).any():
            ax.set_title(
                f"{int((~known).sum())} customers with no value: average effect "
                f"{np.mean(effect[~known]):+.1f} points",
                loc="left",
                fontsize=8,
                color=GREY,
            )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel(f"effect on {outcome} probability\n(percentage points)")
    ax.spines[["top", "right"]].set_visible(False)
    return to_data_uri(fig)


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _binned_mean(x: np.ndarray, y: np.ndarray, bins: int = 20) -> pd.DataFrame:
    if len(x) == 0:
        return pd.DataFrame({"x": [], "y": []})
    distinct = np.unique(x)
    if len(distinct) <= bins:
        frame = pd.DataFrame({"x": x, "y": y}).groupby("x", sort=True)["y"].mean().reset_index()
        return frame
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    frame = pd.DataFrame({"b": index, "x": x, "y": y}).groupby("b", sort=True)[["x", "y"]].mean()
    return frame.reset_index(drop=True)


def calibration(curve: pd.DataFrame, outcome: str) -> str:
    """Predicted against observed rate per probability bin, with the diagonal."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="perfect calibration")
    ax.plot(curve["mean_predicted"], curve["observed_rate"], marker="o", color=RISK, label="model")
    ax.set_xlabel(f"predicted {outcome} probability")
    ax.set_ylabel(f"observed {outcome} rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, loc="upper left", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return to_data_uri(fig)


def lift(curve: pd.DataFrame, baselines: Mapping[str, float], model_lift: float) -> str:
    """Cumulative capture curve against random targeting, with top-decile lift of baselines."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), width_ratios=[1.3, 1])
    left.plot(
        100 * curve["share_contacted"], 100 * curve["capture_rate"], color=RISK, label="model"
    )
    left.plot([0, 100], [0, 100], color=GREY, linestyle="--", linewidth=1, label="random")
    left.set_xlabel("customers contacted, riskiest first (%)")
    left.set_ylabel("positives reached (%)")
    left.legend(frameon=False, fontsize=8)
    left.spines[["top", "right"]].set_visible(False)
    names = ["model", *baselines]
    heights = [model_lift, *baselines.values()]
    right.bar(names, heights, color=[RISK, *[GREY] * len(baselines)])
    right.axhline(1, color="black", linewidth=0.6)
    right.set_ylabel("lift in the top 10%")
    right.tick_params(axis="x", labelrotation=20)
    right.spines[["top", "right"]].set_visible(False)
    return to_data_uri(fig)


def segment_bars(table: pd.DataFrame, title: str, value_words: str) -> str:
    """Value at risk per group, with the mean churn probability written on each bar."""
    data = table.sort_values("value_at_risk")
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(data) + 1.2))
    ax.barh(data["group"].astype(str), data["value_at_risk"], color=RISK)
    for y, (v, p) in enumerate(
        zip(data["value_at_risk"], data["mean_churn_probability"], strict=True)
    ):
        ax.text(v, y, f"  {p:.0%} avg churn", va="center", fontsize=8)
    ax.set_xlabel(f"value at risk ({value_words} x churn probability)")
    ax.set_title(title, loc="left", fontsize=11)
    _style(ax)
    return to_data_uri(fig)


def effect_bars(effects: pd.DataFrame, outcome: str) -> str:
    """Two panels of bars: signals that a customer is leaving, and what the business can change.

    ``effects`` is :func:`pipeline.report.drivers.concept_effects`: each concept's average
    effect, in percentage points of ``outcome`` probability, among the customers at risk.
    """
    panels = [
        ("signal", "Signals that a customer is leaving (they say that, not why)", GREY),
        ("lever", "What the business can change", RISK),
    ]
    sizes = [max(int((effects["kind"] == kind).sum()), 1) for kind, _, _ in panels]
    fig, axes = plt.subplots(
        2, 1, figsize=(7.5, 0.42 * sum(sizes) + 2.0), gridspec_kw={"height_ratios": sizes}
    )
    for ax, (kind, title, colour) in zip(axes, panels, strict=True):
        data = effects.loc[effects["kind"] == kind].sort_values("effect_points")
        ax.barh(data["label"], data["effect_points"], color=colour)
        for y, (v, share) in enumerate(
            zip(data["effect_points"], data["raises_share"], strict=True)
        ):
            ax.text(
                max(v, 0), y, f"  {v:+.1f} pts; raises it for {share:.0%}", va="center", fontsize=8
            )
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_title(title, loc="left", fontsize=10)
        _style(ax)
    axes[-1].set_xlabel(
        f"average effect on {outcome} probability among customers at risk (percentage points)"
    )
    right = max(float(effects["effect_points"].max()), 0.0) if len(effects) else 1.0
    for ax in axes:
        ax.set_xlim(min(float(effects["effect_points"].min()), 0.0) * 1.1, right * 1.6 + 0.5)
    fig.tight_layout()
    return to_data_uri(fig)
