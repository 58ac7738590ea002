"""Start-up time of `loyalty --help`, cold (no bytecode) and warm (bytecode), medians of N runs.

What a new process pays before it does any work. **Warm** is the installed virtualenv as
`make install` leaves it: `uv pip sync --compile-bytecode` wrote a `.pyc` for every module, so
Python loads bytecode. **Cold** is the same virtualenv as a plain `uv pip sync` leaves it
(uv compiles nothing by default): each run points ``PYTHONPYCACHEPREFIX`` at an empty folder
and sets ``PYTHONDONTWRITEBYTECODE``, so Python finds no `.pyc` and compiles every module it
imports from source, as the first run after such an install does (and every run, where the
virtualenv is read-only to the user running it). Dropping the OS page cache needs root, so both
read their files from memory: the difference is the bytecode, not the disk. `python -c pass` is
the interpreter's own floor. Prints one JSON line.

    .venv/bin/python benchmarks/bench_startup.py            # 7 runs each
    .venv/bin/python benchmarks/bench_startup.py --runs 15
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOYALTY = Path(sys.executable).with_name("loyalty")  # the console script of this virtualenv
HEAVY = ("pandas", "numpy", "pyarrow", "lightgbm", "mlflow", "sklearn")
IMPORTS = (
    "import json, sys\nfrom pipeline.cli import main\nmain(['--help'])\n"
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)"
)


def wall(command: list[str], env: dict[str, str]) -> float:
    """Seconds one run of ``command`` takes, its output discarded; it must succeed."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_wall(command: list[str], runs: int, cold: bool) -> float:
    """Median over ``runs`` runs; cold runs each get an empty bytecode cache they cannot fill."""
    times = []
    for _ in range(runs):
        env = {**os.environ, "COLUMNS": "100"}
        with tempfile.TemporaryDirectory() as empty:
            if cold:
                env |= {"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
            times.append(wall(command, env))
    return statistics.median(times)


def heavy_imports() -> list[str]:
    """The heavy packages that `--help` imports (none is the goal)."""
    done = subprocess.run(
        [sys.executable, "-P", "-c", IMPORTS],  # -P: the installed package, not the cwd's
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


def main() -> None:
    """Measure and print one JSON line of medians (seconds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per measurement")
    args = parser.parse_args()
    help_command = [str(LOYALTY), "--help"]
    wall(help_command, dict(os.environ))  # the package's own bytecode written, as after a run
    result = {
        "command": "loyalty --help",
        "runs": args.runs,
        "warm_median_s": round(median_wall(help_command, args.runs, cold=False), 3),
        "cold_median_s": round(median_wall(help_command, args.runs, cold=True), 3),
        "python_pass_median_s": round(
            median_wall([sys.executable, "-c", "pass"], args.runs, cold=False), 3
        ),
        "heavy_modules_imported": heavy_imports(),
    }
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()
