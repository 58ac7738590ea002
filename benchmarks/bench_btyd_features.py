"""Do BG/NBD quantities help the LightGBM churn and repurchase models as features?

For each cutoff of the panel, a BG/NBD model is fitted on that cutoff's rows alone (the
population at the cutoff, with its pre-cutoff history: :func:`btyd.inputs_from_snapshot`), and
two columns are added to those rows: ``btyd_p_alive`` and ``btyd_expected_orders`` (expected
purchases in the target's horizon). A cutoff whose fit does not converge gets NaN in both and
is listed with the fit's message. Each binary target is then trained twice with
:func:`train_target`, same params and seed, without and with the two columns; on the test
cutoff the script prints, per target, one JSON line: the AUC and Brier score of both, their
differences, and paired bootstrap 95% intervals of the differences (the test rows resampled
with replacement, the same resamples for both models), plus the fit failures and times.

    .venv/bin/python benchmarks/bench_btyd_features.py --features data/features \\
        --params params.yaml [--dictionary configs/features.yaml] \\
        [--targets churn repurchase] [--bootstrap 1000] [--seed 0]

The per-cutoff fit reads the whole population at the cutoff, so a customer's two features
depend on who else is in the batch; this measures whether the information helps. ``--shipped``
measures what the pipeline ships instead (``train.btyd_features``): one BG/NBD fitted on the
training rows, saved with the model and applied to every row
(:mod:`pipeline.modeling.btyd_features`); "without" is always ``btyd_features: []``.

    .venv/bin/python benchmarks/bench_btyd_features.py --features data/features \
        --params params.yaml --shipped
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline import io
from pipeline.config import load_params
from pipeline.features.catalog import load_catalog
from pipeline.modeling import btyd, scoreboard
from pipeline.modeling.train import TrainResult, train_target
from pipeline.targets import get_target, resolved_labels

REPO = Path(__file__).resolve().parents[1]
FEATURES = ("btyd_p_alive", "btyd_expected_orders")
CHUNK = scoreboard.CHUNK  # bootstrap resamples per vectorised batch (CHUNK x rows weights)


@dataclass(frozen=True)
class CutoffFit:
    """The BG/NBD fit of one cutoff's population."""

    cutoff: pd.Timestamp
    split: str
    rows: int
    model: btyd.BgNbd
    seconds: float


def fit_per_cutoff(panel: pd.DataFrame) -> list[CutoffFit]:
    """Fit BG/NBD on each cutoff's rows alone (their pre-cutoff history), in cutoff order."""
    fits = []
    for cutoff, rows in panel.groupby("cutoff", sort=True):
        started = time.perf_counter()
        x, t_x, age, _ = btyd.inputs_from_snapshot(rows)
        model = btyd.fit_bgnbd(x, t_x, age)
        splits = sorted(str(s) for s in rows["split"].dropna().unique())
        seconds = time.perf_counter() - started
        fits.append(CutoffFit(pd.Timestamp(cutoff), "+".join(splits), len(rows), model, seconds))
    return fits


def btyd_columns(panel: pd.DataFrame, fits: list[CutoffFit], horizon_days: float) -> pd.DataFrame:
    """``btyd_p_alive`` and ``btyd_expected_orders`` (in ``horizon_days``) on ``panel``'s index.

    Rows of a cutoff whose fit did not converge, and rows without a usable history, get NaN.
    """
    out = pd.DataFrame(np.nan, index=panel.index, columns=list(FEATURES), dtype="float64")
    by_cutoff = {fit.cutoff: fit.model for fit in fits}
    for cutoff, rows in panel.groupby("cutoff", sort=True):
        model = by_cutoff[pd.Timestamp(cutoff)]
        if not model.converged:
            continue
        x, t_x, age, _ = btyd.inputs_from_snapshot(rows)
        out.loc[rows.index, FEATURES[0]] = btyd.probability_alive(model, x, t_x, age)
        out.loc[rows.index, FEATURES[1]] = btyd.expected_purchases(model, horizon_days, x, t_x, age)
    return out


