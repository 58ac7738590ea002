"""Does a group of features help? Train each binary target with all features and without a group.

Each binary target is trained with :func:`train_target` (the pipeline's params and seed) on the
whole panel, then once per feature group with that group's columns dropped from the panel. On
the test cutoff the script prints, per target and group, one JSON line: AUC and Brier score of
both models, their differences (all minus without: positive AUC = the group helps, negative
Brier = the group helps) and paired bootstrap 95% intervals of the differences over customers
(the test rows resampled with replacement, the same resamples for both models, fixed seed);
then one Markdown table of all lines (for docs/modeling.md, "Ablation of the line-level
features", which gives the command of each figure there).

    .venv/bin/python benchmarks/bench_ablation.py --features data/features --params params.yaml \\
        --group gaps=inter_purchase_gap_days_mean,inter_purchase_gap_days_std \\
        --concept satisfaction \\
        [--dictionary configs/features.yaml] [--targets churn repurchase] \\
        [--bootstrap 1000] [--seed 0] [--train-seed N]

A group is ``name=feature,feature,...`` (``--group``, repeatable) or every feature of a
dictionary concept (``--concept``, repeatable). Columns of a group that the panel lacks (the
source has no input for them) are listed as ``absent``; a group with no column in the panel is
skipped with a note. The derived BTYD features (``train.btyd_features``) are added by training
in both runs.

The intervals cover the sampling of test customers, not the training run: ``--train-seed``
(default: ``train.seed`` of the params) retrains both models with another LightGBM seed, which
shows how much of a difference is the bagging and feature sampling of one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: the sibling benchmark is imported by package
    sys.path.insert(0, str(REPO))

from benchmarks.bench_btyd_features import gain_share, paired_bootstrap  # noqa: E402
from pipeline import io  # noqa: E402
from pipeline.config import load_params  # noqa: E402
from pipeline.features.catalog import Catalog, load_catalog  # noqa: E402
from pipeline.modeling.train import TrainResult, train_target  # noqa: E402
from pipeline.targets import get_target, resolved_labels  # noqa: E402


@dataclass(frozen=True)
class Group:
    """A named set of feature columns to remove."""

    name: str
    features: tuple[str, ...]


def parse_group(text: str) -> Group:
    """``name=feat1,feat2`` -> :class:`Group`; a one-line ``SystemExit`` when malformed."""
    name, sep, rest = text.partition("=")
    features = tuple(f.strip() for f in rest.split(",") if f.strip())
    if not sep or not name.strip() or not features:
        raise SystemExit(f"--group {text!r}: expected name=feature,feature,...")
    return Group(name.strip(), features)


def concept_group(catalog: Catalog, concept: str, windows: tuple[int, ...]) -> Group:
    """Every (window-expanded) feature of ``concept`` in the dictionary, derived ones excluded."""
    names = tuple(
        s.name
        for s in catalog.expand(windows).features
        if s.concept == concept and s.derived is None
    )
    if not names:
        raise SystemExit(f"--concept {concept}: no feature of that concept in the dictionary")
    return Group(concept, names)


def compare(
    name: str, group: Group, all_: TrainResult, without: TrainResult, args: argparse.Namespace
) -> dict[str, object]:
    """Figures of one target and group: metrics of both models and the paired intervals."""
    a, b = all_.test_predictions, without.test_predictions
    if not (a["customer_id"].equals(b["customer_id"]) and a["label"].equals(b["label"])):
        raise SystemExit(f"{name}: the two runs scored different test rows")
    y = a["label"].to_numpy(dtype=np.float64)
    p_all, p_without = (d["probability"].to_numpy(dtype=np.float64) for d in (a, b))
    m_all, m_without = all_.metrics["model"], without.metrics["model"]
    return {
        "target": name,
        "test_cutoff": all_.metrics["test_cutoff"][:10],
        "rows": len(y),
        "label_rate": round(float(y.mean()), 4),
        "auc_all": round(m_all["roc_auc"], 4),
        "auc_without": round(m_without["roc_auc"], 4),
        "auc_diff": round(m_all["roc_auc"] - m_without["roc_auc"], 4),
        "brier_all": round(m_all["brier"], 5),
        "brier_without": round(m_without["brier"], 5),
        "brier_diff": round(m_all["brier"] - m_without["brier"], 5),
        # paired_bootstrap takes (without, with): its differences are all minus without
        **paired_bootstrap(y, p_without, p_all, args.bootstrap, args.seed),
        "gain_share_all": gain_share(all_, group.features),
        "best_iteration": {
            "all": all_.metrics["best_iteration"],
            "without": without.metrics["best_iteration"],
        },
    }


def markdown(lines: list[dict[str, object]]) -> str:
    """One table of every JSON line, in the order printed."""
    head = (
        "| data | target | without | AUC all | AUC without | diff | 95% interval "
        "| Brier all | Brier without | diff | 95% interval |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {d['features']} | {d['target']} | {d['group']} | {d['auc_all']:.4f} "
        f"| {d['auc_without']:.4f} | {d['auc_diff']:+.4f} "
        f"| [{d['auc_diff_ci95'][0]:+.4f}, {d['auc_diff_ci95'][1]:+.4f}] "  # type: ignore[index]
        f"| {d['brier_all']:.5f} | {d['brier_without']:.5f} | {d['brier_diff']:+.5f} "
        f"| [{d['brier_diff_ci95'][0]:+.4f}, {d['brier_diff_ci95'][1]:+.4f}] |"  # type: ignore[index]
        for d in lines
    ]
    return "\n".join([head, *rows])


def main() -> None:
    """Train all / without each group per target, print JSON lines and a Markdown table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, required=True, help="Folder with panel.parquet.")
    parser.add_argument("--params", type=Path, required=True, help="params.yaml of the panel.")
    parser.add_argument("--dictionary", type=Path, default=REPO / "configs/features.yaml")
    parser.add_argument("--targets", nargs="+", default=["churn", "repurchase"])
    parser.add_argument("--group", action="append", default=[], help="name=feat1,feat2,...")
    parser.add_argument("--concept", action="append", default=[], help="A dictionary concept.")
    parser.add_argument("--bootstrap", type=int, default=1000, help="Bootstrap resamples.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the resamples.")
    parser.add_argument("--train-seed", type=int, default=None, help="LightGBM seed override.")
    args = parser.parse_args()
    if not args.params.exists():
        raise SystemExit(f"{args.params}: file not found")  # load_params would use defaults

    settings = load_params(args.params)
    if args.train_seed is not None:
        train = settings.train.model_copy(update={"seed": args.train_seed})
        settings = settings.model_copy(update={"train": train})
    catalog = load_catalog(args.dictionary)
    groups = [parse_group(g) for g in args.group] + [
        concept_group(catalog, c, settings.features.windows_days) for c in args.concept
    ]
    if not groups:
        raise SystemExit("give at least one --group or --concept")
    panel = io.read_parquet(args.features / "panel.parquet")
    summary_path = args.features / "summary.json"
    summary = io.read_json(summary_path) if summary_path.exists() else None
    labels = resolved_labels(settings.labels, summary)

    lines: list[dict[str, object]] = []
    for name in args.targets:
        target = get_target(labels, name)
        if target.kind != "binary":
            raise SystemExit(f"{name}: not a binary target")
        t0 = time.perf_counter()
        all_ = train_target(panel, name, settings.train, labels, catalog, summary)
        all_s = round(time.perf_counter() - t0, 1)
        for group in groups:
            present = [f for f in group.features if f in panel.columns]
            absent = [f for f in group.features if f not in panel.columns]
            if not present:
                print(json.dumps({"target": name, "group": group.name, "skipped": "no column"}))
                continue
            t0 = time.perf_counter()
            without = train_target(
                panel.drop(columns=present), name, settings.train, labels, catalog, summary
            )
            figures = {
                "benchmark": "ablation",
                "features": args.features.name,
                "group": group.name,
                "dropped": present,
                "absent": absent,
                **compare(name, Group(group.name, tuple(present)), all_, without, args),
                "bootstrap": args.bootstrap,
                "seed": args.seed,
                "train_seed": settings.train.seed,
                "train_s": {"all": all_s, "without": round(time.perf_counter() - t0, 1)},
            }
            lines.append(figures)
            print(json.dumps(figures), flush=True)
    print(markdown(lines))


if __name__ == "__main__":
    main()
