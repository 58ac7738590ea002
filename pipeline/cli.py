"""The ``loyalty`` command: one sub-command per pipeline stage, plus ``score``.

Thin by design: parse arguments, read inputs through :mod:`pipeline.io`, call the pure core,
write outputs, exit. Expected failures (:class:`pipeline.errors.PipelineError`) become one line
on stderr and a non-zero exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import click
import typer
import typer._click as typer_click  # typer bundles its own copy of click
from typer.core import TyperArgument, TyperOption

from pipeline.errors import FAILED, INTERRUPTED, DataError, PipelineError, QualityGateError

if TYPE_CHECKING:
    from pipeline.config import LabelsParams, Params

# Module level holds only what every command needs, so `loyalty --help` and a usage error
# start fast: each command imports its own modules (pandas, LightGBM, MLflow) when it runs.
logger = logging.getLogger("pipeline")

app = typer.Typer(
    name="loyalty",
    help=(
        "Predict which retail customers will churn or buy again, explain why, and score them "
        "in batch.\n\nExample: loyalty generate --out data/synthetic"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOption = Annotated[
    Path, typer.Option("--params", help="params.yaml to read the stage's section from.")
]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
    log_format: Annotated[
        Literal["text", "json"],
        typer.Option(
            "--log-format",
            envvar="LOYALTY_LOG_FORMAT",
            help="Log lines on stderr, and the error line a failed run ends with: text, or json "
            "(one object a line: time in UTC, level, logger, message; exit_code on the error).",
        ),
    ] = "text",
) -> None:
    """Loyalty pipeline: clean, features, train, explain, report, score."""
    from pipeline import logs

    logs.configure(verbose, log_format)
    logging.captureWarnings(True)


# The files each stage writes in its own output folder. A stage replaces that folder whole
# (pipeline.io.atomic_folder); an existing folder holding anything else is refused, so that a
# mistyped --out never takes a folder of someone's own files with it.
OWNS = {
    "generate": ("*.csv", "*.parquet", "*.json"),
    "clean": ("*.parquet", "manifest.json"),
    "features": ("panel.parquet", "scoring.parquet", "summary.json"),
    "train": ("*.txt", "*.json", "test_predictions.parquet"),
    "plots": ("*.csv",),
    "explain": ("*.parquet", "concepts.json"),
    "report": ("*.html", "contact_list.csv"),
}


def _params(path: Path) -> Params:
    from pipeline.config import load_params

    return load_params(path)


def _labels(settings: Params, features: Path) -> LabelsParams:
    """``labels`` with the horizons the features stage chose (``<features>/summary.json``)."""
    from pipeline import io
    from pipeline.targets import resolved_labels

    path = features / "summary.json"
    return resolved_labels(settings.labels, io.read_json(path) if path.exists() else None)


# --- generate -----------------------------------------------------------------------------
@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Output folder for the synthetic export.")],
    params: ParamsOption = Path("params.yaml"),
    when_read: Annotated[
        bool,
        typer.Option(
            "--when-read",
            help="Simulate only when params data.input reads the output folder; else write "
            "a note saying why nothing was simulated (the DVC stage, so that a run on a real "
            "export does not spend half a minute on unused data).",
        ),
    ] = False,
) -> None:
    """Simulate a retailer's raw export with known ground truth (params section `generate`).

    Writes transactions.csv, feedback.csv, customers.csv, ground_truth.parquet and
    generate_manifest.json; the same params give byte-identical files.

    Example: loyalty generate --params params.yaml --out data/synthetic
    """
    from pipeline import io
    from pipeline.sources import synthetic

    settings = _params(params)
    out = io.resolve_output(out, [params])
    if when_read and not synthetic.reads_folder(settings.data.input, out):
        note = synthetic.not_read_note(settings.data.source, settings.data.input)
        with io.atomic_folder(out, OWNS["generate"]) as folder:
            io.write_json(folder / synthetic.SKIPPED_NOTE, note)
        logger.info("generate: skipped, %s", note["reason"])
        return
    result = synthetic.generate(settings.generate)
    with io.atomic_folder(out, OWNS["generate"]) as folder:
        for name in ("transactions", "feedback", "customers"):
            chunks = synthetic.csv_chunks(getattr(result, name))
            io.write_text_chunks(folder / synthetic.FILES[name], chunks)
        io.write_parquet(folder / synthetic.FILES["ground_truth"], result.ground_truth)
        io.write_json(folder / synthetic.FILES["manifest"], result.manifest)
    logger.info("generate: %s -> %s", result.manifest["rows"], out)


# --- inspect ------------------------------------------------------------------------------
@app.command("inspect")
def inspect_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Raw export file(s): the transactions, plus optional feedback and customers "
            "files (in one folder)."
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Source name (data.source); default from the file name."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Config to write; default configs/sources/NAME.yaml."),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="ROLE=NAME or TABLE.ROLE=NAME: the column that holds a role, when the guess is "
            "wrong or missing; ROLE= for none (repeatable).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Sniff a raw export and write a proposed source config, with a comment on each guess.

    Guesses the encoding, delimiter, decimal mark, which column is the customer, the order id,
    the timestamp (and its format), the amount or quantity and price, cancellations and
    non-product codes; then reads the whole export with the proposal and prints what it holds,
    the horizons, step and minimum history the features stage will choose (under --params), and
    the command that runs the pipeline on it (docs/sources.md).

    Example: loyalty inspect exports/orders.csv --name my_shop
    """
    from pipeline import io
    from pipeline.errors import InputError
    from pipeline.sources.inspect.inspection import inspect_export, run_lines, summary_lines
    from pipeline.sources.inspect.proposal import parse_columns

    forced = parse_columns(column or [])
    cwd = Path.cwd()
    result = inspect_export(files, name, forced, cwd, _params(params))
    target = out or Path("configs/sources") / f"{result.proposal.name}.yaml"
    io.refuse_inside(target, [*files, params])
    if target.exists() and not force:
        raise InputError(f"{target}: already exists; --force to overwrite it, or --name another")
    io.write_text(target, result.yaml_text)
    for line in summary_lines(result):
        typer.echo(line)
    typer.echo(f"wrote {target}")
    for line in run_lines(result, target):
        typer.echo(line)


