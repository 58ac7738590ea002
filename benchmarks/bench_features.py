"""Speed and memory of the features stage at scale: one snapshot, then the full default panel.

Builds clean tables for N orders / M customers directly with numpy (seeded; the columns the
features use, in the clean-table dtypes and sort order), writes them to Parquet once, then runs
each measurement in a fresh process that reads them (as `loyalty features` does) so that the
peak RSS of one measurement is not inflated by the data generation or another measurement.
Prints one JSON line per measurement.

    .venv/bin/python benchmarks/bench_features.py                      # 10M orders / 1M customers
    .venv/bin/python benchmarks/bench_features.py --orders 1000000 --customers 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-01-01", tz="UTC").as_unit("us")
SPAN_US = 730 * 86_400_000_000
REPO = Path(__file__).resolve().parents[1]


def _ids(codes: np.ndarray, n_customers: int) -> pd.Series:
    uniques = pd.Series([f"C{i:07d}" for i in range(n_customers)], dtype="string")
    return uniques.take(codes).reset_index(drop=True)


def make_tables(n_orders: int, n_customers: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Clean tables with about ``n_orders`` orders (sorted by customer, time) and 10% returns."""
    rng = np.random.default_rng(seed)
    weights = rng.gamma(1.0, 1.0, n_customers)
    counts = rng.multinomial(n_orders - n_customers, weights / weights.sum()) + 1
    codes = np.repeat(np.arange(n_customers), counts)
    ts = rng.integers(0, SPAN_US, n_orders)
    order = np.lexsort((ts, codes))
    codes, ts = codes[order], ts[order]
    order_ts = START + pd.to_timedelta(ts, unit="us")
    promised = order_ts.floor("D") + pd.Timedelta(days=3)
    orders = pd.DataFrame(
        {
            "customer_id": _ids(codes, n_customers),
            "order_ts": order_ts,
            "gross_amount": rng.gamma(2.0, 30.0, n_orders) + 1.0,
            "discount_amount": np.where(rng.random(n_orders) < 0.1, 5.0, 0.0),
            "promised_ts": promised,
            "delivered_ts": promised + pd.to_timedelta(rng.integers(-2, 4, n_orders), unit="D"),
            "channel": pd.Series(rng.choice(["app", "store", "web"], n_orders), dtype="string"),
        }
    )
    n_ret, n_fb = n_orders // 10, n_orders // 5

    def sorted_events(n: int) -> tuple[np.ndarray, pd.DatetimeIndex]:
        c = np.sort(rng.integers(0, n_customers, n))
        t = rng.integers(0, SPAN_US, n)
        o = np.lexsort((t, c))
        return c[o], START + pd.to_timedelta(t[o], unit="us")

    ret_codes, ret_ts = sorted_events(n_ret)
    returns = pd.DataFrame(
        {
            "customer_id": _ids(ret_codes, n_customers),
            "return_ts": ret_ts,
            "amount": rng.gamma(2.0, 10.0, n_ret) + 1.0,
        }
    )
    fb_codes, fb_ts = sorted_events(n_fb)
    kinds = rng.choice(["complaint", "nps", "review", "survey"], n_fb)
    score = np.where(kinds == "nps", rng.integers(0, 11, n_fb), rng.integers(1, 6, n_fb))
    complaint = kinds == "complaint"
    feedback = pd.DataFrame(
        {
            "customer_id": _ids(fb_codes, n_customers),
            "feedback_ts": fb_ts,
            "kind": pd.Series(kinds, dtype="string"),
            "score": np.where(complaint, np.nan, score.astype(float)),
            "resolved": pd.array(
                np.where(complaint, rng.random(n_fb) < 0.7, pd.NA), dtype="boolean"
            ),
            "resolution_hours": np.where(complaint, rng.gamma(2.0, 20.0, n_fb), np.nan),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": _ids(np.arange(n_customers), n_customers),
            "signup_ts": START,
            "loyalty_member": pd.array(rng.random(n_customers) < 0.3, dtype="boolean"),
            "region": pd.Series(
                rng.choice(["central", "east", "north", "south", "west"], n_customers),
                dtype="string",
            ),
        }
    )
    return {"orders": orders, "returns": returns, "feedback": feedback, "customers": customers}


def _peak_mib(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # Linux: KiB


def measure(folder: Path, mode: str, partitions: int, workers: int) -> dict[str, object]:
    """Run one measurement in this process (called in a child process)."""
    from pipeline.config import FeaturesParams, LabelsParams
    from pipeline.features.catalog import load_catalog
    from pipeline.features.panel import PanelStats, build_scoring_snapshot, plan_features
    from pipeline.io import write_parquet_frames

    catalog = load_catalog(REPO / "configs" / "features.yaml")
    tables = {
        name: pd.read_parquet(folder / f"{name}.parquet")
        for name in ("orders", "returns", "feedback", "customers")
    }
    rows = sum(len(t) for name, t in tables.items() if name != "customers")
    # One snapshot needs a population; the panel chooses it (and the grid) from the data.
    params = FeaturesParams(
        partitions=partitions,
        workers=workers,
        active_within_days=365 if mode == "snapshot" else None,
    )
    began = time.perf_counter()
    if mode == "snapshot":
        out = build_scoring_snapshot(**tables, as_of="2024-07-01", params=params, catalog=catalog)
        result: dict[str, object] = {"snapshot_rows": len(out), "snapshots": 1}
    else:  # as `loyalty features` does: the panel streamed to Parquet cutoff by cutoff
        stage = plan_features(**tables, params=params, label_params=LabelsParams(), catalog=catalog)
        stats = PanelStats()
        with tempfile.TemporaryDirectory(prefix="bench_panel_") as out:
            rows_written = write_parquet_frames(
                Path(out) / "panel.parquet", stats.track(stage.panel_frames())
            )
            scoring = stage.scoring()
        result = {
            "panel_rows": rows_written,
            "snapshots": len(stage.plan.cutoffs()) + 1,
            "scoring_rows": len(scoring),
        }
    wall = time.perf_counter() - began
    return {
        "benchmark": f"features_{mode}",
        "orders": len(tables["orders"]),
        "customers": len(tables["customers"]),
        "event_rows": rows,
        "partitions": partitions,
        "workers": workers,
        "wall_s": round(wall, 2),
        "event_rows_per_s": round(rows / wall),
        "peak_rss_mib_main": _peak_mib(resource.RUSAGE_SELF),
        "peak_rss_mib_largest_worker": _peak_mib(resource.RUSAGE_CHILDREN),
        **result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default="snapshot,panel")
    parser.add_argument(
        "--tables", type=Path, help="Keep/reuse the generated tables in this folder."
    )
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, mode = args.child
        print(json.dumps(measure(Path(folder), mode, args.partitions, args.workers)), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="bench_features_") as scratch:
        folder = args.tables or Path(scratch)
        if not (folder / "orders.parquet").exists():
            folder.mkdir(parents=True, exist_ok=True)
            began = time.perf_counter()
            for name, frame in make_tables(args.orders, args.customers).items():
                frame.to_parquet(folder / f"{name}.parquet", index=False)
            print(
                f"# tables built in {time.perf_counter() - began:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        for mode in args.modes.split(","):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(folder),
                    mode,
                    "--partitions",
                    str(args.partitions),
                    "--workers",
                    str(args.workers),
                ],
                check=True,
            )


if __name__ == "__main__":
    main()