def weighted_auc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` under each row of ``weights`` (the scoreboard's implementation)."""
    return scoreboard.weighted_auc(np.asarray(y), scores, np.atleast_2d(weights))


def weighted_brier(prob: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Brier score of ``prob`` under each row of ``weights`` (the scoreboard's implementation)."""
    return scoreboard.weighted_brier(np.asarray(y, dtype=np.float64), prob, np.atleast_2d(weights))


def resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """Row counts (resamples x n) of bootstrap draws: the scoreboard's resamples."""
    return np.vstack(scoreboard.resample_weights(n, resamples, seed))


def interval(values: np.ndarray) -> list[float]:
    """Percentile 95% interval, rounded."""
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def paired_bootstrap(
    y: np.ndarray, without: np.ndarray, with_: np.ndarray, resamples: int, seed: int
) -> dict[str, object]:
    """Paired bootstrap of AUC and Brier differences (with - without) over the same resamples."""
    y = np.asarray(y, dtype=np.float64)
    auc_diff, brier_diff = np.empty(resamples), np.empty(resamples)
    counts = resample_counts(len(y), resamples, seed)
    for start in range(0, resamples, CHUNK):
        w = counts[start : start + CHUNK]
        stop = start + len(w)
        auc_diff[start:stop] = weighted_auc(with_, y, w) - weighted_auc(without, y, w)
        brier_diff[start:stop] = weighted_brier(with_, y, w) - weighted_brier(without, y, w)
    return {
        "auc_diff_ci95": interval(auc_diff),
        "auc_diff_se": round(float(np.nanstd(auc_diff, ddof=1)), 4),
        "auc_diff_share_above_0": round(float(np.mean(auc_diff > 0)), 4),
        "brier_diff_ci95": interval(brier_diff),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def gain_share(result: TrainResult, names: tuple[str, ...]) -> dict[str, float]:
    """Share of the model's total split gain taken by each of ``names``."""
    booster = lgb.Booster(model_str=result.model_text)
    gain = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    total = float(sum(gain.values())) or 1.0
    return {name: round(float(gain.get(name, 0.0)) / total, 4) for name in names}


def main() -> None:
    """Fit per cutoff, train each target without and with the features, print JSON lines."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, required=True, help="Folder with panel.parquet.")
    parser.add_argument("--params", type=Path, required=True, help="params.yaml of the panel.")
    parser.add_argument("--dictionary", type=Path, default=REPO / "configs/features.yaml")
    parser.add_argument("--targets", nargs="+", default=["churn", "repurchase"])
    parser.add_argument("--bootstrap", type=int, default=1000, help="Bootstrap resamples.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the resamples.")
    parser.add_argument(
        "--shipped",
        action="store_true",
        help="Compare the shipped features (train.btyd_features) instead of per-cutoff fits.",
    )
    args = parser.parse_args()
    if not args.params.exists():
        raise SystemExit(f"{args.params}: file not found")  # load_params would use defaults

    settings = load_params(args.params)
    panel = io.read_parquet(args.features / "panel.parquet")
    summary_path = args.features / "summary.json"
    summary = io.read_json(summary_path) if summary_path.exists() else None
    labels = resolved_labels(settings.labels, summary)
    catalog = load_catalog(args.dictionary)  # as `loyalty train`; unlisted names are undirected
    btyd_source = (REPO / "pipeline/modeling/btyd.py").read_bytes()

    started = time.perf_counter()
    fits = fit_per_cutoff(panel)
    fit_s = time.perf_counter() - started
    failed = [
        {"cutoff": f.cutoff.date().isoformat(), "split": f.split, "message": f.model.message}
        for f in fits
        if not f.model.converged
    ]
    for name in args.targets:
        target = get_target(labels, name)
        if target.kind != "binary" or target.horizon_days is None:
            raise SystemExit(f"{name}: not a binary target with a horizon")
        t0 = time.perf_counter()
        extra = btyd_columns(panel, fits, float(target.horizon_days))
        features_s = time.perf_counter() - t0
        results, train_s = {}, {}
        without = settings.train.model_copy(update={"btyd_features": ()})
        variants = (
            (
                ("without", panel, without),
                ("with", panel, without.model_copy(update={"btyd_features": (name,)})),
            )
            if args.shipped
            else (("without", panel, without), ("with", pd.concat([panel, extra], axis=1), without))
        )
        for variant, frame, train in variants:
            t0 = time.perf_counter()
            results[variant] = train_target(frame, name, train, labels, catalog, summary)
            train_s[variant] = round(time.perf_counter() - t0, 1)
        a, b = (results[v].test_predictions for v in ("without", "with"))
        if not (a["customer_id"].equals(b["customer_id"]) and a["label"].equals(b["label"])):
            raise SystemExit(f"{name}: the two runs scored different test rows")
        y = a["label"].to_numpy(dtype=np.float64)
        p0, p1 = (d["probability"].to_numpy(dtype=np.float64) for d in (a, b))
        m0, m1 = (results[v].metrics for v in ("without", "with"))
        test_rows = extra.loc[panel["split"] == "test"]
        test_cutoff = m0["test_cutoff"][:10]
        figures: dict[str, object] = {
            "benchmark": "btyd_features",
            "mode": "shipped" if args.shipped else "per_cutoff",
            "features": str(args.features),
            "target": name,
            "horizon_days": target.horizon_days,
            "test_cutoff": test_cutoff,
            "rows": len(y),
            "label_rate": round(float(y.mean()), 4),
            "auc_without": round(m0["model"]["roc_auc"], 4),
            "auc_with": round(m1["model"]["roc_auc"], 4),
            "auc_diff": round(m1["model"]["roc_auc"] - m0["model"]["roc_auc"], 4),
            "brier_without": round(m0["model"]["brier"], 5),
            "brier_with": round(m1["model"]["brier"], 5),
            "brier_diff": round(m1["model"]["brier"] - m0["model"]["brier"], 5),
            **paired_bootstrap(y, p0, p1, args.bootstrap, args.seed),
            "bootstrap": args.bootstrap,
            "seed": args.seed,
            "auc_btyd_baseline": _rounded(m0["baselines"].get("btyd", {}).get("roc_auc")),
            "auc_rfm_lgbm": round(m0["baselines"]["rfm_lgbm"]["roc_auc"], 4),
            "gain_share_with": gain_share(results["with"], FEATURES),
            "best_iteration": {"without": m0["best_iteration"], "with": m1["best_iteration"]},
            "test_nan_share": {c: round(float(test_rows[c].isna().mean()), 4) for c in FEATURES},
            "cutoffs": len(fits),
            "fits_failed": len(failed),
            "failed": failed,
            "test_fit_failed": any(f["cutoff"] == test_cutoff for f in failed),
            "fit_s": round(fit_s, 2),
            "fit_s_max_cutoff": round(max(f.seconds for f in fits), 2),
            "features_s": round(features_s, 2),
            "train_s": train_s,
            "btyd_py_sha256": hashlib.sha256(btyd_source).hexdigest()[:12],
        }
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
