"""Logging: a warning repeated in one run is shown once, with a count; workers log through the
parent; ``--log-format json`` makes every line, the final error line included, one JSON object.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.logs import (
    PYSPARK_PANDAS_NOTICE_FILTER,
    JsonFormatter,
    RepeatFilter,
    without_pyspark_pandas_notice,
)
from pipeline.sources import synthetic


def _record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("pipeline.x", level, __file__, 1, message, None, None)


def test_a_repeated_warning_passes_once_and_is_counted() -> None:
    repeats = RepeatFilter()
    shown = [repeats.filter(_record(m)) for m in ("dropped: Country", "other", "dropped: Country")]
    assert shown == [True, True, False]
    assert [(key[2], n) for key, n in repeats.repeats()] == [("dropped: Country", 2)]
    # information is never held back: progress lines repeat on purpose
    assert all(repeats.filter(_record("step", logging.INFO)) for _ in range(3))


# Run in a fresh interpreter: the CLI's logging, not pytest's capture handlers.
SCRIPT = """
import logging
from pipeline import logs
from pipeline.features.partition import run_partitions

def warn(part):
    logging.getLogger("pipeline.sources").warning("extra columns dropped: ['Country']")
    return part

logs.configure(log_format=sys.argv[1])
assert run_partitions(warn, [0, 1, 2, 3], (), workers=2) == [0, 1, 2, 3]
logs.report_repeats()
"""


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_workers_warning_per_partition_is_shown_once_with_its_count(log_format: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + SCRIPT, log_format],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line for line in result.stderr.splitlines() if "Country" in line]
    assert len(lines) == 2, result.stderr
    assert "logged 4 times in this run (shown once)" in lines[1]
    if log_format == "json":
        assert [json.loads(line)["level"] for line in lines] == ["WARNING", "WARNING"]


def _utc(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    assert text.endswith("Z") and when.utcoffset() == dt.timedelta(0), text
    return when


def test_a_json_line_has_the_utc_time_level_logger_and_message() -> None:
    record = logging.LogRecord("pipeline.score", logging.INFO, __file__, 1, "%d rows", (12,), None)
    record.created = dt.datetime(2024, 12, 2, 2, 30, 1, 123000, tzinfo=dt.UTC).timestamp()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2024-12-02T02:30:01.123Z",
        "level": "INFO",
        "logger": "pipeline.score",
        "message": "12 rows",
    }
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "m", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(failed))
    assert "ValueError: boom" in entry["exception"] and entry["message"] == "m"


def _run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The console script's entry point in a fresh interpreter (its own logging, not pytest's)."""
    code = "from pipeline.cli import run; run()"
    environ = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
    )


def test_json_mode_writes_only_json_lines_and_ends_a_failure_with_its_exit_code(
    tmp_path: Path,
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("generate: {n_customers: many}\n")
    failed = _run_cli("--log-format", "json", "generate", "--params", str(params), "--out", "o")
    assert failed.returncode == ConfigError.exit_code
    entries = [json.loads(line) for line in failed.stderr.splitlines()]
    last = entries[-1]
    assert last["level"] == "ERROR" and last["exit_code"] == ConfigError.exit_code
    assert "n_customers" in last["message"] and _utc(last["time"])
    # the environment variable does the same; a usage error is a JSON line too (exit 2)
    usage = _run_cli("score", "--out", "x", LOYALTY_LOG_FORMAT="json")
    (entry,) = [json.loads(line) for line in usage.stderr.splitlines()]
    assert usage.returncode == 2 and entry["exit_code"] == 2
    assert "Missing option '--model'" in entry["message"]


def test_json_mode_logs_a_run_as_json_lines(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"input": str(tmp_path / "raw")}}))
    out = tmp_path / "synthetic"
    done = _run_cli(
        "--log-format",
        "json",
        "generate",
        "--params",
        str(params),
        "--out",
        str(out),
        "--when-read",
    )
    assert done.returncode == 0, done.stderr
    (entry,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert entry["level"] == "INFO" and entry["message"].startswith("generate: skipped")


def test_text_mode_keeps_the_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("generate: {n_customers: many}\n")
    assert main(["generate", "--params", str(params), "--out", str(tmp_path / "o")]) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "n_customers" in line


def test_generate_when_read_skips_a_folder_the_pipeline_does_not_read(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"data": {"source": "online_retail", "input": str(tmp_path / "raw")}})
    )
    out = tmp_path / "synthetic"
    assert main(["generate", "--params", str(params), "--out", str(out), "--when-read"]) == 0
    assert [path.name for path in out.iterdir()] == [synthetic.SKIPPED_NOTE]
    note = json.loads((out / synthetic.SKIPPED_NOTE).read_text())
    assert note["skipped"] is True and "online_retail" in note["reason"]


def test_the_pipeline_reads_a_folder_or_a_file_inside_it(tmp_path: Path) -> None:
    assert synthetic.reads_folder(tmp_path / "syn", tmp_path / "syn")
    assert synthetic.reads_folder(tmp_path / "syn" / "transactions.csv", tmp_path / "syn")
    assert not synthetic.reads_folder(tmp_path / "synthetic_old", tmp_path / "syn")


def test_only_pysparks_pandas_notice_is_silenced() -> None:
    notice = "PySpark does not yet fully support pandas >= 3.0.0. Some features may not work."
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with without_pyspark_pandas_notice():
            warnings.warn(notice, FutureWarning, stacklevel=1)
            warnings.warn("a pandas FutureWarning of our own", FutureWarning, stacklevel=1)
            warnings.warn(notice, UserWarning, stacklevel=1)  # another category: shown
    assert [(str(w.message)[:20], w.category) for w in shown] == [
        ("a pandas FutureWarni", FutureWarning),
        (notice[:20], UserWarning),
    ]
    action, message, category = PYSPARK_PANDAS_NOTICE_FILTER.split(":")
    assert (action, category) == ("ignore", "FutureWarning") and notice.startswith(message)
