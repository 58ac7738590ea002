"""Wall time and peak memory of `loyalty clean` on one export; prints one JSON line.

Runs the real CLI entry point in this process (so peak RSS is the clean run's, imports
included) and writes to a temporary folder.

    .venv/bin/python benchmarks/bench_clean.py --source online_retail \
        --input ../shared/data/online_retail_ii/online_retail_ii_2009_2010.csv.gz
    .venv/bin/python benchmarks/bench_clean.py --source synthetic --input data/synthetic
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument(
        "--source", default="synthetic", choices=["synthetic", "online_retail", "csv"]
    )
    parser.add_argument("--as-of", default="2030-01-01T00:00:00Z")
    args = parser.parse_args()

    from pipeline import schemas  # noqa: F401  (import cost counted in the baseline)
    from pipeline.cli import main as cli

    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as folder:
        params = Path(folder) / "params.yaml"
        params.write_text(
            yaml.safe_dump({"data": {"source": args.source}, "clean": {"as_of": args.as_of}})
        )
        out = Path(folder) / "clean"
        start = time.perf_counter()
        code = cli(
            ["clean", "--params", str(params), "--input", str(args.input), "--out", str(out)]
        )
        wall = time.perf_counter() - start
        manifest = json.loads((out / "manifest.json").read_text()) if code == 0 else {}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "bench": "clean",
                "source": args.source,
                "input": str(args.input),
                "exit_code": code,
                "rows_read": manifest.get("rows_read"),
                "accepted": manifest.get("accepted"),
                "rejected_by_reason": manifest.get("rejected_by_reason"),
                "tables": {k: v["rows"] for k, v in manifest.get("tables", {}).items()},
                "wall_s": round(wall, 2),
                "peak_rss_mb": round(peak_mb),
                "baseline_rss_mb": round(baseline_mb),
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
