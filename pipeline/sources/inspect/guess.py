"""A guess and how sure it is: the unit every sniffer of ``loyalty inspect`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class Guess(Generic[T]):
    """A guessed value, its confidence and the evidence, in words a user can check."""

    value: T
    confidence: Confidence
    evidence: str

    def note(self) -> str:
        """Return the YAML comment of this guess: ``high: evidence``."""
        return f"{self.confidence}: {self.evidence}"


def confidence_of(share: float, high: float = 0.98, medium: float = 0.9) -> Confidence:
    """Confidence from the share of sampled values that agree with a guess."""
    if share >= high:
        return "high"
    return "medium" if share >= medium else "low"


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage for evidence text (never 100% unless all)."""
    if whole == 0:
        return "0%"
    share = 100 * part / whole
    if part != whole and share > 99.5:
        return ">99%"
    return f"{share:.0f}%"
