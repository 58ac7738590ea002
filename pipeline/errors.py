"""Errors the CLI turns into one clear line and a non-zero exit code.

Anything raised as a :class:`PipelineError` is an expected failure (bad input, bad config,
an unreachable service): the CLI prints ``error: <message>`` and exits with ``exit_code``.
Any other exception is a bug and is shown with its traceback.

The exit codes a batch job sees are each class's ``exit_code`` plus the few below;
:func:`exit_codes` lists them all, and docs/scoring.md ("Exit codes") says what a job should
do with each (a test keeps the two equal).
"""

from __future__ import annotations

from typing import Any

OK = 0
#: An unexpected failure: a bug (with its traceback), out of memory, or a system call refused.
FAILED = 1
#: A command-line usage error (click's: unknown or missing option, a value out of range).
USAGE = 2
#: Stopped by Ctrl-C (SIGINT) or an abort, as a shell reports 128 + SIGINT.
INTERRUPTED = 130


class PipelineError(Exception):
    """An expected failure with a one-line, user-facing message."""

    exit_code = FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(PipelineError):
    """An input file is unusable: empty, wrong format, missing columns, unreadable."""

    exit_code = USAGE  # the input, like the command line, is the caller's to fix


class ConfigError(PipelineError):
    """``params.yaml`` or a file in ``configs/`` is invalid."""

    exit_code = 3

    @classmethod
    def from_validation(cls, origin: str, exc: Any) -> ConfigError:
        """One line from a pydantic ``ValidationError``: its first problem, ``origin: a.b: msg``."""
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")  # a validator's own words
        return cls(f"{origin}: {where}: {message}")


class DataError(PipelineError):
    """The data are valid but cannot support the step (no training rows, empty window)."""

    exit_code = 4


class ModelError(PipelineError):
    """A model artefact is missing, corrupted, unsafe or from an incompatible version."""

    exit_code = 5


class QualityGateError(PipelineError):
    """A trained model failed a quality gate (worse than a baseline, or suspiciously good)."""

    exit_code = 6


class TrackingError(PipelineError):
    """The MLflow tracking server or registry cannot be used."""

    exit_code = 7


class OutputError(PipelineError):
    """An output cannot be written (full disk, quota, read-only file system, no permission).

    The message names the final output: ``no space left on device writing PATH``.
    """

    exit_code = 8

    def __init__(self, reason: str, path: str) -> None:
        super().__init__(f"{reason} writing {path}")
        self.args = (reason, path)  # so the error crosses a process pool intact (pickle)
        self.reason = reason
        self.path = str(path)


#: Codes worth an automatic retry: the fault may pass on its own (a tracking server or SQLite
#: store back, disk space freed, a run that was only interrupted); every other code needs a fix.
RETRYABLE = frozenset({TrackingError.exit_code, OutputError.exit_code, INTERRUPTED})


def exit_codes() -> dict[int, list[str]]:
    """Every exit code of ``loyalty``, with the error classes (or constants) that give it."""
    named = {"OK": OK, "FAILED": FAILED, "USAGE": USAGE, "INTERRUPTED": INTERRUPTED}
    found: dict[int, list[str]] = {}
    for name, code in named.items():
        found.setdefault(code, []).append(name)
    todo: list[type[PipelineError]] = [PipelineError]
    while todo:
        error = todo.pop(0)
        found.setdefault(error.exit_code, []).append(error.__name__)
        todo.extend(error.__subclasses__())
    return dict(sorted(found.items()))
