"""Would product-level features pay for an order-lines table? A prototype outside the pipeline.

The clean stage keeps no product ids per customer (it aggregates lines into orders), so the
pipeline cannot compute product-level features. This script computes four of them straight from
an Online Retail (II) line-level export, for the (customer, cutoff) rows of an existing feature
panel, from merchandise lines strictly before each cutoff, and writes the panel with them added
(plus its summary.json) for ``benchmarks/bench_ablation.py``:

- ``products_distinct``: distinct stock codes bought;
- ``product_repeat_share``: share of those bought in two or more invoices;
- ``product_entropy``: Shannon entropy (nats) of the customer's lines over stock codes;
- ``returned_product_share``: share of the bought stock codes that appear in a cancellation.

Lines kept: a customer id, a merchandise stock code (the source config's
``non_product_codes`` excluded), quantity and price > 0, invoice not a cancellation (the
cancellations give ``returned_product_share``). Timestamps are read in the source's time zone
and compared in UTC, as clean does; the other clean rules (duplicates, extreme quantities) are
not applied, so the figures are an estimate of what an order-lines table would give.

    .venv/bin/python benchmarks/bench_product_features.py \\
        --raw online_retail_ii_2009_2010.csv.gz --panel data/features --out /tmp/or2_products
    G=products_distinct,product_repeat_share,product_entropy,returned_product_share
    .venv/bin/python benchmarks/bench_ablation.py --features /tmp/or2_products --params P \\
        --group product=$G [--train-seed N]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io

REPO = Path(__file__).resolve().parents[1]
NAMES = ("products_distinct", "product_repeat_share", "product_entropy", "returned_product_share")


def read_lines(raw: Path, source_config: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sold and cancelled merchandise lines (customer_id, invoice, sku, ts in UTC)."""
    rules = io.read_yaml(source_config)["rules"]
    lines = pd.read_csv(raw, dtype={"Invoice": str, "StockCode": str, "Customer ID": str})
    lines = lines[lines["Customer ID"].notna()]
    ids = lines["Customer ID"].str.strip().str.replace(r"\.0$", "", regex=True)
    local = pd.to_datetime(lines["InvoiceDate"], format=rules["date_formats"]["order_ts"])
    ts = local.dt.tz_localize(rules["timezone"], ambiguous="NaT", nonexistent="NaT")
    frame = pd.DataFrame(
        {
            "customer_id": ids.astype("string"),
            "invoice": lines["Invoice"].str.strip(),
            "sku": lines["StockCode"].str.strip().str.upper(),
            "ts": ts.dt.tz_convert("UTC"),
            "quantity": lines["Quantity"],
            "price": lines["Price"],
        }
    )
    frame = frame[~frame["sku"].isin(rules["non_product_codes"]) & frame["ts"].notna()]
    cancel = frame["invoice"].str.startswith(rules["cancellation_prefix"])
    sold = frame[~cancel & (frame["quantity"] > 0) & (frame["price"] > 0)]
    return sold, frame[cancel]


def product_features(
    sold: pd.DataFrame, cancelled: pd.DataFrame, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """The four features of every customer with a merchandise line before ``cutoff``."""
    before = sold[sold["ts"] < cutoff]
    pairs = before.groupby(["customer_id", "sku"]).agg(
        lines=("invoice", "size"), invoices=("invoice", "nunique")
    )
    by_customer = pairs.groupby(level="customer_id")
    distinct = by_customer.size().astype("float64")
    share = pairs["lines"] / by_customer["lines"].transform("sum")
    back = cancelled.loc[cancelled["ts"] < cutoff, ["customer_id", "sku"]].drop_duplicates()
    back = back.merge(pairs.reset_index()[["customer_id", "sku"]], on=["customer_id", "sku"])
    returned = back.groupby("customer_id").size().reindex(distinct.index, fill_value=0)
    out = pd.DataFrame(
        {
            "products_distinct": distinct,
            "product_repeat_share": (pairs["invoices"] >= 2).groupby(level="customer_id").mean(),
            "product_entropy": (-(share * np.log(share))).groupby(level="customer_id").sum(),
            "returned_product_share": returned / distinct,
        }
    )
    return out.reset_index().assign(cutoff=cutoff)


def main() -> None:
    """Add the four columns to the panel's rows and write panel.parquet and summary.json."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--raw", type=Path, required=True, help="The line-level export (CSV).")
    parser.add_argument("--panel", type=Path, required=True, help="Folder with panel.parquet.")
    parser.add_argument("--out", type=Path, required=True, help="Output folder.")
    parser.add_argument(
        "--source-config", type=Path, default=REPO / "configs/sources/online_retail.yaml"
    )
    args = parser.parse_args()
    sold, cancelled = read_lines(args.raw, args.source_config)
    panel = io.read_parquet(args.panel / "panel.parquet")
    cutoffs = sorted(pd.Timestamp(c) for c in panel["cutoff"].unique())
    features = pd.concat([product_features(sold, cancelled, c) for c in cutoffs])
    features["cutoff"] = features["cutoff"].astype(panel["cutoff"].dtype)
    merged = panel.merge(features, on=["customer_id", "cutoff"], how="left", validate="1:1")
    args.out.mkdir(parents=True, exist_ok=True)
    io.write_parquet(args.out / "panel.parquet", merged)
    shutil.copy(args.panel / "summary.json", args.out / "summary.json")
    missing = {n: round(float(merged[n].isna().mean()), 4) for n in NAMES}
    print(f"{len(merged)} rows, {len(cutoffs)} cutoffs; NaN share {missing}")


if __name__ == "__main__":
    main()
