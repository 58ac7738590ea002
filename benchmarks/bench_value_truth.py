"""How close are customer-value predictions to the simulation's own expected future spend?

The truth is :func:`pipeline.sources.simulation.truth.expected_future_spend`: per customer, the
spend in ``[cutoff, cutoff + horizon)`` the simulation expects given its latent state at the
cutoff (the export of ``loyalty generate`` with the same ``generate`` params). Over the
customers in both the predictions and the truth, the script prints one JSON line: Pearson and
Spearman correlations and the top-decile overlap (share of the predicted top 10% that are in
the true top 10%) of the prediction against the expected spend; with ``--realised COLUMN``, the
same against the realised spend, and of the expected spend against the realised spend (what a
perfect model of the simulation would reach).

    .venv/bin/python benchmarks/bench_value_truth.py --predictions scores.parquet \\
        --cutoff 2024-07-01 --horizon-days 180 --params params.yaml [--column expected_value] \\
        [--realised spend_label] [--paths 32] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import load_params
from pipeline.sources.simulation.truth import expected_future_spend

TOP_SHARE = 0.10


def top_overlap(predicted: pd.Series, actual: pd.Series, share: float = TOP_SHARE) -> float:
    """Share of the ``share`` highest predictions that are among the ``share`` highest actuals.

    Ties are broken by position (the frame is sorted by customer id), the same on both sides.
    """
    k = max(1, int(round(share * len(predicted))))
    top_predicted = np.argsort(-predicted.to_numpy(), kind="stable")[:k]
    top_actual = np.argsort(-actual.to_numpy(), kind="stable")[:k]
    return len(np.intersect1d(top_predicted, top_actual)) / k


def agreement(predicted: pd.Series, actual: pd.Series) -> dict[str, float]:
    """Pearson, Spearman and top-decile overlap of ``predicted`` against ``actual``."""
    return {
        "pearson": round(float(predicted.corr(actual)), 4),
        "spearman": round(float(predicted.corr(actual, method="spearman")), 4),
        "top_decile_overlap": round(top_overlap(predicted, actual), 4),
    }


def main() -> None:
    """Compute the truth, join it to the predictions and print one JSON line of figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--predictions", type=Path, required=True, help="Parquet file.")
    parser.add_argument("--column", default="expected_value", help="The prediction column.")
    parser.add_argument("--realised", default=None, help="Column of realised spend, if any.")
    parser.add_argument("--cutoff", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--horizon-days", type=int, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--paths", type=int, default=32, help="Simulated futures.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the futures.")
    args = parser.parse_args()

    generate = load_params(args.params).generate
    columns = ["customer_id", args.column] + ([args.realised] if args.realised else [])
    predictions = pd.read_parquet(args.predictions, columns=columns)
    predictions["customer_id"] = predictions["customer_id"].astype("string")
    started = time.perf_counter()
    truth = expected_future_spend(
        generate, args.cutoff, args.horizon_days, paths=args.paths, seed=args.seed
    )
    truth_s = time.perf_counter() - started
    both = truth.merge(predictions, on="customer_id", how="inner", validate="one_to_one")
    both = both.sort_values("customer_id", kind="stable", ignore_index=True)
    predicted, expected = both[args.column].astype(float), both["expected_spend"]
    figures: dict[str, object] = {
        "benchmark": "value_truth",
        "cutoff": args.cutoff.isoformat(),
        "horizon_days": args.horizon_days,
        "paths": args.paths,
        "customers_simulated": len(truth),
        "customers_predicted": len(predictions),
        "customers_joined": len(both),
        "alive_share_joined": round(float(both["alive_at_cutoff"].mean()), 4),
        "mean_predicted": round(float(predicted.mean()), 4),
        "mean_expected_spend": round(float(expected.mean()), 4),
        "vs_expected": agreement(predicted, expected),
        "truth_s": round(truth_s, 2),
    }
    if args.realised:
        realised = both[args.realised].astype(float)
        figures["mean_realised"] = round(float(realised.mean()), 4)
        figures["vs_realised"] = agreement(predicted, realised)
        figures["expected_vs_realised"] = agreement(expected, realised)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
