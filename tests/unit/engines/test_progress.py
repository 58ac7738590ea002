"""Progress bars are for people at a terminal, never for a cron job's log file (issue 14.7)."""

from __future__ import annotations

import io
import sys

import pytest

from pipeline.engines.local import _InlineExecutor, _run_all


class _Stderr(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(("tty", "shown"), [(True, True), (False, False)])
def test_a_bar_is_drawn_only_on_a_terminal(
    tty: bool, shown: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = _Stderr(tty)
    monkeypatch.setattr(sys, "stderr", stderr)
    assert _run_all(_InlineExecutor(), abs, [(-1,), (-2,)], "score", progress=True) == [1, 2]
    assert ("score" in stderr.getvalue()) is shown
