"""Wall time and peak memory of `loyalty generate` at the default size and at 10x.

Each size runs the real CLI in a child process (so the peak RSS is that run's alone, read with
os.wait4) into a temporary folder, and the script prints one JSON line:

    .venv/bin/python benchmarks/bench_generate.py [--sizes 20000 200000] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

LOYALTY = [sys.executable, "-c", "from pipeline.cli import run; run()"]


def measure(n_customers: int, seed: int, workdir: Path) -> dict[str, object]:
    """Run `loyalty generate` for one size; return wall time, peak RSS and output sizes."""
    params = workdir / f"params_{n_customers}.yaml"
    params.write_text(yaml.safe_dump({"generate": {"seed": seed, "n_customers": n_customers}}))
    out = workdir / f"out_{n_customers}"
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*LOYALTY, "generate", "--params", str(params), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert child.stderr is not None
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"generate failed for n={n_customers}: {stderr.decode()[-2000:]}")
    manifest = json.loads((out / "generate_manifest.json").read_text())
    return {
        "n_customers": n_customers,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),  # wall time is noisy on a shared box
        "load_avg_1m_before": round(load_before, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "transaction_lines": manifest["rows"]["transactions"],
        "feedback_rows": manifest["rows"]["feedback"],
        "output_mb": round(sum(p.stat().st_size for p in out.iterdir()) / 2**20, 1),
    }


def main() -> None:
    """Measure each size and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_generate_") as tmp:
        runs = [measure(n, args.seed, Path(tmp)) for n in args.sizes]
    print(
        json.dumps(
            {
                "benchmark": "generate",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
