"""`loyalty score --engine spark` on a real standalone cluster equals the local engine.

The fixture starts a Spark master and one worker (1 core, 1 GiB) from the pyspark package's
own ``spark-class``, bound to 127.0.0.1 on free ports, waits until the worker has registered
(the master's JSON endpoint), and stops both process groups afterwards, whatever happens.
The CLI runs as a separate process, as a batch job would: its driver talks to the master, its
executor runs in the worker's JVM and reads the export from the (shared) local disk.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from test_score_cli import World, assert_parity, build_world, score_args

from pipeline import io
from tests.support.processes import stop_group

pyspark = pytest.importorskip("pyspark")
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPARK_HOME = Path(pyspark.__file__).parent
LOYALTY = Path(sys.executable).with_name("loyalty")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _java_home() -> str | None:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else None


def _spark_env(logs: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(logs),
        "SPARK_DAEMON_MEMORY": "384m",  # master and worker JVMs; the executor gets 1 GiB
        "PYSPARK_PYTHON": sys.executable,
    }
    java_home = _java_home()
    if java_home:
        env["JAVA_HOME"] = java_home
    return env


def _alive_workers(webui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=2) as reply:
            state = json.load(reply)
    except OSError:
        return -1  # the master is not up yet
    return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")


@contextmanager
def standalone_cluster(root: Path, timeout: float = 120.0) -> Iterator[str]:
    """Run a master and one worker on 127.0.0.1; yield the master URL; stop both."""
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = _spark_env(logs)
    port, webui, worker_ui = _free_port(), _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    commands = {
        "master": [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(webui),
        ],
        "worker": [
            spark_class,
            "org.apache.spark.deploy.worker.Worker",
            url,
            "--host",
            "127.0.0.1",
            "--cores",
            "1",
            "--memory",
            "1g",
            "--webui-port",
            str(worker_ui),
            "--work-dir",
            str(root / "work"),
        ],
    }
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, command in commands.items():
            with open(logs / f"{name}.log", "wb") as log:
                started.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            deadline = time.monotonic() + timeout
            wanted = 0 if name == "master" else 1
            while _alive_workers(webui) < wanted:
                if started[-1].poll() is not None or time.monotonic() > deadline:
                    text = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"spark {name} did not start:\n{text}")
                time.sleep(0.5)
        yield url
    finally:
        for process in reversed(started):
            stop_group(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _java_home() is None:
        pytest.skip("java is not installed (JAVA_HOME unset, no java on PATH)")
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield build_world(tmp_path_factory.mktemp("standalone"), n_customers=400)


def score_cli(world: World, out: Path, *extra: str) -> float:
    """Run the real ``loyalty score`` in its own process; return its wall time in seconds."""
    args = [str(LOYALTY), *score_args(world, out), *extra]
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return seconds


def test_a_standalone_cluster_scores_exactly_as_the_local_engine(
    cluster: str, world: World, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    local, spark = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    local_seconds = score_cli(world, local, "--partitions", "4", "--workers", "1")
    spark_seconds = score_cli(
        world, spark, "--partitions", "4", "--engine", "spark", "--spark-master", cluster
    )
    record_property("local_seconds", round(local_seconds, 2))
    record_property("spark_standalone_seconds", round(spark_seconds, 2))
    a, b = io.read_parquet(local), io.read_parquet(spark)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert_parity(world, b)
    manifest = io.read_json(spark.with_name("spark.parquet.manifest.json"))
    assert manifest["engine"] == {
        "name": "spark",
        "master": cluster,
        "ranges": manifest["engine"]["ranges"],
        "range_bytes": manifest["engine"]["range_bytes"],
    }
    assert manifest["engine"]["ranges"] > len(manifest["input"]["files"])  # files were cut
    assert (
        manifest["input"] == io.read_json(local.with_name("local.parquet.manifest.json"))["input"]
    )