# --- ingest / clean -----------------------------------------------------------------------
@app.command()
def clean(
    out: Annotated[Path, typer.Option("--out", help="Output folder for the clean tables.")],
    input_paths: Annotated[
        list[Path] | None,
        typer.Option("--input", help="Raw export file or folder (repeatable); default data.input."),
    ] = None,
    source_config: Annotated[
        Path | None,
        typer.Option("--source-config", help="Source config YAML; default from params `data`."),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Read a raw export and write clean tables, rejects and a reconciled manifest.

    Writes orders, returns, feedback and customers (when the source has them) and rejects as
    Parquet, plus manifest.json (rows read per file = accepted + rejected).

    Example: loyalty clean --params params.yaml --input data/synthetic --out data/clean
    """
    from pipeline import io
    from pipeline.clean import (
        OUTPUT_TABLES,
        check_reject_share,
        clean_export,
        reject_totals,
        resolve_as_of,
    )
    from pipeline.sources.csv_mapping import load_source_config, read_extract_as_of

    settings = _params(params)
    inputs = list(input_paths or [Path(settings.data.input)])
    config_path = source_config or settings.data.source_config_path()
    out = io.refuse_inside(out, [*inputs, config_path, params])
    io.check_readable(inputs)
    io.check_replaceable(out, OWNS["clean"])  # before the work, not after it
    config = load_source_config(config_path)
    as_of = resolve_as_of(settings.clean.as_of, read_extract_as_of(config, inputs))
    result = clean_export(
        config,
        inputs,
        as_of,
        settings.clean.missing_customer_id_warn_rate,
        settings.clean.max_record_bytes,
    )
    for table, (rows, by_reason) in reject_totals(result.manifest).items():
        check_reject_share(table, rows, by_reason, settings.clean.max_reject_share)
    # a new folder: a table this source lacks is absent, never a stale one of another source
    with io.atomic_folder(out, OWNS["clean"]) as folder:
        for name in OUTPUT_TABLES:
            if name in result.tables:
                io.write_parquet(folder / f"{name}.parquet", result.tables[name])
        io.write_parquet(folder / "rejects.parquet", result.rejects)
        io.write_json(folder / "manifest.json", result.manifest)
    manifest = result.manifest
    logger.info(
        "clean: %d rows read, %d accepted, %d rejected %s -> %s",
        manifest["rows_read"],
        manifest["accepted"],
        manifest["rejected"],
        manifest["rejected_by_reason"],
        out,
    )


# --- features -----------------------------------------------------------------------------
@app.command()
def features(
    clean_dir: Annotated[
        Path, typer.Option("--clean", help="Folder of clean tables (data/clean).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (data/features).")],
    dictionary: Annotated[
        Path, typer.Option("--dictionary", help="Feature dictionary (configs/features.yaml).")
    ] = Path("configs/features.yaml"),
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Scoring snapshot date; default: last event date + 1 day."),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Build the labelled feature panel, the scoring snapshot and summary.json.

    Reads orders (required), returns, feedback and customers (when present) from --clean;
    features whose inputs are absent are left out and listed in summary.json.

    Example: loyalty features --params params.yaml --clean data/clean --out data/features
    """
    from pipeline import io
    from pipeline.features.catalog import load_catalog
    from pipeline.features.panel import panel_stats, plan_features

    settings = _params(params)
    out = io.refuse_inside(out, [clean_dir, dictionary, params])
    io.check_replaceable(out, OWNS["features"])
    when = _instant_option(as_of, "--as-of") if as_of else None
    catalog = load_catalog(dictionary)
    optional = {
        name: io.read_parquet(path) if (path := clean_dir / f"{name}.parquet").exists() else None
        for name in ("returns", "feedback", "customers")
    }
    orders = io.read_parquet(clean_dir / "orders.parquet")
    stage = plan_features(
        orders,
        **optional,
        params=settings.features,
        label_params=settings.labels,
        catalog=catalog,
        as_of=when,
    )
    del orders, optional  # the stage holds its own partitioned arrays
    stats = panel_stats(stage.label_params)
    with io.atomic_folder(out, OWNS["features"]) as folder:
        io.write_parquet_frames(folder / "panel.parquet", stats.track(stage.panel_frames()))
        scoring = stage.scoring()
        io.write_parquet(folder / "scoring.parquet", scoring)
        summary = stage.summary(stats, len(scoring))
        io.write_json(folder / "summary.json", summary)
    rows = summary["rows"]
    logger.info(
        "features: panel %d rows (train %d, valid %d, test %d), scoring %d rows, "
        "%d features (%d absent) -> %s",
        rows["panel"],
        rows["train"],
        rows["valid"],
        rows["test"],
        rows["scoring"],
        len(summary["features"]["present"]),
        len(summary["features"]["absent"]),
        out,
    )


# --- train --------------------------------------------------------------------------------
@app.command()
def train(
    target: Annotated[str, typer.Option("--target", help="churn or repurchase.")],
    features: Annotated[Path, typer.Option("--features", help="Feature folder (panel.parquet).")],
    out: Annotated[Path, typer.Option("--out", help="Model folder (models/<target>).")],
    metrics: Annotated[
        Path, typer.Option("--metrics", help="Metrics JSON (reports/metrics/<target>.json).")
    ],
    plots: Annotated[Path, typer.Option("--plots", help="Curve data folder (reports/plots/T).")],
    dictionary: Annotated[
        Path, typer.Option("--dictionary", help="Feature dictionary (configs/features.yaml).")
    ] = Path("configs/features.yaml"),
    dvc_lock: Annotated[
        Path, typer.Option("--dvc-lock", help="dvc.lock, for data checksums in MLflow tags.")
    ] = Path("dvc.lock"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Train, calibrate and evaluate one target's model; log and register it in MLflow.

    Example: loyalty train --target churn --features data/features --out models/churn
    --metrics reports/metrics/churn.json --plots reports/plots/churn
    """
    from pipeline import io
    from pipeline.features.catalog import load_catalog
    from pipeline.modeling import artifacts
    from pipeline.modeling.train import check_quality_gate, train_target
    from pipeline.modeling.value import train_value
    from pipeline.targets import get_target, resolved_labels
    from pipeline.tracking import log_training

    settings = _params(params)
    guarded = [features, dictionary, dvc_lock, params]
    out, metrics, plots = (io.refuse_inside(path, guarded) for path in (out, metrics, plots))
    io.check_replaceable(out, OWNS["train"])
    io.check_replaceable(plots, OWNS["plots"])
    panel = io.read_parquet(features / "panel.parquet")
    summary_path = features / "summary.json"
    summary = io.read_json(summary_path) if summary_path.exists() else None
    labels = resolved_labels(settings.labels, summary)
    is_value = get_target(labels, target).kind == "regression"
    trainer = train_value if is_value else train_target
    result = trainer(panel, target, settings.train, labels, load_catalog(dictionary), summary)
    failed = None  # a model failing the gate is never saved; its metrics and curves are
    if not is_value:
        try:
            check_quality_gate(result.metrics, settings.train)
        except QualityGateError as exc:
            failed = exc
    # Every byte of the model, its metrics and curves is written before the first swap, so a
    # full disk leaves all three as they were.
    with contextlib.ExitStack() as stack:
        metrics_tmp = stack.enter_context(io.atomic_files(metrics))[0]
        plots_tmp = stack.enter_context(io.atomic_folder(plots, OWNS["plots"]))
        metrics_file = io.significant(result.metrics)  # git-tracked: no last-digit noise
        io.write_json(metrics_tmp, metrics_file)
        for name, frame in result.curves.items():
            io.write_csv(plots_tmp / f"{name}.csv", io.significant_frame(frame))
        if failed is not None:
            stack.close()  # the metrics and curves say why; the old model stays
            raise failed
        folder = stack.enter_context(io.atomic_folder(out, OWNS["train"]))
        io.write_text(folder / artifacts.MODEL_FILE, result.model_text)
        for name, text in result.extra_models.items():
            io.write_text(folder / f"{name}.txt", text)
        io.write_json(folder / artifacts.CALIBRATION_FILE, result.calibration)
        io.write_json(folder / artifacts.FEATURES_FILE, result.features)
        io.write_json(folder / "metrics.json", metrics_file)
        io.write_parquet(folder / "test_predictions.parquet", result.test_predictions)
    _log_trained(result.metrics, result.features, out)
    lock = io.read_yaml(dvc_lock) if dvc_lock.exists() else None
    logged_params = {
        "target": target,
        "train": settings.train.model_dump(mode="json"),
        "labels": labels.model_dump(mode="json"),
    }
    log_training(
        result=result,
        params=logged_params,
        mlflow_params=settings.mlflow,
        model_dir=out,
        plots_dir=plots,
        dvc_lock=lock,
    )


def _log_trained(metrics: dict[str, Any], features: dict[str, Any], out: Path) -> None:
    model, baselines = metrics["model"], metrics["baselines"]
    if "roc_auc" in model:
        logger.info(
            "train %s: test AUC %.4f (recency %.4f), %d trees -> %s",
            metrics["target"],
            model["roc_auc"],
            baselines["recency"]["roc_auc"],
            features["best_iteration"],
            out,
        )
        return
    others = ", ".join(f"{k} {v['normalized_gini']:.4f}" for k, v in baselines.items())
    logger.info(
        "train %s (%s, %d-day horizon): test normalized Gini %.4f (%s) -> %s",
        metrics["target"],
        metrics["model_design"],
        metrics["horizon_days"],
        model["normalized_gini"],
        others,
        out,
    )
    if any(model["normalized_gini"] < v["normalized_gini"] for v in baselines.values()):
        logger.warning("%s: the value model ranks worse than a baseline (%s)", out, others)


# --- promote ------------------------------------------------------------------------------
@app.command()
def promote(
    target: Annotated[
        str, typer.Option("--target", help="Target whose model to promote (loyalty-<target>).")
    ],
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Registry version to make champion.")
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option("--alias", help="Promote the version with this alias; default challenger."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why; kept as the version's tag.")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Make a registered version the champion, the model `--model models:/...@champion` scores.

    Training promotes on its own only when a new version beats the champion by more than
    mlflow.promotion_margin on the same test cutoff, and never under `dvc exp run`; this command
    promotes by hand, tagging the version promoted_by=manual with the user, the time, --reason
    and the champion it replaces (docs/modeling.md, "Promotion").

    Example: loyalty promote --target churn --alias challenger --reason "leaves63, checked by hand"
    """
    from pipeline.tracking import promote as promote_version

    if version is not None and alias is not None:
        raise click.BadParameter("give --version or --alias, not both", param_hint="--version")
    settings = _params(params)
    done = promote_version(
        target, None if version is None else str(version), alias, reason, settings.mlflow
    )
    if not done.changed:
        typer.echo(f"{done.name} v{done.version} already is champion; nothing changed")
        return
    was = f"v{done.previous}" if done.previous else "none"
    typer.echo(f"{done.name} v{done.version} is champion (was {was})")


# --- explain ------------------------------------------------------------------------------
@app.command()
def explain(
    target: Annotated[str, typer.Option("--target", help="churn or repurchase.")],
    model: Annotated[Path, typer.Option("--model", help="Model folder (models/<target>).")],
    features: Annotated[Path, typer.Option("--features", help="Feature folder (panel.parquet).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (reports/explain/<target>).")],
    dictionary: Annotated[
        Path, typer.Option("--dictionary", help="Feature dictionary (configs/features.yaml).")
    ] = Path("configs/features.yaml"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Exact TreeSHAP on the test snapshot, concept groups and reason codes.

    Example: loyalty explain --target churn --model models/churn --features data/features
    --out reports/explain/churn
    """
    from pipeline import io
    from pipeline.explain import explain_target
    from pipeline.modeling.artifacts import load_predictor
    from pipeline.reasons import load_dictionary
    from pipeline.targets import get_target

    all_params = _params(params)
    settings = all_params.explain
    out = io.refuse_inside(out, [model, features, dictionary, params])
    io.check_replaceable(out, OWNS["explain"])
    predictor = load_predictor(model)
    panel = io.read_parquet(features / "panel.parquet")
    parsed = load_dictionary(dictionary)
    result = explain_target(
        predictor,
        panel,
        parsed,
        get_target(_labels(all_params, features), target),
        settings.max_rows,
        settings.top_reasons,
        all_params.score.reasons_top_share,
    )
    with io.atomic_folder(out, OWNS["explain"]) as folder:
        for name in ("shap", "reasons", "concepts", "features"):
            io.write_parquet(folder / f"{name}.parquet", result[name])
        io.write_json(
            folder / "concepts.json",
            {
                "summary": result["summary"],
                "concepts": result["concepts"].to_dict(orient="records"),
                "features": result["features"].to_dict(orient="records"),
                "labels": {c: parsed.label(c) for c in result["concepts"]["concept"]},
            },
        )
    logger.info("explain %s: %d rows explained -> %s", target, len(result["shap"]), out)


# --- evaluate -----------------------------------------------------------------------------
@app.command()
def evaluate(
    models: Annotated[
        Path, typer.Option("--models", help="Folder of model folders (models/<target>).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Scoreboard JSON (reports/metrics/quality.json).")
    ],
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the tables as Markdown.")
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(
            "--summary",
            help="Also write each trained target's headline metric, one figure each "
            "(reports/metrics/summary.json: what `dvc exp show` lists).",
        ),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score every binary model against every baseline on its test cutoff (the scoreboard).

    For everyone and for the early-warning population; AUC, PR AUC, Brier, ECE and paired
    bootstrap 95% intervals of model minus baseline. Prints the Markdown tables.

    Example: loyalty evaluate --models models --out reports/metrics/quality.json
    """
    from pipeline import io
    from pipeline.modeling import scoreboard

    settings = _params(params)
    boards = {}
    for target in settings.train.targets:
        path = models / target / "test_predictions.parquet"
        if not path.exists():
            raise DataError(f"{path} not found: train the {target} model first (loyalty train)")
        predictions = io.read_parquet(path)
        scoreboard.check_columns(predictions, str(path), ["label", "probability"])
        board = scoreboard.scoreboard(
            predictions,
            settings.evaluate.early_warning_days,
            settings.evaluate.bootstrap,
            settings.evaluate.seed,
        )
        boards[target] = {"target": target, **board}
    io.write_json(out, io.significant(boards))
    if summary is not None:
        from pipeline.targets import get_target

        names = settings.train.model_targets()
        trained = {name: _trained_metrics(models / name) for name in names}
        targets = {name: get_target(settings.labels, name) for name in names}
        io.write_json(summary, io.significant(scoreboard.headline(trained, targets)))
    tables = scoreboard.markdown(boards)
    if markdown is not None:
        io.write_text(markdown, tables + "\n")
    typer.echo(tables)


def _trained_metrics(model: Path) -> Any:
    from pipeline import io

    path = model / "metrics.json"
    if not path.exists():
        raise DataError(f"{path} not found: train the {model.name} model first (loyalty train)")
    return io.read_json(path)


# --- report -------------------------------------------------------------------------------
@app.command()
def report(
    models: Annotated[Path, typer.Option("--models", help="Folder of model folders (models/).")],
    explain_dir: Annotated[
        Path, typer.Option("--explain", help="Folder of explain outputs (reports/explain/).")
    ],
    scores: Annotated[
        Path, typer.Option("--scores", help="Scores file of `loyalty score` (data/scores/...).")
    ],
    features: Annotated[Path, typer.Option("--features", help="Feature folder (data/features).")],
    metrics: Annotated[Path, typer.Option("--metrics", help="Metrics folder (reports/metrics).")],
    out: Annotated[Path, typer.Option("--out", help="Site folder (reports/site).")],
    clean: Annotated[
        Path | None, typer.Option("--clean", help="Clean folder, for manifest.json (data/clean).")
    ] = None,
    dictionary: Annotated[
        Path, typer.Option("--dictionary", help="Feature dictionary (configs/features.yaml).")
    ] = Path("configs/features.yaml"),
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="Log the report to the MLflow run.")
    ] = True,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Write the self-contained HTML report and contact_list.csv (whom to contact first).

    Pages: index.html (for everyone), method.html (method, model quality, glossary) and one
    page per target; contact_list.csv: the customers with the most value at risk within
    report.contact_budget, each with a reason the business can act on and an action.

    Customer numbers come from the scores (the report re-scores nothing); drivers from the
    explain outputs; model quality from the metrics and test predictions.

    Example: loyalty report --models models --explain reports/explain
    --scores data/scores/scores.parquet --features data/features --metrics reports/metrics
    --clean data/clean --out reports/site
    """
    from collections.abc import Callable

    from pipeline import io
    from pipeline.errors import InputError
    from pipeline.reasons import load_dictionary
    from pipeline.report.build import (
        ReportInputs,
        TargetInputs,
        align_explained,
        build_site,
        contacts_of,
    )
    from pipeline.targets import get_target

    settings = _params(params)
    read = [models, explain_dir, scores, features, metrics, dictionary, params]
    out = io.refuse_inside(out, [*read, *([clean] if clean else [])])
    io.check_replaceable(out, OWNS["report"])

    def optional(path: Path, reader: Callable[[Path], Any]) -> Any:
        return reader(path) if path.exists() else None

    panel = io.read_parquet(features / "panel.parquet")
    test_rows = panel.loc[panel["split"] == "test"]
    labels = _labels(settings, features)
    targets: dict[str, TargetInputs] = {}
    for name in settings.train.targets:
        folder = explain_dir / name
        if not folder.is_dir():
            logger.warning("report: no explain output for %s in %s; skipped", name, folder)
            continue
        shap_values = io.read_parquet(folder / "shap.parquet")
        explained = align_explained(shap_values, _derived(models / name, test_rows))
        targets[name] = TargetInputs(
            target=get_target(labels, name),
            metrics=optional(metrics / f"{name}.json", io.read_json) or {},
            shap=shap_values,
            explained=explained,
            concepts=io.read_parquet(folder / "concepts.parquet"),
            features=io.read_parquet(folder / "features.parquet"),
            test_predictions=optional(models / name / "test_predictions.parquet", io.read_parquet),
            model_features=optional(models / name / "features.json", io.read_json) or {},
        )
    if not targets:
        raise InputError(f"{explain_dir}: no explain output for any target; run `loyalty explain`")
    inputs = ReportInputs(
        targets=targets,
        dictionary=load_dictionary(dictionary),
        scores=io.read_parquet(scores),
        business=settings.business,
        scores_manifest=optional(scores.with_name(scores.name + ".manifest.json"), io.read_json),
        manifest=optional(clean / "manifest.json", io.read_json) if clean else None,
        feature_summary=optional(features / "summary.json", io.read_json),
        source=settings.data.source,
        value_metrics=optional(metrics / "value.json", io.read_json)
        if settings.train.value_target
        else None,
        customers=optional(clean / "customers.parquet", io.read_parquet) if clean else None,
    )
    site = build_site(inputs, settings.report)
    with io.atomic_folder(out, OWNS["report"]) as folder:
        for name, html in site.items():
            io.write_text(folder / name, html)
        io.write_csv(folder / "contact_list.csv", contacts_of(inputs, settings.report))
    logger.info("report: %s", out / "index.html")
    if track:
        from pipeline.tracking import log_report

        log_report(out, list(targets), settings.mlflow)


def _derived(model: Path, rows: Any) -> Any:
    """``rows`` plus the features the model in folder ``model`` derives (BTYD), if it can."""
    from pipeline.modeling.artifacts import load_predictor

    return load_predictor(model).derive(rows) if (model / "model.txt").exists() else rows


# --- score --------------------------------------------------------------------------------
@app.command()
def score(
    out: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")],
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            help="Model folder, folder of model folders (models/), or models:/name@alias "
            "(repeatable).",
        ),
    ],
    input_paths: Annotated[
        list[Path] | None,
        typer.Option("--input", help="Raw export file or folder (repeatable); default data.input."),
    ] = None,
    as_of: Annotated[
        str, typer.Option("--as-of", help="Snapshot date (YYYY-MM-DD), or 'latest' (data end).")
    ] = "latest",
    source: Annotated[
        Path | None,
        typer.Option("--source", help="Source config YAML; default from params `data`."),
    ] = None,
    features_config: Annotated[
        Path, typer.Option("--features-config", help="Feature dictionary (catalog, reasons).")
    ] = Path("configs/features.yaml"),
    fmt: Annotated[
        str | None, typer.Option("--format", help="parquet or csv; default score.format.")
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="local or spark; default score.engine.")
    ] = None,
    partitions: Annotated[
        int | None, typer.Option("--partitions", min=1, help="Hash partitions of customers.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Worker processes (local engine).")
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option("--spark-master", help="Spark master URL; default SPARK_MASTER or params."),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", help="Run manifest JSON; default <out>.manifest.json."),
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            help="The last run's scores, for the manifest's change block; default: --out "
            "as it is before this run replaces it.",
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="Progress bar on stderr (shown only when stderr is a terminal).")
    ] = True,
    timings: Annotated[
        bool,
        typer.Option(
            "--timings",
            help="Write the run's wall-clock seconds into the manifest (default: only the log, "
            "so the manifest is the same bytes for the same inputs).",
        ),
    ] = False,
    allow_outside_data: Annotated[
        bool,
        typer.Option(
            "--allow-outside-data",
            help="Score at an --as-of before the first order or past the data's end "
            "(+ score.as_of_slack_days); default: an error.",
        ),
    ] = False,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score customers of a raw export: probabilities, risk band, tier, value, reasons.

    The only command that turns models into customer rows. The export goes through the same
    clean rules and the same build_snapshot as training; work is split by a hash of
    customer_id into partitions, each scored on its own (nothing depends on who else is in
    the export), in a process pool (--engine local) or on Spark (--engine spark).

    Example: loyalty score --input data/synthetic --as-of 2024-12-01 --model models
    --out data/scores/scores.parquet
    """
    import os

    from pipeline import io
    from pipeline.clean import resolve_as_of
    from pipeline.engines.history import change_block, previous_scores
    from pipeline.engines.work import ScoreJob, resolve_models, scoring_params, without_timings
    from pipeline.errors import ConfigError
    from pipeline.features.catalog import load_catalog
    from pipeline.scoring import ScoringRules
    from pipeline.sources.csv_mapping import load_source_config, read_extract_as_of

    settings = _params(params)
    options = settings.score
    inputs = list(input_paths or [Path(settings.data.input)])
    fmt = fmt or options.format
    engine = engine or options.engine
    if fmt not in ("parquet", "csv") or engine not in ("local", "spark"):
        raise ConfigError(f"--format must be parquet|csv and --engine local|spark: {fmt}, {engine}")
    source_config = source or settings.data.source_config_path()
    guarded = [
        *inputs,
        *(Path(m) for m in model if not m.startswith("models:/")),
        source_config,
        features_config,
        params,
    ]
    out = io.refuse_inside(out, guarded)
    manifest = io.refuse_inside(manifest or out.with_name(out.name + ".manifest.json"), guarded)
    io.check_readable(inputs)
    when = None if as_of == "latest" else _instant_option(as_of, "--as-of")
    catalog = load_catalog(features_config)
    unknown = sorted(set(settings.business.levers) - {str(c) for c in catalog.concepts})
    if unknown:
        raise ConfigError(
            f"business.actions: {', '.join(unknown)} is not a concept of {features_config} "
            f"(concepts: {', '.join(str(c) for c in catalog.concepts)}; `none` is the fallback)"
        )
    grid = tuple(tuple(row) for row in catalog.segment_grid())
    rules = ScoringRules(
        settings.business,
        grid,
        options.reasons_top_share,
        settings.explain.top_reasons,
        options.reasons_min_value_at_risk,
    )
    # The same future_date rule as the clean stage: params, else the export's own extract time.
    source_spec = load_source_config(source_config)
    stated = read_extract_as_of(source_spec, inputs)
    # The scores and their manifest are one set: both are written whole, then renamed in.
    with io.atomic_files(out, manifest) as (scores_tmp, manifest_tmp):
        with io.scratch_dir(out) as work:
            models = resolve_models(
                model, work / "models", settings.mlflow, settings.train.model_targets()
            )
            job = ScoreJob(
                source_config=str(source_config),
                features_config=str(features_config),
                as_of=when,
                clean_as_of=resolve_as_of(settings.clean.as_of, stated),
                models=models,
                params=scoring_params(settings, models),
                rules=rules,
                allow_outside_data=allow_outside_data,
            )
            n_parts = partitions or options.partitions
            if engine == "spark":
                from pipeline.engines.spark import run_spark

                master = spark_master or os.environ.get("SPARK_MASTER") or options.spark_master
                result = run_spark(job, inputs, scores_tmp, fmt, n_parts, master, work)
            else:
                from pipeline.engines.local import run_local

                workers = workers or options.workers
                result = run_local(job, inputs, scores_tmp, fmt, n_parts, workers, work, progress)
        # What the money columns (expected_value, value_at_risk) are counted in.
        result["currency"] = source_spec.currency
        result["change"] = change_block(previous_scores(out, previous), scores_tmp)
        logger.info("score: seconds per step %s", result["timings"])
        io.write_json(manifest_tmp, result if timings else without_timings(result))
    logger.info(
        "score: %d rows read, %d customers scored, %d rejected -> %s",
        result["rows_in"],
        result["customers_scored"],
        result["rows_rejected"],
        out,
    )


def _instant_option(value: str, option: str) -> Any:
    """Return an ISO 8601 option value as a UTC timestamp, else click's usage error (exit 2)."""
    from pipeline.dates import NotIsoDate, iso_instant

    try:
        return iso_instant(value)
    except NotIsoDate as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


# --- help ---------------------------------------------------------------------------------
# typer 0.29 labels each value in --help with its Python annotation (`<list[Path]>`, `<str>`,
# `<int range>`) and gives a flag, which takes no value, a `<bool>`. It has no setting for this,
# and a `metavar` would also rename an argument (and its error messages), so every parameter,
# the lazily made --help included, gets a subclass that labels values as click does.
VALUE_NAMES: dict[Any, str] = {str: "TEXT", int: "INTEGER", float: "FLOAT", Path: "PATH"}


def value_name(param: Any) -> str:
    """Click's name for what ``param`` takes: PATH, TEXT, INTEGER, [a|b]; nothing for a flag.

    A repeatable option or a variadic argument is named by its element (its help says
    "repeatable"; an argument's name ends in "...").
    """
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    described = param.type_descriptor
    if described.choices is not None:
        return "[" + "|".join(str(choice) for choice in described.choices) + "]"
    annotation = described.annotation
    element = get_args(annotation)[0] if described.is_list else annotation
    return VALUE_NAMES.get(element, getattr(element, "__name__", str(element)).upper())


class _NamedOption(TyperOption):
    def display_type(self, ctx: Any) -> str:
        return value_name(self)


class _NamedArgument(TyperArgument):
    def display_type(self, ctx: Any) -> str:
        return value_name(self)


def click_value_names(command: Any) -> Any:
    """Give every parameter of ``command`` and its sub-commands click's value names in --help."""
    for param in [*command.params, command.get_help_option(typer_click.Context(command))]:
        if type(param) is TyperOption:
            param.__class__ = _NamedOption
        elif type(param) is TyperArgument:
            param.__class__ = _NamedArgument
    for sub in getattr(command, "commands", {}).values():
        click_value_names(sub)
    return command


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn expected errors into one line on stderr and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    from pipeline import logs

    try:
        try:
            command = click_value_names(typer.main.get_command(app))
            command.main(args=args, prog_name="loyalty", standalone_mode=False)
        finally:
            logs.report_repeats()  # before the error line, so that stays the last line
    except PipelineError as exc:
        if debug:
            raise
        return _failed(exc.message, exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        return _failed("aborted", INTERRUPTED)
    except (click.exceptions.Exit, typer.Exit) as exc:
        return exc.exit_code
    # usage errors (unknown or missing option, value out of range) come from typer's bundled
    # click; a command's own BadParameter from the click package: both are click's usual
    # one-line usage error, exit 2 (in json mode, the one JSON error line)
    except (click.ClickException, typer_click.exceptions.ClickException) as exc:
        if logs.writes_json():
            return _failed(exc.format_message(), exc.exit_code)
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        return _failed("interrupted", INTERRUPTED)
    except MemoryError:
        if debug:
            raise
        return _failed("out of memory; use more partitions or a smaller input", FAILED)
    # The system refused a read or write the writers did not name (a full disk in a library's
    # own files, a permission): the environment, not a bug, so one line too.
    except OSError as exc:
        if debug or exc.errno is None:
            raise
        return _failed(_system_error(exc), FAILED)
    return 0


def _failed(message: str, exit_code: int) -> int:
    """Print the one error line a failed run ends with (text or JSON); return its exit code."""
    from pipeline import logs

    print(logs.error_line(message, exit_code), file=sys.stderr)
    return exit_code


def _system_error(exc: OSError) -> str:
    from pipeline import io

    where = exc.filename or "an output"
    failed = io.output_error(exc, where)
    if failed is not None:
        return failed.message
    return f"{where}: {exc.strerror or exc}"


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
