"""The quality scoreboard on any export, and the paired effect of a change of params.

Runs the pipeline's own stage commands (``loyalty clean``, ``loyalty features``,
``loyalty train`` for each binary target, ``loyalty evaluate``) in a work folder, with
``params.yaml`` plus ``--set`` overrides, and prints the scoreboard (the model against every
baseline, everyone and the early-warning population, paired bootstrap 95% intervals).

    .venv/bin/python benchmarks/bench_quality.py --work /tmp/q/or2 \\
        --input ../shared/data/online_retail_ii/online_retail_ii_2009_2010.csv.gz \\
        --set data.source=online_retail

Each ``--variant NAME:KEY=VALUE[,KEY=VALUE...]`` is run too, from the same clean tables, and
compared with the base run on the test customers both share (same test cutoff: pin
``features.last_cutoff`` when a variant changes the grid): variant minus base AUC and Brier with
paired bootstrap intervals, per target and population. ``--clean DIR`` reuses clean tables
(the default data's ``data/clean``) instead of running ``loyalty clean``. ``--against DIR``
compares the base run with an earlier run's base (``DIR/base``, e.g. one made at an older
commit): how a code change moved the figures on the same test customers.

    .venv/bin/python benchmarks/bench_quality.py --work /tmp/q/sim --clean data/clean \\
        --variant grid14:features.step_days=14,features.last_cutoff=2024-10-01
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline.config import load_params
from pipeline.modeling import scoreboard

REPO = Path(__file__).resolve().parents[1]
DICTIONARY = REPO / "configs" / "features.yaml"


def _value(text: str) -> Any:
    return yaml.safe_load(text)


def with_overrides(base: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """Return ``base`` with ``section.key=value`` overrides (values parsed as YAML)."""
    out = copy.deepcopy(base)
    for pair in pairs:
        key, _, raw = pair.partition("=")
        node = out
        *parents, leaf = key.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = _value(raw)
    return out


def _loyalty(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(["loyalty", *args], check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(work: Path, params: dict[str, Any], clean: Path, features_cache: dict[str, Path]) -> dict:
    """Features (cached by their params), train every binary target, evaluate; timings."""
    work.mkdir(parents=True, exist_ok=True)
    params_path = work / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))  # dates stay dates
    load_params(params_path)  # a typo in an override fails here, in one line
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    seconds: dict[str, float] = {}
    key = hashlib.sha256(
        json.dumps([params["features"], params["labels"]], sort_keys=True, default=str).encode()
    ).hexdigest()
    features = features_cache.get(key)
    if features is None:
        features = work / "features"
        seconds["features"] = _loyalty(
            "features", "--params", str(params_path), "--clean", str(clean),
            "--dictionary", str(DICTIONARY), "--out", str(features), env=env,
        )  # fmt: skip
        features_cache[key] = features
    for target in params["train"]["targets"]:
        seconds[f"train_{target}"] = _loyalty(
            "train", "--params", str(params_path), "--target", target,
            "--features", str(features), "--dictionary", str(DICTIONARY),
            "--out", str(work / "models" / target), "--metrics", str(work / f"{target}.json"),
            "--plots", str(work / "plots" / target), env=env,
        )  # fmt: skip
    _loyalty(
        "evaluate", "--params", str(params_path), "--models", str(work / "models"),
        "--out", str(work / "quality.json"), "--markdown", str(work / "quality.md"), env=env,
    )  # fmt: skip
    return {"work": str(work), "seconds": seconds}


def paired_effect(
    base: Path, variant: Path, target: str, early_warning_days: int, n_boot: int, seed: int
) -> dict[str, Any]:
    """Variant minus base on the test customers both scored, per population."""
    columns = ["customer_id", "cutoff", "label", "probability", scoreboard.RECENCY_COLUMN]
    a = pd.read_parquet(base / "models" / target / "test_predictions.parquet", columns=columns)
    b = pd.read_parquet(variant / "models" / target / "test_predictions.parquet", columns=columns)
    both = a.merge(b, on=["customer_id", "cutoff"], suffixes=("_base", ""))
    if both.empty:
        return {"skipped": "no shared test rows (different test cutoffs: pin last_cutoff)"}
    out: dict[str, Any] = {"shared_rows": len(both), "base_rows": len(a), "variant_rows": len(b)}
    masks = scoreboard.populations(both, early_warning_days)
    y = both["label"].to_numpy(dtype="int64")
    for name, mask in masks.items():
        scores = {
            scoreboard.MODEL: both["probability"].to_numpy(dtype="float64")[mask],
            "base": both["probability_base"].to_numpy(dtype="float64")[mask],
        }
        if len(np.unique(y[mask])) < 2:
            out[name] = {"skipped": "fewer than two classes"}
            continue
        diff = scoreboard.paired_differences(y[mask], scores, n_boot, seed)["base"]
        out[name] = {"rows": int(mask.sum()), **diff}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="raw export: run loyalty clean on it")
    source.add_argument("--clean", type=Path, help="reuse these clean tables")
    parser.add_argument("--set", action="append", default=[], help="section.key=value")
    parser.add_argument("--variant", action="append", default=[], help="NAME:KEY=VAL,...")
    parser.add_argument("--against", type=Path, help="an earlier --work folder to compare with")
    args = parser.parse_args()
    base_params = with_overrides(yaml.safe_load(args.params.read_text()), args.set)
    work = args.work.resolve()
    clean = args.clean.resolve() if args.clean else work / "clean"
    if args.input is not None:
        work.mkdir(parents=True, exist_ok=True)
        (work / "clean_params.yaml").write_text(yaml.safe_dump(base_params, sort_keys=False))
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
        _loyalty(
            "clean", "--params", str(work / "clean_params.yaml"),
            "--input", str(args.input.resolve()), "--out", str(clean), env=env,
        )  # fmt: skip
    cache: dict[str, Path] = {}
    base = run(work / "base", base_params, clean, cache)
    print(json.dumps({"run": "base", **base}))
    print((work / "base" / "quality.md").read_text())
    evaluate = base_params.get("evaluate", {})
    settings = (
        int(evaluate.get("early_warning_days", 30)),
        int(evaluate.get("bootstrap", 1000)),
        int(evaluate.get("seed", 0)),
    )
    if args.against is not None:
        effects = {
            target: paired_effect(args.against / "base", work / "base", target, *settings)
            for target in base_params["train"]["targets"]
        }
        print(json.dumps({"run": "base", "against": str(args.against), "effect": effects}))
    for spec in args.variant:
        name, _, pairs = spec.partition(":")
        params = with_overrides(base_params, [p for p in pairs.split(",") if p])
        result = run(work / name, params, clean, cache)
        effects = {
            target: paired_effect(work / "base", work / name, target, *settings)
            for target in params["train"]["targets"]
        }
        print(json.dumps({"run": name, "overrides": pairs, **result, "effect": effects}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
