"""CLI usage errors are click's one-line usage error and exit 2, never a traceback (issue 13.1).

The installed typer raises its own bundled copy of click's exceptions; ``cli.main`` must catch
those, not only the separate ``click`` package's.
"""

from __future__ import annotations

import pytest

from pipeline.cli import main


@pytest.mark.reliability("cli: usage errors")
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["clean", "--source", "x", "--out", "o"], "No such option: --source"),
        (["clean", "--input", "x"], "Missing option '--out'"),
        (["score", "--input", "i", "--out", "o"], "Missing option '--model'"),
        (
            ["score", "--model", "m", "--input", "i", "--out", "o", "--partitions", "0"],
            "Invalid value for '--partitions'",
        ),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and fragment in errors[0], err
