"""The previous run's scores: where they come from, and this run's ``change`` block.

A batch job's previous scores are ``--previous PATH`` when given, else the ``--out`` file as
it is before this run replaces it (the scores are renamed in only once the run is complete, so
the old file is still there to read). The DVC ``score`` stage has none (DVC removes its
output first, which keeps it a function of its deps). The comparison itself is
:mod:`pipeline.change`; a previous file that cannot be read is a warning, never a failed run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline import change, io
from pipeline.errors import PipelineError

logger = logging.getLogger(__name__)


def previous_scores(out: Path, explicit: Path | None) -> Path | None:
    """Return the scores to compare with: ``--previous``, else an existing ``--out``."""
    if explicit is not None:
        return explicit
    return out if out.exists() else None


def read_run(path: Path) -> change.RunScores:
    """Fold a scores file into what the comparison needs (batch by batch)."""
    return change.summarise(io.iter_table(path, change.wanted))


def change_block(previous: Path | None, current: Path) -> dict[str, Any]:
    """Compare the scores just written (``current``) with the previous run's (``previous``)."""
    if previous is None:
        return change.no_previous("no previous scores: this is the first run for this output")
    try:
        then = read_run(previous)
    except (PipelineError, OSError, ValueError) as exc:
        reason = f"previous scores not compared: {exc}"
        logger.warning("%s", reason)
        return change.no_previous(reason)
    block = change.change_since(then, read_run(current), str(previous))
    for note in block["notes"]:
        logger.info("change since the last run: %s", note)
    return block
