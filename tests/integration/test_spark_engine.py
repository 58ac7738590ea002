"""`loyalty score --engine spark` in Spark local mode equals the local engine, row for row.

Starts a real local SparkSession (pyspark is the optional extra ``.[spark]``), on a small
pipeline run built like the one in test_score_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_score_cli import World, assert_parity, build_world, score

from pipeline import io

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield build_world(tmp_path_factory.mktemp("spark"), n_customers=400)


def test_spark_local_mode_equals_the_local_engine(world: World, tmp_path: Path) -> None:
    local, spark = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    assert score(world, local, "--partitions", "3", "--workers", "1") == 0
    assert score(world, spark, "--partitions", "3", "--engine", "spark",
                 "--spark-master", "local[2]") == 0
    a, b = io.read_parquet(local), io.read_parquet(spark)
    # same rows in the same order, same dtypes, probabilities equal (not just close)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert_parity(world, b)
    manifest = io.read_json(spark.with_name("spark.parquet.manifest.json"))
    assert manifest["engine"]["name"] == "spark"
    assert manifest["customers_scored"] == len(b)
