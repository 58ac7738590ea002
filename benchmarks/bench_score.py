"""Benchmark `loyalty score` end to end: clean -> snapshot -> every model -> reasons -> write.

For each N: generate N customers with the synthetic source (`loyalty generate` with a params
override), then time `loyalty score` on the raw export (subprocess) and sample the resident
memory of its whole process tree (driver + workers, or Spark JVM + Python workers) every 0.2 s.
Prints one JSON line per run: wall seconds, customers/s, peak memory (MiB), and the run
manifest's per-step timings (where the time goes). ``--profile`` instead runs cProfile on the
map of one partition in-process and prints the top functions by cumulative time.

Models: ``--models DIR``, a folder with one model folder per trained target (``train.targets``
then ``train.value_target`` of params: churn/, repurchase/, value/), passed as one ``--model
DIR`` like the DVC ``score`` stage; else a small pipeline run (3000 customers) is generated,
cleaned, featurised and trained for every one of those targets first in ``--workdir`` (models
already there are reused only when every target has one).

Examples:
    python benchmarks/bench_score.py --customers 100000 1000000
    python benchmarks/bench_score.py --customers 100000 --engine spark
    python benchmarks/bench_score.py --customers 20000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

from pipeline.config import load_params

REPO = Path(__file__).resolve().parents[1]
LOYALTY = str(Path(sys.executable).with_name("loyalty"))
SOURCE = str(REPO / "configs" / "sources" / "synthetic.yaml")
DICTIONARY = str(REPO / "configs" / "features.yaml")


def params_file(work: Path, n_customers: int) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["source_config"] = SOURCE
    params["generate"]["n_customers"] = n_customers
    params["clean"]["as_of"] = "2025-06-01T00:00:00Z"
    params["mlflow"]["required"] = False
    params["mlflow"]["tracking_uri"] = f"sqlite:///{work / 'mlflow.db'}"
    path = work / f"params-{n_customers}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run(*args: str) -> None:
    subprocess.run([LOYALTY, *args], check=True, stdout=subprocess.DEVNULL)


def generate(work: Path, n: int) -> tuple[Path, Path]:
    params, raw = params_file(work, n), work / f"raw-{n}"
    if not (raw / "transactions.csv").exists():
        run("generate", "--params", str(params), "--out", str(raw))
    return params, raw


def train_models(work: Path) -> Path:
    """Train every target's model (the DVC ``train`` and ``train_value`` stages) on a small run."""
    from pipeline.modeling.artifacts import MODEL_FILE

    params, raw = generate(work, 3000)
    models = work / "models"
    targets = load_params(params).train.model_targets()
    if all((models / target / MODEL_FILE).exists() for target in targets):
        return models
    p = ["--params", str(params)]
    run("clean", *p, "--input", str(raw), "--out", str(work / "clean"))
    run(
        "features",
        *p,
        "--clean",
        str(work / "clean"),
        "--out",
        str(work / "features"),
        "--dictionary",
        DICTIONARY,
    )
    for target in targets:
        run(
            "train",
            *p,
            "--target",
            target,
            "--features",
            str(work / "features"),
            "--out",
            str(models / target),
            "--metrics",
            str(work / f"{target}.json"),
            "--plots",
            str(work / "plots" / target),
            "--dictionary",
            DICTIONARY,
        )
    return models


def peak_rss(process: subprocess.Popen, stop: threading.Event, out: list[int]) -> None:
    """Sample the summed RSS of ``process`` and all its descendants until ``stop``."""
    root = psutil.Process(process.pid)
    peak = 0
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out.append(peak)


def bench(
    work: Path, models: Path, n: int, engine: str, partitions: int, workers: int, as_of: str
) -> dict:
    params, raw = generate(work, n)
    out = work / f"scores-{n}-{engine}.parquet"
    cmd = [
        LOYALTY,
        "score",
        "--params",
        str(params),
        "--source",
        SOURCE,
        "--input",
        str(raw),
        "--as-of",
        as_of,
        "--model",
        str(models),
        "--features-config",
        DICTIONARY,
        "--out",
        str(out),
        "--engine",
        engine,
        "--partitions",
        str(partitions),
        "--workers",
        str(workers),
        "--timings",
        "--no-progress",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stop, peak = threading.Event(), []
    sampler = threading.Thread(target=peak_rss, args=(process, stop, peak))
    sampler.start()
    _, err = process.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(err.decode()[-2000:])
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    scored = manifest["customers_scored"]
    return {
        "bench": "score",
        "engine": engine,
        "customers_generated": n,
        "customers_scored": scored,
        "rows_in": manifest["rows_in"],
        "input_mib": round(sum(f.stat().st_size for f in raw.glob("*.csv")) / 2**20, 1),
        "partitions": partitions,
        "workers": workers,
        "wall_seconds": round(wall, 1),
        "customers_per_second": round(scored / wall, 1),
        "peak_rss_mib": round(peak[0] / 2**20, 1),
        "timings": manifest["timings"],
    }


def profile(work: Path, models: Path, n: int, as_of: str, top: int = 25) -> None:
    """cProfile the map on one partition in-process (clean, snapshot, score with reasons)."""
    import pandas as pd

    from pipeline.engines import partitioning
    from pipeline.engines import work as passes
    from pipeline.features.catalog import load_catalog
    from pipeline.features.snapshot import cutoff_timestamp
    from pipeline.scoring import ScoringRules

    params, raw = generate(work, n)
    settings = load_params(params)
    refs = passes.resolve_models(
        [str(models)], work / "m", settings.mlflow, settings.train.model_targets()
    )
    grid = tuple(tuple(row) for row in load_catalog(DICTIONARY).segment_grid())
    rules = ScoringRules(
        settings.business, grid, settings.score.reasons_top_share, settings.explain.top_reasons
    )
    job = passes.ScoreJob(
        SOURCE,
        DICTIONARY,
        cutoff_timestamp(as_of),
        pd.Timestamp(settings.clean.as_of),
        refs,
        settings,
        rules,
    )
    split = partitioning.split_export(SOURCE, [raw], work / "profile-raw", 4)
    profiler = cProfile.Profile()
    profiler.enable()
    tables, _ = passes.clean_pass(job, split.part_inputs(work / "profile-raw", 0))
    passes.score_partition(job, tables)
    profiler.disable()
    print(f"# cProfile of one partition (1/4 of {n} customers), top {top} by cumulative time")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--as-of", default="2024-12-01")
    parser.add_argument("--models", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/loyalty-bench-score"))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = args.models or train_models(args.workdir)
    for n in args.customers:
        if args.profile:
            profile(args.workdir, models, n, args.as_of)
            continue
        result = bench(
            args.workdir, models, n, args.engine, args.partitions, args.workers, args.as_of
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
