"""Training wall time and peak memory at the default size and on a 1M-row panel, plus MLflow
overhead per run. Prints one JSON line.

Usage: .venv/bin/python benchmarks/bench_train.py [--panel data/features/panel.parquet]
       [--rows 1000000] [--threads 1]

Each measurement runs in a fresh subprocess so that peak RSS (ru_maxrss) belongs to it alone.
With --panel, the default size is that panel and the large one tiles it to --rows rows (the
real feature set); without it, both are demo panels (20,000 customers x 12 cutoffs, then --rows).
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

REPO = Path(__file__).resolve().parents[1]


def _child(args: argparse.Namespace) -> None:
    import pandas as pd

    from pipeline import io
    from pipeline.config import MlflowParams, TrainParams
    from pipeline.modeling.train import train_target

    sys.path.insert(0, str(REPO))  # the demo panel is a test fixture (tests/support/)
    from tests.support.demo_panel import make_demo_panel

    if args.panel:
        panel = pd.read_parquet(args.panel)
        if args.rows and args.rows > len(panel):
            # Tile the real panel (customer ids made unique per copy) up to --rows rows, so the
            # large run has the real feature set.
            copies = -(-args.rows // len(panel))
            panel = pd.concat(
                [panel.assign(customer_id=panel["customer_id"] + f"~{i}") for i in range(copies)],
                ignore_index=True,
            ).head(args.rows)
    else:
        panel = make_demo_panel(n_customers=args.rows // args.cutoffs, n_cutoffs=args.cutoffs)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    dictionary = io.read_yaml(args.dictionary) if Path(args.dictionary).exists() else None
    result = train_target(
        panel, args.target, TrainParams(num_threads=args.threads), feature_config=dictionary
    )
    train_s = time.perf_counter() - started
    out = {
        "rows": len(panel),
        "features": result.metrics["n_features"],
        "train_seconds": round(train_s, 2),
        "trees": result.features["best_iteration"],
        "test_auc": round(result.metrics["model"]["roc_auc"], 4),
        "peak_rss_mb_before_train": round(rss_before, 1),
    }
    if args.mlflow:
        from pipeline import tracking

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            io.write_text(folder / "model.txt", result.model_text)
            io.write_json(folder / "calibration.json", result.calibration)
            io.write_json(folder / "features.json", result.features)
            settings = MlflowParams(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
            import os

            os.chdir(tmp)
            times = []
            for _ in range(args.mlflow):
                t0 = time.perf_counter()
                logged = tracking.log_training(
                    result=result,
                    params={"target": args.target},
                    mlflow_params=settings,
                    model_dir=folder,
                    plots_dir=None,
                )
                times.append(time.perf_counter() - t0)
                assert logged is not None and logged["version"] == str(len(times))
            out["mlflow_seconds_per_run"] = [round(t, 2) for t in times]
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


def _run(extra: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *extra], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--panel", default=None, help="a real panel.parquet for the default size")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cutoffs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--target", default="churn")
    parser.add_argument("--dictionary", default="configs/features.yaml")
    parser.add_argument("--mlflow", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    common = [
        "--threads",
        str(args.threads),
        "--target",
        args.target,
        "--dictionary",
        args.dictionary,
    ]
    default = (
        ["--panel", args.panel, "--rows", "0"]
        if args.panel
        else ["--rows", str(20_000 * args.cutoffs), "--cutoffs", str(args.cutoffs)]
    )
    result = {
        "default": _run([*default, *common, "--mlflow", "3"]),
        "large": _run(
            [
                *(["--panel", args.panel] if args.panel else []),
                "--rows",
                str(args.rows),
                "--cutoffs",
                str(args.cutoffs),
                *common,
            ]
        ),
        "threads": args.threads,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
