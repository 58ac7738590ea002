"""Does `loyalty train` give the same model bytes under another machine's BLAS?

OpenBLAS picks its kernels by CPU and splits sums by thread count, so two machines can train
models that differ in the last digits; `pipeline.pin_blas` fixes both. This script trains one
target on the pipeline's own features under the pin (the default), and then under settings
another machine would get without it (a user-set value opts out of the pin): other kernels
(`OPENBLAS_CORETYPE`), more threads (`OPENBLAS_NUM_THREADS`), and numpy's AVX2 loops off.
It prints, per file of the model folder, whether its bytes match the pinned run's.

    .venv/bin/python benchmarks/bench_same_bytes.py                  # churn
    .venv/bin/python benchmarks/bench_same_bytes.py --target repurchase

Needs `dvc repro` to have built data/features. Each run logs to a throw-away MLflow store.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "pinned (default)": {},
    "other kernels (OPENBLAS_CORETYPE=PRESCOTT)": {"OPENBLAS_CORETYPE": "PRESCOTT"},
    "two threads (OPENBLAS_NUM_THREADS=2)": {"OPENBLAS_NUM_THREADS": "2"},
    "numpy AVX2 loops off (NPY_DISABLE_CPU_FEATURES=X86_V3)": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
    },
}


def train(target: str, extra: dict[str, str], scratch: Path) -> dict[str, str]:
    """Train ``target`` into ``scratch`` under ``extra`` env; return each file's sha256."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "NPY_"))}
    env.update(extra, MLFLOW_TRACKING_URI=f"sqlite:///{scratch / 'mlflow.db'}")
    out = scratch / "model"
    cmd = [
        *(sys.executable, "-c", "from pipeline.cli import run; run()"),
        *("train", "--params", "params.yaml"),
        *("--target", target, "--features", "data/features"),
        *("--dictionary", "configs/features.yaml", "--dvc-lock", "dvc.lock", "--out", str(out)),
        *("--metrics", str(scratch / "metrics.json"), "--plots", str(scratch / "plots")),
    ]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="churn")
    args = parser.parse_args()
    runs = {}
    for name, extra in SETTINGS.items():
        with tempfile.TemporaryDirectory() as tmp:
            runs[name] = train(args.target, extra, Path(tmp))
    pinned = runs["pinned (default)"]
    for name, files in runs.items():
        same = [f for f in files if files[f] == pinned.get(f)]
        differ = [f for f in files if files[f] != pinned.get(f)]
        print(f"{name}: same {len(same)} of {len(files)} files; differ: {', '.join(differ) or '-'}")
    print(json.dumps({"target": args.target, "sha256": runs}, indent=1))


if __name__ == "__main__":
    main()
