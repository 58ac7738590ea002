"""`loyalty score --engine spark` in Spark local mode equals the local engine, row for row.

Starts a real local SparkSession (pyspark is the optional extra ``.[spark]``), on a small
pipeline run built like the one in test_score_cli.py. The export is small, so files are cut
into several byte ranges (about two per core): the executors' range reading is exercised too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_score_cli import (
    World,
    _mixed_line_ends,
    _params_with,
    _run,
    _variant,
    assert_parity,
    build_world,
    score,
    score_args,
)

from pipeline import io

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPARK = ("--engine", "spark", "--spark-master", "local[2]")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield build_world(tmp_path_factory.mktemp("spark"), n_customers=400)


def _manifest(out: Path) -> dict:
    return io.read_json(out.with_name(out.name + ".manifest.json"))


def _score_in_a_new_process(world: World, out: Path, *extra: str) -> str:
    """Run the console script's entry point in a fresh interpreter; return its stderr.

    A fresh interpreter, so that every import-time warning fires as in a user's run, and the
    stderr of the Spark JVM and its Python workers is this process's own.
    """
    env = {
        k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONWARNINGS")
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipeline.cli import run; run()",
            *score_args(world, out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def test_spark_local_mode_equals_the_local_engine(world: World, tmp_path: Path) -> None:
    local, spark = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    assert score(world, local, "--partitions", "3", "--workers", "1") == 0
    err = _score_in_a_new_process(world, spark, "--partitions", "3", *SPARK)
    # pyspark's pandas-3 notice is silenced in the driver and in every Python worker (a line
    # from each otherwise, pipeline/logs.py); no other warning is hidden, and none is raised
    assert "does not yet fully support pandas" not in err, err
    assert "Warning: " not in err, err  # Python's form: "FutureWarning: ...", "UserWarning: ..."
    a, b = io.read_parquet(local), io.read_parquet(spark)
    # same rows in the same order, same dtypes, probabilities equal (not just close)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert_parity(world, b)
    manifest, expected = _manifest(spark), _manifest(local)
    assert manifest["engine"]["name"] == "spark"
    assert manifest["engine"]["ranges"] > len(manifest["input"]["files"])  # files were cut
    assert manifest["customers_scored"] == len(b)
    assert manifest["input"] == expected["input"]  # records per file and partition
    for key in ("rows_in", "rows_accepted", "rows_rejected", "rejected_by_reason"):
        assert manifest[key] == expected[key], key


def test_as_of_latest_equals_the_local_engine(world: World, tmp_path: Path) -> None:
    outs = {name: tmp_path / f"{name}.parquet" for name in ("local", "spark")}
    for name, extra in (("local", ("--workers", "1")), ("spark", SPARK)):
        churn = (str(world.root / "models" / "churn"),)
        code = score(world, outs[name], "--partitions", "2", *extra, as_of="latest", models=churn)
        assert code == 0
    a, b = io.read_parquet(outs["local"]), io.read_parquet(outs["spark"])
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert _manifest(outs["spark"])["as_of"] == _manifest(outs["local"])["as_of"]
    # drift is a reduce of per-partition bin counts: the same figures on either engine
    assert _manifest(outs["spark"])["drift"] == _manifest(outs["local"])["drift"]


@pytest.mark.reliability("files: missing or renamed columns")
def test_an_error_on_an_executor_is_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(world.root / "raw", raw)
    path = raw / "transactions.csv"
    header, rest = path.read_bytes().split(b"\n", 1)
    path.write_bytes(header.replace(b"quantity", b"qty") + b"\n" + rest)
    out = tmp_path / "scores.parquet"
    assert score(world, out, "--partitions", "2", *SPARK, inputs=(raw,)) == 2  # InputError
    err = capsys.readouterr().err
    assert "error: transactions.csv:1: required columns missing" in err
    assert "Traceback" not in err
    assert not out.exists()


def _awkward(data: bytes) -> bytes:
    """Mixed line ends, three NUL lines and a 200 KB line (over a 64 KiB limit), mid-file.

    (Three NUL lines right after the header would make the head of the file look binary.)
    """
    head, rest = data.split(b"\n", 100)[:100], data.split(b"\n", 100)[100]
    nul = b"999998,X\x00Y,1\r"
    long = b"999999,X," + b"9" * (200 << 10) + b",1,1.0\r\n"
    return _mixed_line_ends(b"\n".join(head) + b"\n" + nul * 3 + long + rest)


@pytest.mark.reliability("files: CR, LF and CRLF line ends, mixed in one file (score)")
@pytest.mark.reliability("files: one record longer than the record-length limit (score)")
@pytest.mark.reliability("files: UTF-16/UTF-32 with a BOM (score)")
@pytest.mark.reliability("files: NUL bytes (score)")
@pytest.mark.parametrize("kind", ["mixed-nul-long", "utf-16"])
def test_awkward_files_score_on_spark_as_on_the_local_engine(
    world: World, tmp_path: Path, kind: str
) -> None:
    """Executors read byte ranges (bare CRs, a record over the limit) or a UTF-16 file whole."""
    rewrite = _awkward if kind != "utf-16" else lambda d: d.decode("utf-8").encode("utf-16")
    raw = _variant(world, tmp_path, rewrite)
    params = _params_with(world, tmp_path, max_record_bytes=65536)
    outs = {name: tmp_path / f"{name}.parquet" for name in ("local", "spark")}
    for name, extra in (("local", ("--workers", "1")), ("spark", SPARK)):
        args = score_args(world, outs[name], inputs=(raw,))
        args[args.index("--params") + 1] = str(params)
        assert _run(*args, "--partitions", "3", *extra) == 0
    a, b = io.read_parquet(outs["local"]), io.read_parquet(outs["spark"])
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    manifest, expected = _manifest(outs["spark"]), _manifest(outs["local"])
    assert manifest["input"] == expected["input"]
    for key in ("rows_in", "rows_accepted", "rows_rejected", "rejected_by_reason"):
        assert manifest[key] == expected[key], key
    if kind != "utf-16":
        assert manifest["engine"]["ranges"] > len(manifest["input"]["files"])  # files were cut
        assert manifest["rejected_by_reason"]["record_too_long"] == 1
        assert manifest["rejected_by_reason"]["nul_byte"] == 3
