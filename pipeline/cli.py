"""The ``loyalty`` command: one sub-command per pipeline stage, plus ``score``.

Thin by design: parse arguments, read inputs through :mod:`pipeline.io`, call the pure core,
write outputs, exit. Expected failures (:class:`pipeline.errors.PipelineError`) become one line
on stderr and a non-zero exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from pipeline.config import Params, load_params
from pipeline.errors import PipelineError

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
) -> None:
    """Loyalty pipeline: clean, features, train, explain, report, score."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.captureWarnings(True)


def _params(path: Path) -> Params:
    return load_params(path)


# --- generate -----------------------------------------------------------------------------
# --- ingest / clean -----------------------------------------------------------------------
# --- features -----------------------------------------------------------------------------
# --- train --------------------------------------------------------------------------------
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
    from pipeline.reasons import parse_dictionary

    settings = _params(params).explain
    out = io.resolve_output(out, [model, features])
    predictor = load_predictor(model)
    panel = io.read_parquet(features / "panel.parquet")
    scoring_path = features / "scoring.parquet"
    current = io.read_parquet(scoring_path) if scoring_path.exists() else None
    parsed = parse_dictionary(io.read_yaml(dictionary), str(dictionary))
    result = explain_target(
        predictor, panel, current, parsed, target, settings.max_rows, settings.top_reasons
    )
    for name in ("shap", "reasons", "concepts", "features", "current"):
        if name in result:
            io.write_parquet(out / f"{name}.parquet", result[name])
    io.write_json(
        out / "concepts.json",
        {
            "summary": result["summary"],
            "concepts": result["concepts"].to_dict(orient="records"),
            "features": result["features"].to_dict(orient="records"),
            "labels": {c: parsed.label(c) for c in result["concepts"]["concept"]},
        },
    )
    logger.info("explain %s: %d rows explained -> %s", target, len(result["shap"]), out)


# --- report -------------------------------------------------------------------------------
# --- score --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn expected errors into one line on stderr and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="loyalty", standalone_mode=False)
    except PipelineError as exc:
        if debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if debug:
            raise
        print("error: out of memory; use more partitions or a smaller input", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
