"""Time and peak memory of `loyalty clean` on one over-long record, at N and 10N bytes.

The gzip-bomb shape: a header, a few good lines, then one line of N bytes of ``a`` with no line
break, streamed into a .csv.gz (a few MB on disk for gigabytes of text). The reader must
quarantine it as ``record_too_long`` in linear time and bounded memory: the ratio of the two
wall times should be about 10 and the peak RSS about the same for both. Each size runs in its
own process (so its peak RSS is its own); prints one JSON line.

    .venv/bin/python benchmarks/bench_long_record.py              # 200 MB and 2 GB
    .venv/bin/python benchmarks/bench_long_record.py --mb 20      # 20 MB and 200 MB
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
GOOD = "500000,85048,GLASS BALL,2,2010-03-01 10:00:00,1.25,120000,France\n"
PIECE = b"a" * 2**20

RUN = """
import json, resource, sys, time
from pipeline.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
wall = time.perf_counter() - start
print(json.dumps({"code": code, "wall_s": wall,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_bomb(path: Path, mb: int) -> None:
    """Stream a header, one good line and ``mb`` MiB of one unbroken line into gzip."""
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write((HEADER + GOOD + "500001,").encode())
        for _ in range(mb):
            handle.write(PIECE)


def run(path: Path, folder: Path) -> dict[str, object]:
    """Clean the file in a fresh process; return its exit code, wall time, peak RSS, rejects."""
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump({"clean": {"as_of": "2011-12-31T00:00:00Z"}}))
    out = folder / f"clean-{path.stem}"
    config = REPO / "configs" / "sources" / "online_retail.yaml"
    args = ["clean", "--params", str(params), "--source-config", str(config)]
    args += ["--input", str(path), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, check=False
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    manifest = json.loads((out / "manifest.json").read_text()) if report["code"] == 0 else {}
    return {
        **report,
        "rows_read": manifest.get("rows_read"),
        "rejected_by_reason": manifest.get("rejected_by_reason"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="N in MiB (10N is run too)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for mb in (args.mb, 10 * args.mb):
            path = folder / f"bomb_{mb}mb.csv.gz"
            started = time.perf_counter()
            write_bomb(path, mb)
            written = time.perf_counter() - started
            result = run(path, folder)
            result["gzip_mb_on_disk"] = round(path.stat().st_size / 2**20, 1)
            result["write_s"] = round(written, 2)
            result["wall_s"] = round(float(result["wall_s"]), 2)  # type: ignore[arg-type]
            result["peak_rss_mb"] = round(float(result["peak_rss_mb"]), 0)  # type: ignore[arg-type]
            results[f"{mb}MiB"] = result
            path.unlink()
    small, large = results.values()
    ratio = float(large["wall_s"]) / max(float(small["wall_s"]), 1e-9)  # type: ignore[arg-type]
    print(json.dumps({"bench": "long_record", "runs": results, "ratio_10x": round(ratio, 2)}))


if __name__ == "__main__":
    main()
