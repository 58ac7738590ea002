"""How far is the model from an oracle that sees the simulation's true latent state?

On the embedded simulation the truth behind each customer is known: the latent state at every
cutoff (:func:`pipeline.sources.simulation.truth.latent_state`: satisfaction, open-complaint
load, pending delivery effects, alive or dropped out, the true daily dropout hazard and the
traits that drive buying). For each binary target the script trains
:func:`~pipeline.modeling.train.train_target` (same params, catalog and seed) on the panel as
shipped (``model``) and on the panel with some of the true state joined on (customer_id, cutoff)
as extra features:

- ``oracle``: the whole latent state (``true_*`` columns);
- ``satisfaction``: true satisfaction alone, to see how much of the oracle's gain is
  satisfaction, i.e. whether the model's review / survey / NPS features carry what the
  simulation put in satisfaction;
- ``service``: satisfaction plus the open-complaint load and the pending delivery effects;
- ``alive``: whether the customer has dropped out (what BTYD's P(alive) estimates);
- ``rate``: the true base purchase rate and price sensitivity (what a long enough history
  would reveal; a short one only estimates it).

On the test cutoff it prints one JSON line per target, population and variant: AUC / Brier /
ECE of the variant and of the model, and paired bootstrap 95% intervals of variant minus model
(test rows resampled with replacement, the same resamples for both; one row per customer at the
test cutoff, so this resamples customers; fixed seed). Populations: ``all`` (the test cutoff's
panel) and ``early_warning`` (``days_since_last_order <= --early-days``: recent buyers, for whom
recency gives nothing away). Then one JSON line on the hazard curve over the realised
satisfaction range, and a markdown table of everything.

    .venv/bin/python benchmarks/bench_oracle.py --features data/features --params params.yaml \\
        [--dictionary configs/features.yaml] [--targets churn repurchase] \\
        [--variants oracle satisfaction service alive rate] [--bootstrap 1000] [--seed 0] \\
        [--early-days 30] [--effect NAME=VALUE ...]

The panel must come from ``loyalty generate`` with the ``generate`` section of ``--params``
(checked: every panel row must be a signed-up customer of the replay). ``--effect`` replaces
coefficients of :class:`~pipeline.sources.simulation.mechanisms.Effects`, for a panel generated
with the same replaced coefficients (they are not read from the export).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.config import load_params
from pipeline.features.catalog import load_catalog
from pipeline.modeling import metrics
from pipeline.modeling.train import TrainResult, train_target
from pipeline.sources.simulation.mechanisms import Effects, satisfaction_hazard
from pipeline.sources.simulation.truth import latent_state
from pipeline.targets import get_target, resolved_labels

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: the sibling benchmark is imported by package
    sys.path.insert(0, str(REPO))

from benchmarks.bench_btyd_features import (  # noqa: E402
    CHUNK,
    interval,
    paired_bootstrap,
    resample_counts,
)

KEYS = ["customer_id", "cutoff"]
#: latent-state columns given to the oracle (loyalty membership is observed: already a feature)
STATE = (
    "alive_at_cutoff",
    "satisfaction",
    "satisfaction_baseline",
    "unresolved_load",
    "pending_satisfaction",
    "pending_unresolved",
    "orders_per_year",
    "price_sensitivity",
    "expected_orders_missed",
    "satisfaction_hazard",
    "dropout_hazard",
)
VARIANTS: dict[str, tuple[str, ...]] = {
    "oracle": STATE,
    "satisfaction": ("satisfaction",),
    "service": ("satisfaction", "unresolved_load", "pending_satisfaction", "pending_unresolved"),
    "alive": ("alive_at_cutoff",),
    "rate": ("orders_per_year", "price_sensitivity"),
}
#: satisfaction quantiles of the hazard-curve line, and the horizon of its dropout probability
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def true_columns(names: tuple[str, ...]) -> list[str]:
    """Panel names of the latent-state columns (prefixed, so no panel feature is shadowed)."""
    return [f"true_{name}" for name in names]


def with_state(panel: pd.DataFrame, state: pd.DataFrame) -> pd.DataFrame:
    """``panel`` with every latent-state column joined on (customer_id, cutoff), rows kept.

    Raises ``SystemExit`` when a panel row has no signed-up customer in the replay: the panel
    is then not of this simulation (other seed, size or coefficients).
    """
    state = state.rename(columns={c: f"true_{c}" for c in STATE})
    joined = panel.merge(
        state[[*KEYS, "signed_up_at_cutoff", *true_columns(STATE)]],
        on=KEYS,
        how="left",
        validate="one_to_one",
    )
    unknown = int((~joined["signed_up_at_cutoff"].eq(True)).sum())  # NaN: no such customer
    if unknown:
        raise SystemExit(
            f"{unknown} panel rows are not signed-up customers of the replayed simulation: "
            "the panel is not of this params.generate / --effect"
        )
    return joined.drop(columns="signed_up_at_cutoff")


def same_ids(a: pd.Series, b: pd.Series) -> bool:
    """Whether two id columns hold the same ids in the same order (whatever their dtypes)."""
    return len(a) == len(b) and bool((a.astype(str).to_numpy() == b.astype(str).to_numpy()).all())


def weighted_ece(prob: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ECE (:func:`metrics.expected_calibration_error`) under each row of ``weights`` (B x n)."""
    edges = np.linspace(0.0, 1.0, metrics.ECE_BINS + 1)
    index = np.clip(np.digitize(prob, edges[1:-1], right=True), 0, metrics.ECE_BINS - 1)
    onehot = np.zeros((len(prob), metrics.ECE_BINS))
    onehot[np.arange(len(prob)), index] = 1.0
    w = np.atleast_2d(weights)
    gap = w @ (onehot * (y - prob)[:, None])  # per bin: sum of labels - sum of probabilities
    return np.abs(gap).sum(axis=1) / w.sum(axis=1)


