"""Print the value model's figures as the Markdown tables of ``docs/modeling.md``.

Reads a value metrics file written by ``loyalty train --target value`` (the DVC stage
``train_value`` writes ``reports/metrics/value.json``) and prints two tables: the test cutoff
(the kept model and each baseline: normalized Gini, Spearman, share of realised spend in the
predicted top decile, decile MAPE, total error) and the validation comparison of the designs.

    .venv/bin/python benchmarks/value_tables.py reports/metrics/value.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("normalized_gini", "spearman", "top_decile_capture", "decile_mape", "total_error_pct")
HEADER = (
    "| forecast | normalized Gini | Spearman | top-decile capture | decile MAPE | total error |"
)


def row(name: str, m: dict) -> str:
    """One table row of metrics ``m``."""
    return (
        f"| {name} | {m['normalized_gini']:.3f} | {m['spearman']:.3f} | "
        f"{m['top_decile_capture']:.3f} | {m['decile_mape']:.1f}% | {m['total_error_pct']:+.1f}% |"
    )


def main() -> None:
    """Print the test and validation tables of one value metrics file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "metrics", type=Path, help="value metrics JSON (reports/metrics/value.json)"
    )
    metrics = json.loads(parser.parse_args().metrics.read_text())
    cap = metrics["value_cap"]
    print(
        f"test cutoff {metrics['test_cutoff'][:10]}, horizon {metrics['horizon_days']} days, "
        f"rows {metrics['rows']}, kept design {metrics['model_design']}, cap "
        f"{cap['value']:,.0f} ({cap['quantile']:.0%} of training buyers; spend above it: "
        f"{cap['spend_above_cap_share']['test']:.1%} of the test spend, "
        f"{cap['customers_capped']['test']} customers)\n"
    )
    print(HEADER)
    print("|---|---|---|---|---|---|")
    print(row(f"value model ({metrics['model_design']})", metrics["model"]))
    for name, m in metrics["baselines"].items():
        print(row(name.replace("_", " "), m))
    print("\nvalidation cutoff, every design:\n")
    print(HEADER.replace("forecast", "design"))
    print("|---|---|---|---|---|---|")
    for design, entry in metrics["selection"].items():
        if "validation" in entry:
            print(row(design, entry["validation"]))
        else:
            print(f"| {design} | left out: {entry.get('skipped', '')} | | | | |")


if __name__ == "__main__":
    main()
