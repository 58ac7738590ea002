"""MLflow-free modules of tracking: flattening, checksums, store URI and reachability."""

import ast
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import tracking
from pipeline.config import MlflowParams
from pipeline.errors import TrackingError
from pipeline.tracking import run_data, store
from tests.support.sqlite_lock import locked


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flatten_and_numeric_metrics():
    nested = {"model": {"roc_auc": 0.8, "n_rows": 10}, "test_cutoff": "2024-05-01", "ok": True}
    assert run_data.flatten(nested) == {
        "model.roc_auc": 0.8,
        "model.n_rows": 10,
        "test_cutoff": "2024-05-01",
        "ok": True,
    }
    assert run_data.numeric_metrics(nested) == {"model.roc_auc": 0.8, "model.n_rows": 10.0}


def test_data_checksums_come_from_the_features_stage_in_dvc_lock():
    lock = {
        "stages": {
            "features": {"outs": [{"path": "data/features", "md5": "abc.dir"}]},
            "clean": {"outs": [{"path": "data/clean", "md5": "zzz"}]},
        }
    }
    assert run_data.data_checksums(lock) == {"data.data/features.md5": "abc.dir"}
    assert run_data.data_checksums(None) == {}


def test_env_overrides_the_tracking_uri(monkeypatch):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert store.resolve_tracking_uri(MlflowParams()) == "http://example.invalid:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert store.resolve_tracking_uri(MlflowParams()) == "sqlite:///mlflow.db"


def test_a_relative_sqlite_store_is_the_dvc_project_s_under_dvc(monkeypatch):
    # `dvc exp run --temp` and queued experiments run their stages in .dvc/tmp/exps/tmpXXXX with
    # DVC_ROOT naming the project: their runs must land in the project's store, not the copy's
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", "/repo")
    assert store.resolve_tracking_uri(MlflowParams()) == "sqlite:////repo/mlflow.db"
    relative = MlflowParams(tracking_uri="sqlite:///stores/mlflow.db?timeout=5")
    assert store.resolve_tracking_uri(relative) == "sqlite:////repo/stores/mlflow.db?timeout=5"
    for uri in ("sqlite:////abs/mlflow.db", "http://127.0.0.1:5000", "sqlite:///:memory:"):
        assert store.project_store(uri, "/repo") == uri
    assert store.project_store("sqlite:///mlflow.db", None) == "sqlite:///mlflow.db"


@pytest.mark.reliability("MLflow tracking server unreachable")
def test_unreachable_server_fails_fast_with_one_line():
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.perf_counter()
    with pytest.raises(TrackingError, match=f"^tracking server unreachable: {uri}$"):
        store.check_reachable(uri)
    assert time.perf_counter() - started < 5


@pytest.mark.reliability("SQLite store busy")
def test_sqlite_store_is_put_in_wal_mode(tmp_path):
    db = tmp_path / "sub" / "mlflow.db"
    store.check_reachable(f"sqlite:///{db}")
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


@pytest.mark.reliability("infrastructure: SQLite store locked by another writer")
def test_a_locked_store_is_waited_for_then_named_locked(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    store.check_reachable(uri)
    with locked(db):  # WAL: a reader goes past another writer, a writer waits, then fails
        store.check_reachable(uri, 0.2)
        started = time.perf_counter()
        with pytest.raises(TrackingError, match=r"is locked by another writer \(waited 0\.2 s"):
            store.check_reachable(uri, 0.2, write=True)
        assert time.perf_counter() - started < 10
    with locked(db, journal_mode="delete"):  # a rollback journal's lock stops readers too
        with pytest.raises(TrackingError, match=f"^tracking store {uri} is locked by another"):
            store.check_reachable(uri, 0.2)
    store.check_reachable(uri, 0.2, write=True)  # released: usable again, and in WAL mode


def test_store_failures_map_to_one_line():
    uri = "sqlite:///mlflow.db"
    try:
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.Error as inner:
            raise RuntimeError("(raised as a result of Query-invoked autoflush)\nINSERT") from inner
    except RuntimeError as exc:  # MlflowException wraps SQLAlchemy's error the same way
        wrapped = exc
    assert store.is_locked(wrapped)
    assert store.tracking_failure(wrapped, uri).message == (
        f"tracking store {uri} is locked by another writer (MLflow gave up waiting for it)"
    )
    other = store.tracking_failure(RuntimeError("no such table: runs\n[SQL: ...]"), uri)
    assert other.message == f"MLflow failed at {uri}: no such table: runs"
    same = TrackingError("tracking server unreachable: x")
    assert store.tracking_failure(same, uri) is same


def test_mlflow_free_modules_do_not_import_mlflow():
    # Scoring workers import these; MLflow costs seconds at import and must stay out of them.
    code = (
        "import sys\n"
        "import pipeline.tracking, pipeline.tracking.store, pipeline.tracking.model_uri\n"
        "import pipeline.tracking.run_data, pipeline.tracking.promotion\n"
        "from pipeline.tracking import resolve_tracking_uri, check_reachable, flatten\n"
        "assert 'mlflow' not in sys.modules, sorted(m for m in sys.modules if 'mlflow' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_exports_match_the_type_checking_imports():
    # pipeline/tracking/__init__.py names each export twice (for mypy, and for the lazy loader).
    init = Path(tracking.__file__)
    block = next(
        node
        for node in ast.parse(init.read_text(encoding="utf-8")).body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    declared = {
        alias.name: node.module.rpartition(".")[2]
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert declared == tracking._EXPORTS
    for name in tracking._EXPORTS:
        assert getattr(tracking, name) is not None
    with pytest.raises(AttributeError):
        _ = tracking.no_such_name
