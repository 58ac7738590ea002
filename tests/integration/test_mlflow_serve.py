"""`mlflow models serve` loads the registered champion and predicts what the local model does.

The server runs with ``--env-manager local`` (this environment, which has ``loyalty-pipeline``
installed; nothing is installed, no network is used) on 127.0.0.1, and is stopped, with its
workers, whatever happens.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from pipeline import tracking
from pipeline.config import MlflowParams, TrainParams
from pipeline.modeling.artifacts import load_predictor
from pipeline.tracking.pyfunc import PACKAGE
from tests.support.demo_panel import make_demo_panel, save_demo_model, train_demo
from tests.support.processes import stop_group

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MLFLOW = Path(sys.executable).parent / "mlflow"
STARTUP_TIMEOUT_S = 120
ROWS = 8


def _free_port() -> int:
    """A port on 127.0.0.1 nobody listens on; skip when this machine cannot bind one."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    except OSError as exc:
        pytest.skip(f"cannot bind a port on 127.0.0.1 ({exc})")


def _wait_for_ping(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"mlflow models serve did not answer /ping: {log.read_text()[-3000:]}")
        time.sleep(0.5)


def test_the_served_champion_predicts_like_the_local_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(variable, raising=False)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    panel = make_demo_panel(n_customers=400, n_cutoffs=4, seed=3)
    result = train_demo(panel, "churn", TrainParams())
    folder = save_demo_model(result, tmp_path / "model")
    logged = tracking.log_training(
        result=result, params={}, mlflow_params=MlflowParams(), model_dir=folder, plots_dir=None
    )
    assert logged is not None and "champion" in logged["aliases"]

    # the model names the package that defines its pyfunc, so a serving environment has it
    uri = "models:/loyalty-churn@champion"
    import mlflow  # the test reads what tracking logged

    pins = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().splitlines()
    assert any(line.split("==")[0] == PACKAGE for line in pins), pins

    rows = tracking.input_example(result.test_frame, rows=ROWS)
    expected = load_predictor(folder).predict(result.test_frame.head(ROWS))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(MLFLOW),
                "models",
                "serve",
                "-m",
                uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "--workers",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers stop with it
            cwd=tmp_path,
            env={**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_DISABLE_TELEMETRY": "true"},
        )
    try:
        _wait_for_ping(url, proc, log)
        body = json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()
        request = urllib.request.Request(
            f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            answer = json.loads(reply.read())
    finally:
        stop_group(proc)
    served = np.array([row["probability"] for row in answer["predictions"]])
    np.testing.assert_array_equal(served, expected)
