"""MLflow-free helpers of tracking: flattening, checksums, store URI and reachability."""

import socket
import sqlite3
import time

import pytest

from pipeline import tracking_support
from pipeline.config import MlflowParams
from pipeline.errors import TrackingError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flatten_and_numeric_metrics():
    nested = {"model": {"roc_auc": 0.8, "n_rows": 10}, "test_cutoff": "2024-05-01", "ok": True}
    assert tracking_support.flatten(nested) == {
        "model.roc_auc": 0.8,
        "model.n_rows": 10,
        "test_cutoff": "2024-05-01",
        "ok": True,
    }
    assert tracking_support.numeric_metrics(nested) == {"model.roc_auc": 0.8, "model.n_rows": 10.0}


def test_data_checksums_come_from_the_features_stage_in_dvc_lock():
    lock = {
        "stages": {
            "features": {"outs": [{"path": "data/features", "md5": "abc.dir"}]},
            "clean": {"outs": [{"path": "data/clean", "md5": "zzz"}]},
        }
    }
    assert tracking_support.data_checksums(lock) == {"data.data/features.md5": "abc.dir"}
    assert tracking_support.data_checksums(None) == {}


def test_env_overrides_the_tracking_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert tracking_support.resolve_tracking_uri(MlflowParams()) == "http://example.invalid:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_support.resolve_tracking_uri(MlflowParams()) == "sqlite:///mlflow.db"


@pytest.mark.reliability("MLflow tracking server unreachable")
def test_unreachable_server_fails_fast_with_one_line():
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.perf_counter()
    with pytest.raises(TrackingError, match=f"^tracking server unreachable: {uri}$"):
        tracking_support.check_reachable(uri)
    assert time.perf_counter() - started < 5


@pytest.mark.reliability("SQLite store busy")
def test_sqlite_store_is_put_in_wal_mode(tmp_path):
    db = tmp_path / "sub" / "mlflow.db"
    tracking_support.check_reachable(f"sqlite:///{db}")
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
