"""The run settings the features stage will choose for an export, told before it runs.

Not a second rule: the export's gaps between purchase days go through the features stage's own
derivation (:func:`pipeline.features.defaults.fit_timeline`) with the params as they are, so
the horizons, cutoff step and minimum history that ``loyalty inspect`` prints are the ones
``dvc repro`` will choose (an explicit value in params.yaml is kept, as there). The population
filter is chosen at the test cutoff by the features stage (:mod:`pipeline.features.population`)
and reported in its summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.config import Params
from pipeline.errors import DataError
from pipeline.features.defaults import fit_timeline
from pipeline.features.gaps import Choice, Gaps


@dataclass(frozen=True)
class Cadence:
    """What the features stage will choose (or why no train / valid / test split fits)."""

    choices: tuple[Choice, ...]
    problem: str | None = None

    @property
    def fits(self) -> bool:
        """Whether the export is long enough for a train / valid / test split."""
        return self.problem is None


def suggest_cadence(
    first: pd.Timestamp | None, last: pd.Timestamp | None, gaps: Gaps, params: Params
) -> Cadence:
    """Run the features stage's choice of horizons, step and minimum history on the export.

    The observed period ends the day after the last order, as the features stage's default.
    """
    if first is None or last is None:
        return Cadence((), "no orders with a customer id and a timestamp")
    data_end = last.normalize() + pd.Timedelta(days=1)
    try:
        timeline = fit_timeline(first, data_end, params.features, params.labels, gaps)
    except DataError as exc:
        return Cadence((), exc.message)
    return Cadence(timeline.choices)
