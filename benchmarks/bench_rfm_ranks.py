"""Measure the two population-free ways to keep RFM quintile scores (docs/modeling.md).

- B (the pipeline's choice): no rank features in the model; the panel as the features stage
  writes it.
- A: rank features ``rfm_r_score``, ``rfm_f_score``, ``rfm_m_score`` and ``rfm_segment`` against
  quintile edges fitted on the train split (pooled cutoffs), as if shipped with the model.

Both are trained with the pipeline's ``train_target`` (default ``TrainParams``) on the same panel
and judged on its test cutoff. Prints one JSON line per target.

Example:
    python benchmarks/bench_rfm_ranks.py data/features/panel.parquet
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.business import quintile_score
from pipeline.config import LabelsParams, TrainParams
from pipeline.features.catalog import Catalog, load_catalog, parse_catalog
from pipeline.modeling.train import train_target

REPO = Path(__file__).resolve().parents[1]
DICTIONARY = REPO / "configs" / "features.yaml"
SCORES = {  # rank feature -> (base feature, higher is better)
    "rfm_r_score": ("days_since_last_order", False),
    "rfm_f_score": ("lifetime_orders", True),
    "rfm_m_score": ("lifetime_spend", True),
}


def with_shipped_ranks(panel: pd.DataFrame, catalog: Catalog) -> tuple[pd.DataFrame, Catalog]:
    """Option A: the panel plus rank features on train-split edges, and a catalog listing them."""
    train = panel[panel["split"] == "train"]
    out = panel.copy()
    for name, (base, higher) in SCORES.items():
        edges = np.quantile(train[base].dropna(), [0.2, 0.4, 0.6, 0.8])
        out[name] = quintile_score(panel[base], edges, higher)
    grid = np.asarray(catalog.segment_grid(), dtype=object)
    levels = sorted({rule.name for rule in catalog.rfm_segments})
    r, f = out["rfm_r_score"].astype(int) - 1, out["rfm_f_score"].astype(int) - 1
    out["rfm_segment"] = pd.Categorical(grid[r, f], categories=levels)
    raw = io.read_yaml(DICTIONARY)
    common = {"unit": "score", "requires": ["orders.order_ts"], "reason": "{value}"}
    extra = [
        {
            "name": "rfm_r_score",
            "description": "Recency score",
            "concept": "recency",
            "direction": "lower_is_riskier",
            **common,
        },
        {
            "name": "rfm_f_score",
            "description": "Frequency score",
            "concept": "frequency",
            "direction": "lower_is_riskier",
            **common,
        },
        {
            "name": "rfm_m_score",
            "description": "Spend score",
            "concept": "monetary",
            "direction": "lower_is_riskier",
            **common,
        },
        {
            "name": "rfm_segment",
            "description": "RFM segment",
            "concept": "recency",
            **common,
            "unit": "category",
            "dtype": "category",
            "levels": levels,
        },
    ]
    return out, parse_catalog({**raw, "features": [*raw["features"], *extra]}, "option A")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("panel", type=Path, help="a features stage panel.parquet")
    args = parser.parse_args()
    panel = pd.read_parquet(args.panel)
    catalog = load_catalog(DICTIONARY)
    ranked, catalog_a = with_shipped_ranks(panel, catalog)
    params, labels = TrainParams(), LabelsParams()
    for target in ("churn", "repurchase"):
        b = train_target(panel, target, params, labels, catalog).metrics["model"]
        a = train_target(ranked, target, params, labels, catalog_a).metrics["model"]
        print(
            json.dumps(
                {
                    "bench": "rfm_ranks",
                    "panel": str(args.panel),
                    "target": target,
                    **{f"B_{k}": round(b[k], 5) for k in ("roc_auc", "brier", "ece")},
                    **{f"A_{k}": round(a[k], 5) for k in ("roc_auc", "brier", "ece")},
                    "A_minus_B_auc": round(a["roc_auc"] - b["roc_auc"], 5),
                }
            )
        )


if __name__ == "__main__":
    main()
