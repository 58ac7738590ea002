"""Faults without root: a disk that fills while one named output file is written; an unreadable
input.

Every output file goes through :func:`pipeline.io.atomic_path`, which flushes it with
``os.fsync`` before renaming it into place; a real file system reports a full disk at a write or
at that flush. :class:`FullDisk` replaces ``os.fsync`` so that flushing the first file whose name
contains ``at`` fails with ``ENOSPC``: every file written before it is complete, the rest of the
set never comes.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest


class FullDisk:
    """Patch ``os.fsync``: ``ENOSPC`` when flushing a file whose name contains ``at``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: str) -> None:
        self.at: str | None = at
        self.written: list[str] = []  # files flushed in full before the disk filled
        self.hit = False
        self._fsync = os.fsync
        monkeypatch.setattr(os, "fsync", self._flush)

    def clear(self) -> None:
        """Free the disk again (a rerun after the fault)."""
        self.at = None

    def _flush(self, fd: int) -> None:
        if self.at is not None and stat.S_ISREG(os.fstat(fd).st_mode):
            name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
            if self.at in name:
                self.hit = True
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written.append(name)
        self._fsync(fd)


def snapshot(output: Path) -> dict[str, bytes]:
    """Every file of an output folder (relative path -> bytes), or the one output file."""
    if output.is_file():
        return {output.name: output.read_bytes()}
    return {
        str(p.relative_to(output)): p.read_bytes() for p in sorted(output.rglob("*")) if p.is_file()
    }


def leftovers(output: Path) -> list[str]:
    """Temporary siblings a write of ``output`` left next to it (there should be none)."""
    prefix = f".{output.name}."
    return sorted(p.name for p in output.parent.iterdir() if p.name.startswith(prefix))


def assert_disk_full_error(code: int, err: str, path: Path) -> None:
    """ERR: non-zero exit, one line "no space left on device writing PATH", no traceback."""
    assert code != 0, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: no space left on device writing {path}"], err
    assert "Traceback" not in err


def assert_disk_full_keeps_old_set(
    monkeypatch: pytest.MonkeyPatch,
    rerun: Callable[[], tuple[int, str]],
    outputs: list[Path],
    at: str,
    written_first: str,
    named: Path,
) -> FullDisk:
    """Rerun a stage whose outputs exist (``rerun``: exit code, stderr) with the disk filling at
    file ``at``.

    ``written_first`` is a file of the new set written in full before the disk filled (so the
    old code would have left a mix). Checks the one-line error naming the final file ``named``,
    that every output is byte for byte the old set and that no temporary sibling is left.
    Returns the (still full) disk: ``clear()`` it to rerun.
    """
    before = [snapshot(path) for path in outputs]
    disk = FullDisk(monkeypatch, at=at)
    code, err = rerun()
    assert disk.hit and any(written_first in name for name in disk.written), disk.written
    assert_disk_full_error(code, err, named.resolve())
    assert [snapshot(path) for path in outputs] == before
    assert [leftovers(path) for path in outputs] == [[] for _ in outputs]
    return disk


def unreadable(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` unreadable: mode 000, and for root (who reads anything) a refusing open."""
    import builtins

    path.chmod(0)
    if os.geteuid() != 0:
        return
    real_open = builtins.open

    def refusing(file, *args, **kwargs):
        if Path(str(file)).resolve() == path.resolve():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
