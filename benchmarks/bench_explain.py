"""Speed and peak memory of `explain` (exact TreeSHAP + additivity + concepts + reason codes).

Rows are drawn with replacement from a real model's test snapshot (``--model``/``--features``,
e.g. the output of ``dvc repro``), or, without them, from a synthetic 52-feature LightGBM model
of the same shape as the default churn model. Each size runs in a fresh process so that its
peak RSS is its own. Also compares LightGBM ``pred_contrib`` with ``shap.TreeExplainer`` on the
same rows. Prints one JSON line per measurement.

    .venv/bin/python benchmarks/bench_explain.py                         # 100k and 1M rows
    .venv/bin/python benchmarks/bench_explain.py --model models/churn --features data/features
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

import lightgbm as lgb
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
N_FEATURES = 52


def synthetic_model(folder: Path, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """A 52-feature LightGBM model (72 trees, 31 leaves) and a 20k-row frame to sample from."""
    rng = np.random.default_rng(seed)
    n = 20_000
    x = pd.DataFrame(
        rng.gamma(2.0, 20.0, (n, N_FEATURES)), columns=[f"f{i:02d}" for i in range(N_FEATURES)]
    )
    x[x < 5] = np.nan  # some missing values, as in real features
    logit = 0.03 * (x["f00"].fillna(40) - 40) - 0.02 * (x["f01"].fillna(40) - 40)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": 31,
        "min_data_in_leaf": 100,
        "verbose": -1,
        "num_threads": 2,
        "seed": seed,
        "deterministic": True,
    }
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=72)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.txt").write_text(booster.model_to_string())
    (folder / "features.json").write_text(
        json.dumps(
            {
                "features": [{"name": c, "dtype": "float64"} for c in x.columns],
                "lightgbm_version": lgb.__version__,
            }
        )
    )
    (folder / "calibration.json").write_text(json.dumps({"method": "platt", "a": 1.0, "b": 0.0}))
    frame = x.assign(
        customer_id=[f"C{i:07d}" for i in range(n)], cutoff=pd.Timestamp("2024-10-01", tz="UTC")
    )
    return folder, frame


def measure(model_dir: Path, source: Path, dictionary: Path | None, n: int) -> dict:
    """Run explain on ``n`` rows sampled from ``source`` (in this process)."""
    from pipeline.business import Reference
    from pipeline.explain import concept_importance, explain_frame
    from pipeline.modeling.artifacts import load_predictor
    from pipeline.reasons import load_dictionary, reason_codes
    from pipeline.sentences import comparisons

    predictor = load_predictor(model_dir)
    pool = pd.read_parquet(source)
    rng = np.random.default_rng(1)
    frame = pool.iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
    frame["customer_id"] = pd.array([f"C{i:08d}" for i in range(n)], dtype="string")
    # No dictionary given: the project's (names it does not list never speak).
    parsed = load_dictionary(dictionary or REPO / "configs" / "features.yaml")
    # A trained model's comparisons (median, share with none); the synthetic one has none.
    shipped = predictor.features.get("reference")
    references = comparisons(Reference.from_dict(shipped, "bench")) if shipped else None
    names = predictor.feature_names
    started = time.perf_counter()
    table, summary = explain_frame(predictor, frame, names, max_rows=n)
    shap_s = time.perf_counter() - started
    concepts = concept_importance(table, parsed.concepts(names))
    concepts_s = time.perf_counter() - started - shap_s
    reasons = reason_codes(frame, table, parsed, top_k=3, references=references)
    total_s = time.perf_counter() - started
    assert len(reasons) == n and len(concepts)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "bench": "explain",
        "rows": n,
        "features": len(names),
        "shap_and_additivity_s": round(shap_s, 2),
        "concepts_s": round(concepts_s, 2),
        "reason_codes_s": round(total_s - shap_s - concepts_s, 2),
        "total_s": round(total_s, 2),
        "additivity_max_abs_error": summary["additivity_max_abs_error"],
        "peak_rss_mb": round(peak_mb),
        "rows_per_s": round(n / total_s),
    }


def compare(model_dir: Path, source: Path, n: int) -> dict:
    """Time pred_contrib against shap.TreeExplainer on the same ``n`` rows; check they agree."""
    import shap

    from pipeline.modeling.artifacts import load_predictor

    predictor = load_predictor(model_dir)
    x = predictor.prepare(pd.read_parquet(source).head(n))
    started = time.perf_counter()
    ours = predictor.booster.predict(x, pred_contrib=True)
    lgb_s = time.perf_counter() - started
    started = time.perf_counter()
    explainer = shap.TreeExplainer(predictor.booster)
    theirs = np.asarray(explainer.shap_values(x))
    shap_s = time.perf_counter() - started
    return {
        "bench": "pred_contrib_vs_tree_explainer",
        "rows": len(x),
        "pred_contrib_s": round(lgb_s, 3),
        "tree_explainer_s": round(shap_s, 3),
        "speedup": round(shap_s / lgb_s, 1),
        "max_abs_difference": float(np.max(np.abs(ours[:, :-1] - theirs))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--model", type=Path, help="model folder (default: synthetic model)")
    parser.add_argument("--features", type=Path, help="feature folder with panel.parquet")
    parser.add_argument("--dictionary", type=Path, default=REPO / "configs" / "features.yaml")
    parser.add_argument("--compare-rows", type=int, default=5000)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, source, dictionary, n = args.child
        print(
            json.dumps(
                measure(
                    Path(model),
                    Path(source),
                    Path(dictionary) if dictionary != "-" else None,
                    int(n),
                )
            )
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            panel = pd.read_parquet(args.features / "panel.parquet")
            source = Path(tmp) / "pool.parquet"
            panel[panel["split"] == "test"].to_parquet(source)
            model, dictionary = args.model, str(args.dictionary)
        else:
            model, frame = synthetic_model(Path(tmp) / "model")
            source = Path(tmp) / "pool.parquet"
            frame.to_parquet(source)
            dictionary = "-"
        print(json.dumps(compare(model, source, args.compare_rows)), flush=True)
        for n in args.rows:
            child = [
                sys.executable,
                __file__,
                "--child",
                str(model),
                str(source),
                dictionary,
                str(n),
            ]
            out = subprocess.run(child, capture_output=True, text=True, cwd=REPO)
            if out.returncode:
                sys.exit(out.stderr)
            print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
