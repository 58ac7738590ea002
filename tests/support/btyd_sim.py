"""Customers drawn from the BG/NBD and Gamma-Gamma stories, for the BTYD tests and benchmark.

The truth is known: each customer gets a purchase rate ``lambda ~ Gamma(r, scale 1/alpha)`` and
a dropout probability ``p ~ Beta(a, b)``; while active they buy as a Poisson process, and after
every repeat purchase (never the first) they drop out with probability ``p``. The history up to
``T`` is what the model sees; the purchases in ``(T, T + horizon]`` are the future it predicts.
Spend per purchase is ``Gamma(p, scale 1/nu)`` with ``nu ~ Gamma(q, scale 1/gamma)`` per
customer (Fader, Hardie & Lee 2005, "RFM and CLV"). With ``p_dropout`` every customer has that
one dropout probability instead (the BG/NBD limit ``a, b -> inf``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Simulated:
    """One simulated customer base: the observed history and the hidden future."""

    x: np.ndarray  # repeat purchases in (0, T]
    t_x: np.ndarray  # time of the last purchase (0 when x == 0)
    T: np.ndarray  # observed tenure
    future: np.ndarray  # purchases in (T, T + horizon]
    alive_at_T: np.ndarray  # True while the customer has not dropped out by T
    m: np.ndarray  # mean spend of the x repeat purchases (NaN when x == 0)


def simulate_bgnbd(
    n: int,
    r: float = 0.25,
    alpha: float = 4.0,
    a: float = 0.8,
    b: float = 2.5,
    *,
    T: np.ndarray | None = None,
    t_min: int = 30,
    t_max: int = 365,
    horizon: float = 0.0,
    whole_days: bool = False,
    spend: tuple[float, float, float] = (6.0, 4.0, 15.0),
    p_dropout: float | None = None,
    seed: int = 0,
) -> Simulated:
    """Simulate ``n`` customers; ``T`` defaults to whole days uniform on ``[t_min, t_max]``.

    ``whole_days`` rounds ``t_x`` to the nearest day (clipped to ``T``), as a daily export
    records it; purchases are simulated in continuous time either way. ``spend`` is the
    Gamma-Gamma ``(p, q, gamma)`` of the repeat purchases. ``p_dropout`` replaces the
    ``Beta(a, b)`` draw with one dropout probability for all (``a`` and ``b`` are then unused).
    """
    rng = np.random.default_rng(seed)
    if T is None:
        T = rng.integers(t_min, t_max + 1, size=n).astype(np.float64)
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    # A shape under one can draw rates that underflow to 0: such a customer never buys again.
    rate = np.maximum(rng.gamma(r, 1.0 / alpha, size=n), 1e-300)
    # No Beta draw for the limit, so the draws of a Beta population stay what they were.
    dropout = rng.beta(a, b, size=n) if p_dropout is None else np.full(n, float(p_dropout))
    end = T + horizon
    elapsed = np.zeros(n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    dropped_by_T = np.zeros(n, dtype=bool)
    # One pass per purchase occasion over the shrinking set of active customers.
    idx = np.arange(n)
    while idx.size:
        elapsed[idx] += rng.exponential(1.0, size=idx.size) / rate[idx]
        idx = idx[elapsed[idx] <= end[idx]]
        past = elapsed[idx] <= T[idx]
        x[idx[past]] += 1
        t_x[idx[past]] = elapsed[idx[past]]
        future[idx[~past]] += 1
        drops = rng.random(idx.size) < dropout[idx]
        dropped_by_T[idx[drops & past]] = True
        idx = idx[~drops]
    if whole_days:
        t_x = np.minimum(np.round(t_x), T)
    p, q, gamma = spend
    nu = rng.gamma(q, 1.0 / gamma, size=n)
    # The sum of x Gamma(p, scale 1/nu) purchases is Gamma(p * x, scale 1/nu).
    total = rng.gamma(np.where(x > 0, p * x, 1.0), 1.0 / nu)
    m = np.where(x > 0, total / np.maximum(x, 1.0), np.nan)
    return Simulated(x=x, t_x=t_x, T=T, future=future, alive_at_T=~dropped_by_T, m=m)