def ece_interval(
    y: np.ndarray, base: np.ndarray, other: np.ndarray, resamples: int, seed: int
) -> list[float]:
    """Paired bootstrap 95% interval of ECE(other) - ECE(base), resamples as paired_bootstrap."""
    counts = resample_counts(len(y), resamples, seed)
    diff = np.concatenate(
        [
            weighted_ece(other, y, counts[s : s + CHUNK])
            - weighted_ece(base, y, counts[s : s + CHUNK])
            for s in range(0, resamples, CHUNK)
        ]
    )
    return interval(diff)


def scores(result: TrainResult) -> tuple[np.ndarray, np.ndarray]:
    """Test labels and calibrated probabilities of one run."""
    pred = result.test_predictions
    return pred["label"].to_numpy(np.float64), pred["probability"].to_numpy(np.float64)


def compare(
    y: np.ndarray, base: np.ndarray, other: np.ndarray, resamples: int, seed: int
) -> dict[str, Any]:
    """Metrics of both scorers and the paired bootstrap of other - base on the same rows."""
    m0, m1 = metrics.probability_metrics(y, base), metrics.probability_metrics(y, other)
    return {
        "rows": len(y),
        "label_rate": round(float(y.mean()), 4),
        **{f"{k}_model": round(m0[k], 4) for k in ("roc_auc", "brier", "ece")},
        **{f"{k}_variant": round(m1[k], 4) for k in ("roc_auc", "brier", "ece")},
        "auc_diff": round(m1["roc_auc"] - m0["roc_auc"], 4),
        "brier_diff": round(m1["brier"] - m0["brier"], 5),
        "ece_diff": round(m1["ece"] - m0["ece"], 4),
        **paired_bootstrap(y, base, other, resamples, seed),
        "ece_diff_ci95": ece_interval(y, base, other, resamples, seed),
    }


