"""A warning repeated in one run is shown once, with a count; workers log through the parent."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.cli import main
from pipeline.logs import RepeatFilter
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

logs.configure()
assert run_partitions(warn, [0, 1, 2, 3], (), workers=2) == [0, 1, 2, 3]
logs.report_repeats()
"""


def test_workers_warning_per_partition_is_shown_once_with_its_count() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    lines = [line for line in result.stderr.splitlines() if "Country" in line]
    assert len(lines) == 2, result.stderr
    assert "logged 4 times in this run (shown once)" in lines[1]


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
