"""Label horizons and cutoff step to suggest for an export, from its span and buying rhythm.

One function, :func:`suggest_cadence`, on purpose: the features stage may later derive the same
settings from the clean data, and the two should then become one rule.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Horizons a suggestion picks from (days), as pipeline.features.cutoffs.HORIZON_LADDER.
LADDER = (30, 60, 90, 120, 180, 270, 365)
DEFAULT_CHURN, DEFAULT_REPURCHASE, DEFAULT_MIN_HISTORY = 90, 30, 60
MONTH = 30
# Training cutoffs wanted at a monthly step before a shorter step is suggested.
MIN_TRAIN_CUTOFFS = 6


@dataclass(frozen=True)
class Cadence:
    """Suggested settings: churn and repurchase horizons, cutoff step, minimum history."""

    churn_days: int
    repurchase_days: int
    step_months: int | None
    step_days: int | None
    min_history_days: int
    reasons: tuple[str, ...]
    fits: bool  # the export is long enough for a train / valid / test split

    def params(self) -> dict[str, object]:
        """Return the params.yaml keys of the suggestion (dotted, as for ``dvc exp run -S``)."""
        return {
            "labels.targets.churn.horizon_days": self.churn_days,
            "labels.targets.repurchase.horizon_days": self.repurchase_days,
            "features.step_months": self.step_months or 1,
            "features.step_days": self.step_days,
            "features.min_history_days": self.min_history_days,
        }


def needed_days(horizon: int, min_history: int, step: int = MONTH) -> int:
    """Days of orders a train / valid / test split needs with this longest horizon.

    The test cutoff's label window ends at the data end, the validation cutoff's window ends
    at the test cutoff and the last training cutoff's at the validation cutoff (three windows
    end to end), after the first cutoff's history, plus one step for the grid to start.
    """
    return min_history + 3 * horizon + step


def suggest_cadence(span_days: int, median_gap_days: float | None) -> Cadence:
    """Suggest horizons and the cutoff step for ``span_days`` of orders.

    Rule (simple on purpose): churn = no order within the smallest horizon of :data:`LADDER`
    that is at least 90 days and at least two usual gaps between a customer's orders
    (``median_gap_days``), lowered down the ladder until a train / valid / test split fits
    (:func:`needed_days`); repurchase = 30 days (or the churn horizon if shorter). The step
    is a month when that leaves :data:`MIN_TRAIN_CUTOFFS` training cutoffs, else a number of
    days (a multiple of 7) that does.
    """
    reasons: list[str] = []
    churn = DEFAULT_CHURN
    if median_gap_days is not None and 2 * median_gap_days > churn:
        churn = next((h for h in LADDER if h >= 2 * median_gap_days), LADDER[-1])
        reasons.append(
            f"customers order every {median_gap_days:.0f} days (median gap): churn = no order "
            f"in {churn} days, two usual gaps"
        )
    history = DEFAULT_MIN_HISTORY
    while churn > LADDER[0] and needed_days(churn, history) > span_days:
        lower = max(h for h in LADDER if h < churn)
        reasons.append(
            f"{span_days} days of orders are too few for {churn}-day labels "
            f"(needs {needed_days(churn, history)}): {lower} days"
        )
        churn = lower
    fits = needed_days(churn, history) <= span_days
    if not fits:
        reasons.append(
            f"{span_days} days of orders are too few for a train/valid/test split even with "
            f"{churn}-day labels (needs {needed_days(churn, history)} days)"
        )
    repurchase = min(DEFAULT_REPURCHASE, churn)
    spare = span_days - needed_days(churn, history, step=0)
    step_months: int | None = 1
    step_days: int | None = None
    if spare // MONTH + 1 < MIN_TRAIN_CUTOFFS and fits:
        step_days = max(7, (spare // MIN_TRAIN_CUTOFFS) // 7 * 7)
        step_months = None
        reasons.append(
            f"a monthly grid leaves {spare // MONTH + 1} training cutoffs: a {step_days}-day step"
        )
    return Cadence(churn, repurchase, step_months, step_days, history, tuple(reasons), fits)
