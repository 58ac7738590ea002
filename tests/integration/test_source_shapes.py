"""New export shapes end to end: `loyalty inspect` proposes the config, the pipeline runs on it.

For each shape of tests/support/shapes.py (a whitespace purchase log without order ids, a
European ';' export with decimal commas and day-first dates, a line-level export with returns as
negative ``C`` lines) the module fixture writes the raw files, runs ``loyalty inspect`` in a
temporary project, and then clean -> features -> train (churn, repurchase, value) -> score
through the real CLI with the proposed config *unedited* (params only name the source and
shrink training). The tests check the guesses, the row accounting and the scores.
"""

from __future__ import annotations

import contextlib
import io as text_io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from pipeline.cli import main
from tests.support.shapes import SHAPES, Shape

pytestmark = [pytest.mark.integration, pytest.mark.slow]

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
DICTIONARY = str(REPO / "configs" / "features.yaml")
TARGETS = ("churn", "repurchase", "value")


@dataclass(frozen=True)
class Run:
    shape: Shape
    root: Path
    name: str
    config: dict[str, Any]
    printed: str
    seconds: dict[str, float]


def _cli(*args: str) -> None:
    assert main(list(args)) == 0, args


def _params(root: Path, name: str, data_input: str) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"] = {"source": name, "source_config": None, "input": data_input}
    params["clean"]["as_of"] = "2025-06-01T00:00:00Z"  # not "tomorrow": stable across midnight
    params["train"]["num_boost_round"] = 100
    params["train"]["early_stopping_rounds"] = 20
    params["train"]["value_models"] = ["tweedie"]
    params["train"]["quality_gate"] = {"max_auc": 1.0, "min_auc_margin_over_recency": -1.0}
    # a few hundred customers: no process pools
    params["features"]["workers"] = params["score"]["workers"] = 1
    params["score"]["partitions"] = 2
    params["mlflow"]["tracking_uri"] = f"sqlite:///{root / 'mlflow.db'}"
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _pipeline(root: Path, params: Path, data_input: str, laps: dict[str, float]) -> None:
    p = ["--params", str(params)]
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        laps[step] = round(now - clock, 2)
        clock = now

    _cli("clean", *p, "--out", "data/clean")
    lap("clean")
    _cli(
        "features",
        *p,
        "--clean",
        "data/clean",
        "--dictionary",
        DICTIONARY,
        "--out",
        "data/features",
    )
    lap("features")
    for target in TARGETS:
        _cli(
            "train", *p, "--target", target, "--features", "data/features",
            "--dictionary", DICTIONARY, "--out", f"models/{target}",
            "--metrics", f"reports/metrics/{target}.json", "--plots", f"reports/plots/{target}",
        )  # fmt: skip
    lap("train")
    _cli(
        "score", *p, "--input", data_input, "--as-of", "latest", "--model", "models",
        "--features-config", DICTIONARY, "--out", "data/scores/scores.parquet", "--no-progress",
    )  # fmt: skip
    lap("score")


@pytest.fixture(
    scope="module",
    params=[pytest.param(name, marks=pytest.mark.xdist_group(f"shape_{name}")) for name in SHAPES],
)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    shape = SHAPES[request.param]
    root = tmp_path_factory.mktemp(shape.name)
    files = shape.write(root / "raw")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        start = time.perf_counter()
        out = text_io.StringIO()
        with contextlib.redirect_stdout(out):
            _cli("inspect", *(str(f.relative_to(root)) for f in files))
        seconds = {"inspect": round(time.perf_counter() - start, 2)}
        printed = out.getvalue()
        (config_path,) = (root / "configs" / "sources").glob("*.yaml")
        name = config_path.stem
        # the printed command says which data.input to use
        command = next(line for line in printed.splitlines() if "dvc exp run" in line)
        data_input = command.split("data.input=")[1].split()[0]
        params = _params(root, name, data_input)
        _pipeline(root, params, data_input, seconds)
        seconds["raw file to scores"] = round(time.perf_counter() - start, 2)
    logger.info("%s: seconds %s", shape.name, seconds)
    config = yaml.safe_load(config_path.read_text())
    return Run(shape, root, name, config, printed, seconds)


def test_inspect_guesses_the_shape(run: Run) -> None:
    shape, config = run.shape, run.config
    assert config["dialect"]["delimiter"] == shape.delimiter
    assert config["rules"]["decimal"] == shape.decimal
    assert config["rules"]["date_formats"] == shape.formats
    assert {t: spec["columns"] for t, spec in config["tables"].items()} == shape.columns
    for key, value in shape.rules.items():
        assert config["rules"][key] == value, key


def test_every_raw_row_is_accepted_or_rejected(run: Run) -> None:
    manifest = yaml.safe_load((run.root / "data" / "clean" / "manifest.json").read_text())
    assert manifest["reconciled"]
    assert manifest["rows_read"] == manifest["accepted"] + manifest["rejected"]
    tables = {entry["table"] for entry in manifest["inputs"]}
    assert tables == set(run.shape.columns)
    for entry in manifest["inputs"]:
        assert entry["rows_read"] == entry["accepted"] + entry["rejected"], entry
    # each shape carries a few dirty rows: cleaning rejects them, each with its reason
    assert 2 <= manifest["rejected"] <= 10, manifest["rejected_by_reason"]
    assert "duplicate_row" in manifest["rejected_by_reason"]
    if run.shape.name == "line_level":  # the C invoices are returns, the zero price is kept
        assert manifest["tables"]["returns"]["rows"] > 0
        assert manifest["transactions"]["zero_value_lines"] == 1


def test_models_are_trained_and_every_customer_is_scored(run: Run) -> None:
    for target in TARGETS:
        assert (run.root / "models" / target / "model.txt").is_file(), target
    scores = pd.read_parquet(run.root / "data" / "scores" / "scores.parquet")
    assert len(scores) > 100
    assert scores["customer_id"].is_unique
    for target in ("churn", "repurchase"):
        assert scores[f"{target}_probability"].between(0, 1).all()
    assert (scores["value_at_risk"] >= 0).all()
    manifest = yaml.safe_load(
        (run.root / "data" / "scores" / "scores.parquet.manifest.json").read_text()
    )
    assert manifest["customers_scored"] == len(scores)


def test_the_printed_summary_says_what_to_run(
    run: Run, record_property: Callable[[str, object], None]
) -> None:
    assert f"wrote configs/sources/{run.name}.yaml" in run.printed
    assert f"dvc exp run -S data.source={run.name} -S data.input=raw" in run.printed
    assert "customers: 381;" in run.printed  # 400 simulated, 381 ever ordered
    # raw file to scores, per step (the docs quote these): in the property list of the report
    record_property("seconds", run.seconds)
