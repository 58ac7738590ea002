"""BTYD quantities as model features: P(alive) and expected orders in the target's horizon.

A BG/NBD model (:mod:`pipeline.modeling.btyd`) is fitted once, in ``train``, on the training
cutoffs' rows: each row's frequency, recency and age at its cutoff, which are pre-cutoff
history only (no label is used). Its four parameters ship in the model's ``features.json``
(``derived``), and :class:`BtydFeatures` turns any snapshot row into the two features with
them. So a customer's features depend only on that customer and the model, never on who else
is in the batch, and training, explain and scoring compute them with the same code
(:meth:`pipeline.modeling.artifacts.Predictor.derive`). Which targets get them is
``train.btyd_features`` (measured in ``docs/modeling.md``: they help churn, not repurchase).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.modeling import btyd

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
