"""Errors the CLI turns into one clear line and a non-zero exit code.

Anything raised as a :class:`PipelineError` is an expected failure (bad input, bad config,
an unreachable service): the CLI prints ``error: <message>`` and exits with ``exit_code``.
Any other exception is a bug and is shown with its traceback.
"""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """An expected failure with a one-line, user-facing message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(PipelineError):
    """An input file is unusable: empty, wrong format, missing columns, unreadable."""

    exit_code = 2


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
