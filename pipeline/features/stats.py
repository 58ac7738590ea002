"""Row counts, label rates and customers of the feature panel, counted as its frames stream by."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from pipeline.targets import Target

SPLITS = ("train", "valid", "test")
#: Split of a panel row outside a target's plan (a value-only cutoff, or a value embargo).
UNUSED = "none"


@dataclass
class PanelStats:
    """Row counts, label sums and customers of the panel, accumulated as frames stream by.

    ``rows`` counts the shared ``split``; ``labels`` are the binary targets (positives and
    rows on each one's own split column), ``values`` the value targets (rows and mean spend
    on their own split column).
    """

    labels: tuple[Target, ...] = ()
    values: tuple[Target, ...] = ()
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    positives: dict[str, dict[str, int]] = field(default_factory=dict)
    label_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    value_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    value_sums: dict[str, dict[str, float]] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.positives = {s: {t.label: 0 for t in self.labels} for s in SPLITS}
        self.label_rows = {s: {t.label: 0 for t in self.labels} for s in SPLITS}
        self.value_rows = {t.name: dict.fromkeys(SPLITS, 0) for t in self.values}
        self.value_sums = {t.name: dict.fromkeys(SPLITS, 0.0) for t in self.values}

    @staticmethod
    def _split_of(frame: pd.DataFrame, column: str) -> str:
        return str(frame[column].iloc[0]) if len(frame) and column in frame else UNUSED

    def track(self, frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Yield ``frames`` unchanged, counting them on the way."""
        for frame in frames:
            name = str(frame["split"].iloc[0]) if len(frame) else "test"
            self.rows[name] = self.rows.get(name, 0) + len(frame)
            for target in self.labels:
                own = self._split_of(frame, target.split_column)
                if own in SPLITS:
                    self.positives[own][target.label] += int(frame[target.label].sum())
                    self.label_rows[own][target.label] += len(frame)
            for target in self.values:
                own = self._split_of(frame, target.split_column)
                if own in SPLITS:
                    self.value_rows[target.name][own] += len(frame)
                    self.value_sums[target.name][own] += float(frame[target.label].sum())
            self.customers.update(frame["customer_id"].dropna().tolist())
            yield frame

    def value_means(self) -> dict[str, dict[str, float]]:
        """Mean spend label per value target and split."""
        return {
            name: {
                s: round(total / self.value_rows[name][s], 4) if self.value_rows[name][s] else 0.0
                for s, total in sums.items()
            }
            for name, sums in self.value_sums.items()
        }

    def label_rates(self) -> dict[str, dict[str, float]]:
        """Share of positive labels per split (each binary target on its own split)."""
        return {
            s: {
                k: round(v / self.label_rows[s][k], 6) if self.label_rows[s][k] else 0.0
                for k, v in pos.items()
            }
            for s, pos in self.positives.items()
        }
