"""When a new model version becomes the champion: the promotion rule, MLflow-free.

A version registered by the main pipeline (``dvc repro``, ``loyalty train``) takes ``champion``
when there is none, or when its test score beats the champion's on the same test cutoff by more
than ``mlflow.promotion_margin`` (in the metric's own units: ROC AUC, or normalized Gini for a
value model). A version registered under ``dvc exp run`` never does, nor any when
``mlflow.auto_promote`` is false: those wait for ``loyalty promote``. Every decision is one
sentence, logged and kept as tags (``promotion.*``) on the version and its run; a version that
takes ``champion``, by the pipeline or by hand, is also tagged ``promoted_*`` (by what, whom,
when, why, over which version).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime

#: ``promoted_by`` of a version the training pipeline promoted, and of one ``loyalty promote`` did.
BY_PIPELINE = "pipeline"
BY_HAND = "manual"
#: A gain within this of the margin is a tie (0.8141 - 0.8121 is 0.0020000000000000018).
_TIE = 1e-12


@dataclass(frozen=True)
class Standing:
    """A version's test score, and the champion's on the same test cutoff when there is one.

    ``champion_score`` is None when there is no champion, or when it could not be scored on
    this cutoff (it is then kept: nothing says the new version is better).
    """

    metric: str
    score: float
    test_cutoff: str
    champion_version: str | None = None
    champion_score: float | None = None

    @property
    def gain(self) -> float | None:
        """The score minus the champion's, when both are known."""
        return None if self.champion_score is None else self.score - self.champion_score


@dataclass(frozen=True)
class Decision:
    """Whether a new version takes ``champion``, and the one sentence that says why."""

    promote: bool
    outcome: str  # promoted | first | kept | not_comparable | experiment | manual_only
    reason: str
    standing: Standing
    margin: float

    def tags(self) -> dict[str, str]:
        """``promotion.*`` tags: the outcome, the sentence and the numbers behind it."""
        s = self.standing
        tags = {
            "promotion.decision": self.outcome,
            "promotion.reason": self.reason,
            "promotion.margin": repr(self.margin),
            "promotion.metric": s.metric,
        }
        if s.champion_version is not None:
            tags["promotion.champion_version"] = s.champion_version
        if s.champion_score is not None and s.gain is not None:
            tags[f"promotion.champion_{s.metric}"] = repr(s.champion_score)
            tags["promotion.gain"] = repr(s.gain)
        return tags


def decide(standing: Standing, margin: float, experiment: str | None, auto: bool) -> Decision:
    """Apply the promotion rule to a newly registered version.

    ``experiment`` is the DVC experiment's name under ``dvc exp run`` (never promotes), ``auto``
    is ``mlflow.auto_promote``. A gain equal to the margin (to float rounding) does not promote:
    the new version must be better by more than the noise the margin stands for.
    """
    s = standing
    versus = _versus(s, margin)
    if experiment is not None:
        return Decision(
            False,
            "experiment",
            f"DVC experiment {experiment}: registered as challenger, champion not touched "
            f"({versus})",
            s,
            margin,
        )
    if not auto:
        return Decision(
            False,
            "manual_only",
            f"mlflow.auto_promote is false: champion not touched, `loyalty promote` moves it "
            f"({versus})",
            s,
            margin,
        )
    if s.champion_version is None:
        return Decision(True, "first", f"new champion, there was none ({versus})", s, margin)
    if s.gain is None:
        return Decision(
            False,
            "not_comparable",
            f"champion stays v{s.champion_version}: it cannot be scored on test cutoff "
            f"{s.test_cutoff}",
            s,
            margin,
        )
    if s.gain - margin > _TIE:
        return Decision(True, "promoted", f"new champion: {versus}", s, margin)
    return Decision(False, "kept", f"champion stays v{s.champion_version}: {versus}", s, margin)


def _versus(s: Standing, margin: float) -> str:
    """``roc_auc 0.8150 vs 0.8120 of champion v3 (+0.0030, margin 0.002) on test cutoff C``."""
    if s.champion_version is None:
        return f"{s.metric} {s.score:.4f} on test cutoff {s.test_cutoff}"
    if s.champion_score is None or s.gain is None:
        return f"{s.metric} {s.score:.4f}, champion v{s.champion_version} not comparable"
    return (
        f"{s.metric} {s.score:.4f} vs {s.champion_score:.4f} of champion v{s.champion_version} "
        f"({s.gain:+.4f}, margin {margin:g}) on test cutoff {s.test_cutoff}"
    )


def promoted_tags(
    by: str, reason: str, previous: str | None, now: datetime | None = None
) -> dict[str, str]:
    """Tags of a version taking ``champion``: by what (``pipeline``, ``manual``), whom, when, why.

    ``promoted_over`` links each champion to the one it replaced (an audit trail: MLflow keeps
    no history of an alias). Kept apart from the ``promotion.*`` decision made at registration,
    which a later ``loyalty promote`` does not rewrite.
    """
    tags = {
        "promoted_by": by,
        "promoted_by_user": _user(),
        "promoted_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "promoted_reason": reason,
    }
    if previous is not None:
        tags["promoted_over"] = previous
    return tags


def _user() -> str:
    """Return the login name of whoever runs the command, or ``unknown``."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
