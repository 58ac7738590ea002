"""A small synthetic feature panel with known structure, for tests and benchmarks (a fixture).

It follows the "Feature panel" contract of ``docs/architecture.md`` (keys, split, labels, float64
and category features) without running generate/clean/features, so the modelling code can be
tested and timed in isolation. The truth is known: churn rises with days since the last order
and with unresolved complaints, and falls with orders, spend and review scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import TrainParams
from pipeline.features.catalog import Catalog, load_catalog, parse_catalog
from pipeline.modeling.train import TrainResult, train_target
from tests.support.params import fixed_labels

CHANNELS = ("app", "store", "web")


def make_demo_panel(n_customers: int = 2000, n_cutoffs: int = 6, seed: int = 0) -> pd.DataFrame:
    """Return a panel of ``n_customers * n_cutoffs`` rows.

    The last cutoff is the test split, the one before it validation, the rest training.
    """
    if n_cutoffs < 3:
        raise ValueError("need at least 3 cutoffs (train, valid, test)")
    rng = np.random.default_rng(seed)
    n = n_customers * n_cutoffs
    cutoffs = pd.date_range("2024-01-01", periods=n_cutoffs, freq="MS", tz="UTC").as_unit("us")
    cutoff_index = np.repeat(np.arange(n_cutoffs), n_customers)
    split = np.where(
        cutoff_index == n_cutoffs - 1,
        "test",
        np.where(cutoff_index == n_cutoffs - 2, "valid", "train"),
    )
    days = rng.exponential(60.0, n).round()
    orders = rng.poisson(3.0, n).astype("float64")
    spend = np.round(orders * rng.gamma(2.0, 30.0, n), 2)
    review = np.clip(rng.normal(3.8, 0.9, n), 1, 5)
    review[rng.random(n) < 0.3] = np.nan  # many customers never review
    unresolved = rng.poisson(0.3, n).astype("float64")
    channel = rng.choice(CHANNELS, n)
    logit = (
        -1.0
        + 0.02 * np.minimum(days, 200)
        - 0.35 * orders
        - 0.004 * spend
        + 0.9 * unresolved
        - 0.8 * (np.nan_to_num(review, nan=3.8) - 3.8)
        + 0.2 * (channel == "web")
    )
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    repurchased = (~churned) & (rng.random(n) < 0.6)
    return pd.DataFrame(
        {
            "customer_id": pd.array(
                [f"C{i:07d}" for i in np.tile(np.arange(n_customers), n_cutoffs)], dtype="string"
            ),
            "cutoff": cutoffs[cutoff_index],
            "split": pd.array(split, dtype="string"),
            "churn": churned.astype("int8"),
            "repurchase": repurchased.astype("int8"),
            "days_since_last_order": days,
            "orders_count_90d": orders,
            "spend_sum_365d": spend,
            "review_score_mean_365d": review,
            "complaints_unresolved_365d": unresolved,
            "channel_main": pd.Categorical(channel, categories=list(CHANNELS)),
        }
    )


def with_btyd_inputs(panel: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Add the snapshot columns BTYD reads (lifetime orders, tenure, average order value)."""
    rng = np.random.default_rng(seed + 2)
    orders = panel["orders_count_90d"].to_numpy() + rng.poisson(2.0, len(panel)) + 1
    return panel.assign(
        lifetime_orders=orders.astype("float64"),
        tenure_days=panel["days_since_last_order"].to_numpy() + rng.gamma(2.0, 150.0, len(panel)),
        avg_order_value=rng.gamma(2.0, 30.0, len(panel)),
    )


def demo_catalog() -> Catalog:
    """The project's feature dictionary (the demo panel's names it lacks have no direction)."""
    return load_catalog(Path(__file__).resolve().parents[2] / "configs" / "features.yaml")


def train_demo(
    panel: pd.DataFrame, target: str, params: TrainParams, catalog: Catalog | None = None
) -> TrainResult:
    """``train_target`` with the default label definitions and the project's dictionary."""
    return train_target(panel, target, params, fixed_labels(), catalog or demo_catalog())


def save_demo_model(result: TrainResult, folder: Path) -> Path:
    """Write the three files of a trained binary model into ``folder`` (what train writes)."""
    from pipeline import io

    io.write_text(folder / "model.txt", result.model_text)
    io.write_json(folder / "calibration.json", result.calibration)
    io.write_json(folder / "features.json", result.features)
    return folder


def tiny_catalog(*entries: dict) -> Catalog:
    """A valid catalog of the given entries (name plus any field); the rest filled in plainly."""
    features = [
        {
            "description": entry["name"].replace("_", " "),
            "concept": "recency",
            "unit": "count",
            "requires": ["orders.order_ts"],
            "reason": f"{entry['name']}: {{value}}",
            **entry,
        }
        for entry in entries
    ]
    raw = {
        "version": 1,
        "features": features,
        "rfm_segments": [{"name": "All", "r": [1, 5], "f": [1, 5]}],
    }
    return parse_catalog(raw, "tiny catalog")