def hazard_curve(test: pd.DataFrame, effects: Effects, horizon_days: int) -> dict[str, Any]:
    """The satisfaction part of the hazard at quantiles of the test rows' true satisfaction.

    With ``horizon_days`` dropout probability (satisfaction part alone, no multipliers), and the
    share of the test rows alive whose satisfaction is below the hazard's midpoint.
    """
    alive = test[test["true_alive_at_cutoff"].astype(bool)]
    s = alive["true_satisfaction"].to_numpy(np.float64)
    points = np.quantile(s, QUANTILES)
    daily = satisfaction_hazard(points, effects)
    return {
        "alive_rows": len(alive),
        "satisfaction_quantiles": {
            f"q{int(q * 100):02d}": round(float(v), 3)
            for q, v in zip(QUANTILES, points, strict=True)
        },
        "daily_hazard": [round(float(h), 6) for h in daily],
        f"dropout_{horizon_days}d": [round(float(-np.expm1(-horizon_days * h)), 4) for h in daily],
        "share_below_midpoint": round(float(np.mean(s < effects.hazard_midpoint)), 4),
        "hazard_midpoint": effects.hazard_midpoint,
    }


def feedback_agreement(test: pd.DataFrame) -> dict[str, Any]:
    """How closely the observed satisfaction readings follow true satisfaction (Spearman)."""
    out: dict[str, Any] = {
        "share_with_feedback": round(float(test["has_feedback"].fillna(0).gt(0).mean()), 4)
    }
    for name in ("review_score_mean", "review_score_last", "survey_score_mean", "nps_last"):
        if name in test:
            rows = test[test[name].notna()]
            out[name] = {
                "share_present": round(len(rows) / len(test), 4),
                "spearman_true_satisfaction": round(
                    float(rows[name].corr(rows["true_satisfaction"], method="spearman")), 3
                ),
            }
    return out


