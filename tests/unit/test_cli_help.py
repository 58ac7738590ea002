"""``--help`` names values as click does (PATH, TEXT, INTEGER; nothing for a flag), issue 14.

The installed typer labels values with their Python annotation (``<list[Path]>``, ``<bool>``
for a flag that takes none); :func:`pipeline.cli.click_value_names` relabels every parameter.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer

from pipeline import cli

# typer's own labels: an annotation's name, a list of one, a range, a path kind
TYPER_LABEL = re.compile(
    r"<(bool|str|int|float|path|file|directory|datetime|list\[[^>]*\]|\w+ range)>"
)
COMMANDS = [[], *([name] for name in typer.main.get_command(cli.app).commands)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "loyalty")
def test_no_help_shows_a_python_type_placeholder(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per option: nothing cut
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--help" in out
    assert TYPER_LABEL.findall(out) == [], out


def _help_line(command: str, option: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main([command, "--help"]) == 0
    row = re.compile(rf"^│[\s*]*{re.escape(option)}\s")  # the option's own row of the panel
    lines = [line for line in capsys.readouterr().out.splitlines() if row.match(line)]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("command", "option", "name"),
    [
        ("score", "--out", "PATH"),
        ("score", "--input", "PATH"),  # repeatable: named by its element
        ("score", "--model", "TEXT"),
        ("score", "--as-of", "TEXT"),
        ("score", "--partitions", "INTEGER [x>=1]"),
        ("inspect", "--column", "TEXT"),
    ],
)
def test_a_value_is_named_as_click_names_it(
    command: str,
    option: str,
    name: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    line = _help_line(command, option, capsys)
    assert re.search(rf"{re.escape(option)}\s+{re.escape(name)}\s", line), line


@pytest.mark.parametrize(
    ("command", "flag"), [("score", "--progress"), ("score", "--allow-outside-data")]
)
def test_a_flag_shows_no_value(
    command: str, flag: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    line = _help_line(command, flag, capsys)
    after = line.split(flag, 1)[1].replace("--no-progress", "").strip(" │")
    assert after.startswith(("Progress", "Score")), line  # the help text comes next


def test_the_log_format_shows_its_choices() -> None:
    root = cli.click_value_names(typer.main.get_command(cli.app))
    (option,) = [p for p in root.params if p.name == "log_format"]
    assert cli.value_name(option) == "[text|json]"


def test_every_repeatable_option_says_so_in_its_help() -> None:
    root = cli.click_value_names(typer.main.get_command(cli.app))
    for name, command in root.commands.items():
        for param in command.params:
            if getattr(param, "multiple", False):
                assert "repeatable" in (param.help or ""), f"{name} {param.opts}"


def test_help_starts_without_the_heavy_libraries() -> None:
    """`loyalty --help` (and a usage error) import no data or model library: a fast start."""
    heavy = ("pandas", "numpy", "pyarrow", "lightgbm", "mlflow", "sklearn")
    code = (
        "import sys\nfrom pipeline.cli import main\n"
        "assert main(['--help']) == 0 and main(['score', '--help']) == 0\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stderr.strip().splitlines()[-1:] in ([], [""]), done.stderr
