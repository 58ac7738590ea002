"""A full disk without root: the disk fills while one named output file is being written.

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
from pathlib import Path

import pytest


class FullDisk:
    """Patch ``os.fsync``: ``ENOSPC`` when flushing a file whose name contains ``at``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: str) -> None:
        self.at = at
        self.written: list[str] = []  # files flushed in full before the disk filled
        self.hit = False
        self._fsync = os.fsync
        monkeypatch.setattr(os, "fsync", self._flush)

    def _flush(self, fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
            if self.at in name:
                self.hit = True
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written.append(name)
        self._fsync(fd)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
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