def markdown(lines: list[dict[str, Any]]) -> str:
    """The comparison lines as one markdown table."""
    head = (
        "| target | population | rows | rate | variant | AUC | AUC model | AUC diff [95%] "
        "| Brier | Brier model | Brier diff [95%] | ECE | ECE model | ECE diff [95%] |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )

    def ci(values: list[float]) -> str:
        return f"[{values[0]:+.4f}, {values[1]:+.4f}]"

    rows = [
        f"| {d['target']} | {d['population']} | {d['rows']:,} | {d['label_rate']:.3f} "
        f"| {d['variant']} | {d['roc_auc_variant']:.4f} | {d['roc_auc_model']:.4f} "
        f"| {d['auc_diff']:+.4f} {ci(d['auc_diff_ci95'])} | {d['brier_variant']:.4f} "
        f"| {d['brier_model']:.4f} | {d['brier_diff']:+.4f} {ci(d['brier_diff_ci95'])} "
        f"| {d['ece_variant']:.4f} | {d['ece_model']:.4f} | {d['ece_diff']:+.4f} "
        f"{ci(d['ece_diff_ci95'])} |"
        for d in lines
    ]
    return "\n".join([head, *rows])


def parse_effects(pairs: list[str]) -> Effects:
    """``Effects`` with the ``NAME=VALUE`` replacements."""
    known = {f.name for f in dataclasses.fields(Effects)}
    changes: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in known or not value:
            raise SystemExit(f"--effect {pair}: expected NAME=VALUE with NAME a field of Effects")
        changes[name] = float(value)
    return dataclasses.replace(Effects(), **changes)


def main() -> None:
    """Join the latent state, train model and variants per target, print JSON lines and a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, required=True, help="Folder with panel.parquet.")
    parser.add_argument("--params", type=Path, required=True, help="params.yaml of the panel.")
    parser.add_argument("--dictionary", type=Path, default=REPO / "configs/features.yaml")
    parser.add_argument("--targets", nargs="+", default=["churn", "repurchase"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--bootstrap", type=int, default=1000, help="Bootstrap resamples.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the resamples.")
    parser.add_argument("--early-days", type=float, default=30.0, help="Early-warning recency.")
    parser.add_argument("--effect", action="append", default=[], help="Effects NAME=VALUE.")
    args = parser.parse_args()
    if not args.params.exists():
        raise SystemExit(f"{args.params}: file not found")  # load_params would use defaults
    started = time.perf_counter()
    effects = parse_effects(args.effect)

    settings = load_params(args.params)
    panel = io.read_parquet(args.features / "panel.parquet")
    summary_path = args.features / "summary.json"
    summary = io.read_json(summary_path) if summary_path.exists() else None
    labels = resolved_labels(settings.labels, summary)
    catalog = load_catalog(args.dictionary)  # as `loyalty train`; unlisted names are undirected

    t0 = time.perf_counter()
    cutoffs = [pd.Timestamp(c).date() for c in sorted(panel["cutoff"].unique())]
    joined = with_state(panel, latent_state(settings.generate, cutoffs, effects))
    state_s = round(time.perf_counter() - t0, 2)
    shipped = [c for c in joined.columns if not c.startswith("true_")]

    lines: list[dict[str, Any]] = []
    for name in args.targets:
        target = get_target(labels, name)
        if target.kind != "binary" or target.horizon_days is None:
            raise SystemExit(f"{name}: not a binary target with a horizon")
        results: dict[str, TrainResult] = {}
        train_s: dict[str, float] = {}
        for variant in ["model", *args.variants]:
            extra = true_columns(VARIANTS[variant]) if variant != "model" else []
            t0 = time.perf_counter()
            frame = joined[shipped + extra]
            results[variant] = train_target(frame, name, settings.train, labels, catalog, summary)
            train_s[variant] = round(time.perf_counter() - t0, 1)
        base = results["model"]
        y, p0 = scores(base)
        test_keys = base.test_predictions[KEYS]
        # the test rows are the test cutoff's, one per customer, in the panel's order
        test = joined[joined["split"] == "test"].reset_index(drop=True)
        if not same_ids(test["customer_id"], test_keys["customer_id"]):
            raise SystemExit(f"{name}: the test predictions are not the panel's test rows")
        populations = {
            "all": np.ones(len(y), dtype=bool),
            "early_warning": test["days_since_last_order"].le(args.early_days).to_numpy(),
        }
        for variant in args.variants:
            other = results[variant]
            if not same_ids(other.test_predictions["customer_id"], test_keys["customer_id"]):
                raise SystemExit(f"{name}: {variant} scored different test rows")
            _, p1 = scores(other)
            for population, mask in populations.items():
                line = {
                    "benchmark": "oracle",
                    "target": name,
                    "horizon_days": target.horizon_days,
                    "test_cutoff": base.metrics["test_cutoff"][:10],
                    "population": population,
                    "variant": variant,
                    "features_added": true_columns(VARIANTS[variant]),
                    **compare(y[mask], p0[mask], p1[mask], args.bootstrap, args.seed),
                    "bootstrap": args.bootstrap,
                    "seed": args.seed,
                    "train_s": {"model": train_s["model"], variant: train_s[variant]},
                    "best_iteration": {
                        "model": base.metrics["best_iteration"],
                        variant: other.metrics["best_iteration"],
                    },
                }
                lines.append(line)
                print(json.dumps(line), flush=True)
        diagnostics = {
            "benchmark": "oracle_diagnostics",
            "target": name,
            "hazard_curve": hazard_curve(test, effects, int(target.horizon_days)),
            "hazard_curve_early_warning": hazard_curve(
                test[populations["early_warning"]], effects, int(target.horizon_days)
            ),
            "feedback": feedback_agreement(test),
            "true_alive_share": {
                p: round(float(test.loc[m, "true_alive_at_cutoff"].mean()), 4)
                for p, m in populations.items()
            },
        }
        print(json.dumps(diagnostics), flush=True)
    print(
        json.dumps(
            {
                "benchmark": "oracle_run",
                "features": str(args.features),
                "effects_changed": args.effect,
                "cutoffs": len(cutoffs),
                "latent_state_s": state_s,
                "wall_s": round(time.perf_counter() - started, 1),
            }
        ),
        flush=True,
    )
    print()
    print(markdown(lines))


if __name__ == "__main__":
    main()
