"""Train against a real `mlflow server` on 127.0.0.1 and load the champion back through it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline import io, tracking
from pipeline.cli import main
from tests.support.demo_panel import make_demo_panel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MLFLOW = Path(sys.executable).parent / "mlflow"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'store.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=root,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers, which we started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_champion_from_the_server_predicts_exactly_like_the_local_model(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    panel = make_demo_panel(n_customers=600, n_cutoffs=4, seed=9)
    io.write_parquet(tmp_path / "features" / "panel.parquet", panel)
    code = main(
        [
            "train",
            "--target",
            "churn",
            "--features",
            "features",
            "--out",
            "models/churn",
            "--metrics",
            "metrics.json",
            "--plots",
            "plots",
            "--dictionary",
            str(Path(__file__).resolve().parents[2] / "configs" / "features.yaml"),
        ]
    )
    assert code == 0

    local = io.read_parquet(tmp_path / "models/churn/test_predictions.parquet")
    test = panel[panel["split"] == "test"].reset_index(drop=True)
    champion = tracking.load_registered("models:/loyalty-churn@champion")
    served = champion.predict(test)["probability"].to_numpy()
    np.testing.assert_array_equal(served, local["probability"].to_numpy())
    assert champion.metadata.signature is not None
    predictor, _, version = tracking.load_registered_predictor(
        "models:/loyalty-churn@champion", tmp_path / "download"
    )
    assert version == "1"
    np.testing.assert_array_equal(predictor.predict_proba(test), served)
