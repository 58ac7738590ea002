"""docs/scoring.md's exit-code table lists exactly the codes of pipeline/errors.py (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import RETRYABLE, exit_codes

DOC = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"
ROW = re.compile(r"^\| (\d+) \| (.+) \| (.+) \|$")


def _table() -> dict[int, str]:
    """Exit code -> the "retry" cell, from the table in the batch-job section."""
    section = DOC.read_text(encoding="utf-8").split("## In a batch job", 1)[1].split("\n## ")[0]
    return {int(m[1]): m[3] for line in section.splitlines() if (m := ROW.match(line))}


def test_the_table_lists_every_exit_code_and_no_other() -> None:
    assert sorted(_table()) == sorted(exit_codes())


def test_the_retry_column_is_the_retryable_set() -> None:
    retried = {code for code, retry in _table().items() if retry.startswith("yes")}
    assert retried == set(RETRYABLE)


def test_every_error_class_has_a_code_and_the_codes_include_the_shell_conventions() -> None:
    codes = exit_codes()
    assert codes[0] == ["OK"] and codes[130] == ["INTERRUPTED"]
    assert "InputError" in codes[2] and "USAGE" in codes[2]  # both the caller's to fix
    assert all(code not in codes for code in (75, 99))  # flock's and Airflow's skip code, free
