"""BTYD quantities as model features: P(alive) and expected orders in the target's horizon.

In ``train``, a BG/NBD model (:mod:`pipeline.modeling.btyd`) is fitted **per cutoff** on that
cutoff's rows: each customer's frequency, recency and age at the cutoff, pre-cutoff history
only (no label is used), and gives that cutoff's rows their two features (:class:`CutoffFits`).
The test cutoff's fit, the latest, ships in the model's ``features.json`` (``derived``), like
the reference population of :mod:`pipeline.business`: scoring, explain and the report derive
the features of any snapshot row with those parameters
(:meth:`pipeline.modeling.artifacts.Predictor.derive`), so a scored customer's features depend
only on that customer and the model, never on who else is in the batch, and on the test cutoff
they are exactly the training ones. Which targets get them is ``train.btyd_features``
(measured in ``docs/modeling.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from pipeline.modeling import btyd

logger = logging.getLogger(__name__)

P_ALIVE = "btyd_p_alive"
EXPECTED_ORDERS = "btyd_expected_orders"
#: The derived feature columns, in model order (after the snapshot's own features).
NAMES = (P_ALIVE, EXPECTED_ORDERS)


@dataclass(frozen=True)
class BtydFeatures:
    """A fitted BG/NBD model and the horizon of its expected-orders feature."""

    model: btyd.BgNbd
    horizon_days: int

    @classmethod
    def fit(cls, train_rows: pd.DataFrame, horizon_days: int) -> BtydFeatures:
        """Fit BG/NBD on the training rows' pre-cutoff history (may not converge: check)."""
        x, t_x, age, _ = btyd.inputs_from_snapshot(train_rows)
        return cls(btyd.fit_bgnbd(x, t_x, age), int(horizon_days))

    @property
    def usable(self) -> bool:
        """Whether the fit converged (else the features are not added)."""
        return bool(self.model.converged)

    def add(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with the two features (NaN where a row has no usable history)."""
        x, t_x, age, _ = btyd.inputs_from_snapshot(frame)
        return frame.assign(
            **{
                P_ALIVE: btyd.probability_alive(self.model, x, t_x, age),
                EXPECTED_ORDERS: btyd.expected_purchases(
                    self.model, float(self.horizon_days), x, t_x, age
                ),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``derived`` in ``features.json``)."""
        return {"bgnbd": self.model.to_dict(), "horizon_days": self.horizon_days}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BtydFeatures:
        """Read the ``derived`` block of ``features.json``."""
        return cls(btyd.BgNbd.from_dict(raw["bgnbd"]), int(raw["horizon_days"]))


@dataclass(frozen=True)
class CutoffFits:
    """One BG/NBD fit per panel cutoff; the latest (the test cutoff) ships with the model."""

    fits: Mapping[pd.Timestamp, BtydFeatures]

    @classmethod
    def fit(cls, rows: pd.DataFrame, horizon_days: int) -> CutoffFits:
        """Fit each cutoff of ``rows`` on that cutoff's rows alone."""
        return cls(
            {
                cast(pd.Timestamp, cutoff): BtydFeatures.fit(group, horizon_days)
                for cutoff, group in rows.groupby("cutoff", sort=True)
            }
        )

    @property
    def shipped(self) -> BtydFeatures:
        """The latest cutoff's fit: what scoring uses."""
        return self.fits[max(self.fits)]

    def add(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with each row's features from its cutoff's fit (NaN if it failed)."""
        out = frame.assign(**{name: np.nan for name in NAMES})
        for cutoff, fitted in self.fits.items():
            rows = (frame["cutoff"] == cutoff).to_numpy()
            if fitted.usable and rows.any():
                values = fitted.add(frame.loc[rows])
                for name in NAMES:
                    out.loc[rows, name] = values[name].to_numpy()
        return out

    def failed(self) -> dict[str, str]:
        """Return the message of each cutoff whose fit did not converge."""
        return {
            c.date().isoformat(): f.model.message
            for c, f in sorted(self.fits.items())
            if not f.usable
        }

    def messages(self) -> dict[str, str]:
        """Each cutoff's fit message (JSON-ready; records what converged and what did not)."""
        return {c.date().isoformat(): f.model.message for c, f in sorted(self.fits.items())}


@dataclass(frozen=True)
class BtydSpend:
    """BTYD expected spend in a horizon (BG/NBD x Gamma-Gamma), capped: a value model's offset.

    A value model boosted from it adds ``log(spend + floor)`` to its raw margin. Fitted per
    cutoff in training; the test cutoff's fit ships in ``features.json`` (``value_offset``,
    kind ``btyd``), as the BTYD features do.
    """

    bgnbd: btyd.BgNbd
    gamma_gamma: btyd.GammaGamma
    horizon_days: int
    cap: float
    floor: float = 0.0

    @classmethod
    def fit(cls, rows: pd.DataFrame, horizon_days: int, cap: float) -> BtydSpend:
        """Fit both models on ``rows`` (one cutoff's population; order values capped)."""
        x, t_x, age, spend = btyd.inputs_from_snapshot(rows)
        return cls(
            btyd.fit_bgnbd(x, t_x, age),
            btyd.fit_gamma_gamma(x, np.minimum(spend, cap)),
            int(horizon_days),
            float(cap),
        )

    @property
    def usable(self) -> bool:
        """Whether both fits converged."""
        return bool(self.bgnbd.converged and self.gamma_gamma.converged)

    @property
    def message(self) -> str:
        """One line: both fits' messages."""
        return f"{self.bgnbd.message}; {self.gamma_gamma.message}"

    def spend(self, frame: pd.DataFrame) -> np.ndarray:
        """Return each row's expected spend in the horizon, capped (0 without a history)."""
        x, t_x, age, spend = btyd.inputs_from_snapshot(frame)
        expected = btyd.expected_spend(
            self.bgnbd,
            self.gamma_gamma,
            float(self.horizon_days),
            x,
            t_x,
            age,
            np.minimum(spend, self.cap),
        )
        return np.minimum(np.nan_to_num(expected, nan=0.0, posinf=self.cap), self.cap)

    def log_offset(self, frame: pd.DataFrame) -> np.ndarray:
        """Return ``log(spend + floor)``, the starting margin of each row."""
        return np.log(self.spend(frame) + self.floor)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``value_offset`` in ``features.json``)."""
        return {
            "kind": "btyd",
            "bgnbd": self.bgnbd.to_dict(),
            "gamma_gamma": self.gamma_gamma.to_dict(),
            "horizon_days": self.horizon_days,
            "cap": self.cap if np.isfinite(self.cap) else None,
            "floor": self.floor,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BtydSpend:
        """Read a ``value_offset`` block of kind ``btyd``."""
        cap = raw.get("cap")
        return cls(
            btyd.BgNbd.from_dict(raw["bgnbd"]),
            btyd.GammaGamma.from_dict(raw["gamma_gamma"]),
            int(raw["horizon_days"]),
            np.inf if cap is None else float(cap),
            float(raw["floor"]),
        )
