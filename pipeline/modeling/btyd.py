"""Buy 'til you die models: BG/NBD for purchase counts, Gamma-Gamma for spend per purchase.

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while active, a
  customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; after each repeat
  purchase they drop out with probability ``p ~ Beta(a, b)``. A customer's history is
  ``x`` (repeat purchases), ``t_x`` (time of the last purchase, from the first) and ``T`` (time
  from the first purchase to the cutoff), all in days.
- Its limit ``a, b -> inf`` with ``a / (a + b) -> p``: every customer drops out with the same
  probability ``p`` after each repeat purchase. When the 4-parameter fit runs off to this limit,
  :func:`fit_bgnbd` fits the 3-parameter limit model (``r, alpha, p``) instead; it is a
  :class:`BgNbd` with ``p_dropout`` set and ``a``, ``b`` None, and every prediction handles it.
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): spend per purchase is
  ``Gamma(p, nu)`` with ``nu ~ Gamma(q, gamma)`` across customers, independent of the purchase
  process; it is fitted on customers with ``x >= 1`` and a positive mean spend ``m``.

Fits maximise the closed-form log-likelihoods with L-BFGS-B on log parameters and analytic
gradients. BG/NBD runs over the distinct histories weighted by their counts (whole-day data
collapse a million customers to a few hundred thousand rows), with the terms of ``x`` alone
computed once per distinct ``x``; that second saving is the one left for the snapshot, whose
days are fractional (orders carry a time of day). A fit that cannot be trusted is returned with
``converged=False`` and a one-line ``message``; it never raises for that, so the caller decides
on a fallback.

Invalid inputs are handled the same way everywhere: a history with a NaN, a negative ``x`` or
``T``, or ``t_x`` outside ``[0, T]`` is dropped from a fit (counted in the message) and gets NaN
from every prediction. ``t_x`` is not read when ``x == 0`` (the likelihood does not use it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, logit

from pipeline.errors import InputError

Array = NDArray[np.float64]
Params4 = tuple[float, float, float, float]

MIN_CUSTOMERS = 20
# Parameters are optimised as log(value / scale) inside +-LOG_BOUND, with alpha scaled by the
# mean T and gamma by the median m, so the limits are unit-free. A fit outside +-PLAUSIBLE (a
# factor 1e4 from the scale) has run off to a degenerate limit of the likelihood (no
# heterogeneity, no dropout: r and alpha, or p and q, growing together without bound) and is
# reported as failed; the optimiser's own box is wider so that it does not stop on it first.
LOG_BOUND = 12.0
PLAUSIBLE = float(np.log(1e4))
# a and b running off together collapse Beta(a, b) to a point: the fit is taken to that limit
# when the Beta's sd is under this share of the smaller of p and 1 - p (about min(a, b) > 100).
# One of them alone running off is the no-dropout (b) or drop-at-once (a) limit: a failure.
COLLAPSED_SPREAD = 0.1
# The limit model replaces the 4-parameter fit only if the latter is not better by more than a
# likelihood-ratio test at 5% with one degree of freedom would notice (3.84 / 2 in log-lik).
LIMIT_SLACK = 1.92
_NEAR = 1e-5  # see _euler_tail
SNAPSHOT_COLUMNS = ("lifetime_orders", "tenure_days", "days_since_last_order", "avg_order_value")


@dataclass(frozen=True)
class BgNbd:
    """A fitted BG/NBD model (days); check ``converged`` before using the parameters.

    Either the 4-parameter model (``a`` and ``b`` set, ``p_dropout`` None) or its limit with one
    dropout probability for everybody (``p_dropout`` set, ``a`` and ``b`` None: they are
    infinite, and None keeps the saved form strict JSON).
    """

    r: float
    alpha: float
    a: float | None
    b: float | None
    converged: bool
    message: str
    log_likelihood: float
    n_customers: int
    p_dropout: float | None = None

    def __post_init__(self) -> None:
        limit = self.p_dropout is not None
        if (self.a is None) != limit or (self.b is None) != limit:
            raise ValueError(
                "BgNbd takes a and b (Beta dropout) or p_dropout (the limit), not both or "
                f"neither: a={self.a}, b={self.b}, p_dropout={self.p_dropout}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Rebuild from :meth:`to_dict`'s output (extra keys are an error, as is a missing one).

        ``p_dropout`` may be missing (dicts saved before the limit model existed).
        """
        return cls(**_typed_fields(cls, d))


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model; check ``converged`` before using the parameters."""

    p: float
    q: float
    gamma: float
    converged: bool
    message: str
    n_customers: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Rebuild from :meth:`to_dict`'s output (extra keys are an error, as is a missing one)."""
        return cls(**_typed_fields(cls, d))


def _typed_fields(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    kinds = {f.name: str(f.type) for f in fields(cls)}
    required = {f.name for f in fields(cls) if f.default is MISSING}
    if not required <= set(d) <= set(kinds):
        raise ValueError(
            f"{cls.__name__}.from_dict: expected keys {sorted(kinds)}, got {sorted(d)}"
        )
    cast = {"float": float, "bool": bool, "str": str, "int": int}
    out = {}
    for name, value in d.items():
        kind, optional = kinds[name].removesuffix(" | None"), kinds[name].endswith(" | None")
        out[name] = None if optional and value is None else cast[kind](value)
    return out


# --- inputs ---------------------------------------------------------------------------------


def _histories(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[Array, Array, Array, Array]:
    """Broadcast float arrays and the mask of valid histories; ``t_x`` is 0 where ``x == 0``."""
    xs, ts, Ts = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, t_x, T)))
    ts = np.where(xs == 0, 0.0, ts)
    with np.errstate(invalid="ignore"):
        valid = (
            np.isfinite(xs) & np.isfinite(ts) & np.isfinite(Ts)
            & (xs >= 0) & (ts >= 0) & (ts <= Ts)
        )  # fmt: skip
    return xs, ts, Ts, valid


def inputs_from_snapshot(frame: pd.DataFrame) -> tuple[Array, Array, Array, Array]:
    """Return ``x, t_x, T, m`` of each snapshot row (:mod:`pipeline.features.rfm` columns).

    ``x = lifetime_orders - 1``, ``T = tenure_days``, ``t_x = T - days_since_last_order``
    clipped to ``[0, T]``. A row without an order before the cutoff, or with a missing or
    negative tenure or recency, gets NaN in all four. ``m = avg_order_value`` is the mean over
    *all* orders: the textbook Gamma-Gamma uses the mean of the repeat purchases only, which
    the snapshot does not have; the first order is one of ``x + 1`` in the mean, so it weighs
    less as ``x`` grows. ``m`` is NaN when it is missing or not positive (no usable spend), and
    the spend model then gives the population mean.
    """
    missing = [c for c in SNAPSHOT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"snapshot has no column(s) {', '.join(missing)}; BTYD inputs need them")
    orders, tenure, since, aov = (
        frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in SNAPSHOT_COLUMNS
    )
    with np.errstate(invalid="ignore"):
        ok = (orders >= 1) & (tenure >= 0) & (since >= 0)
        x = np.where(ok, orders - 1.0, np.nan)
        T = np.where(ok, tenure, np.nan)
        # Recency is measured from the cutoff; a float error can put it a hair past the tenure.
        t_x = np.where(ok, np.clip(tenure - since, 0.0, tenure), np.nan)
        t_x = np.where(x == 0, 0.0, t_x)
        m = np.where(ok & (aov > 0), aov, np.nan)
    return x, t_x, T, m


def _codes(values: Array) -> tuple[Array, NDArray[np.int64]]:
    levels, inverse = np.unique(values, return_inverse=True)
    return levels, inverse.reshape(-1).astype(np.int64)


def _failure_reason(res: Any, theta: Array, ll: float) -> str | None:
    if not res.success:
        return f"optimiser stopped without converging ({res.message}) after {res.nit} iterations"
    if not (np.all(np.isfinite(theta)) and np.isfinite(ll)):
        return "non-finite parameters or log-likelihood"
    return None


def _implausible(names: tuple[str, ...], values: Array, theta: Array, limit: str) -> str | None:
    hit = [
        f"{n} = {v:.3g}"
        for n, v, th in zip(names, values, theta, strict=True)
        if abs(th) > PLAUSIBLE
    ]
    if hit:
        return (
            f"{', '.join(hit)} outside 1e-4 to 1e4 times the scale: the likelihood runs off to "
            f"a degenerate limit ({limit})"
        )
    return None


# --- BG/NBD ---------------------------------------------------------------------------------


class _BgNbdData:
    """Distinct histories with their counts, as codes into the distinct x, t_x and T.

    Terms of x alone are computed once per distinct x, and logs of ``alpha + T`` once per
    distinct T, so an evaluation costs a handful of passes over the distinct histories.
    """

    def __init__(self, x: Array, t_x: Array, T: Array) -> None:
        self.ux, ix = _codes(x)
        self.ut, it = _codes(t_x)
        self.uT, iT = _codes(T)
        if self.ux.size * self.ut.size * self.uT.size < 2**62:
            key = (ix * self.ut.size + it) * self.uT.size + iT  # one int64 per history
            _, first, counts = np.unique(key, return_index=True, return_counts=True)
        else:
            stacked = np.stack([ix, it, iT], axis=1)
            _, first, counts = np.unique(stacked, axis=0, return_index=True, return_counts=True)
        self.rows = int(first.size)
        self.w = counts.astype(np.float64)
        self.n = float(self.w.sum())
        self.ix, self.it, self.iT = ix[first], it[first], iT[first]
        self.wx = np.bincount(self.ix, weights=self.w, minlength=self.ux.size)
        self.xr = self.ux[self.ix]
        self.scale = float(np.mean(T)) or 1.0  # alpha's unit

    def _common(self, r: float, alpha: float, odds_x: Array, d: Array) -> tuple[float, Array]:
        """Log-likelihood, its derivatives in r and alpha, and the dropped-out weight per x.

        ``ln L = A1 + D + L1 + log(1 + exp(delta))`` (eq. 6 of the paper, the "alive at T" and
        "dropped out at t_x" terms factored), with ``A1 = lnG(r + x) - lnG(r) + r ln alpha``,
        ``L1 = -(r + x) ln(alpha + T)`` and ``delta = O - (r + x) ln((alpha + t_x) / (alpha +
        T))``, the log-odds of having dropped out. The dropout model gives, per distinct x,
        ``d`` (D: the log-probability of x repeat purchases without dropping out) and ``odds_x``
        (O, -inf when ``x == 0``); the returned weights are what its own gradient needs.
        """
        ux, ix, w, wx, n = self.ux, self.ix, self.w, self.wx, self.n
        rx = r + ux
        rxr = r + self.xr
        log_aT = np.log(alpha + self.uT)[self.iT]
        lat = np.log(alpha + self.ut)[self.it] - log_aT
        delta = odds_x[ix] - rxr * lat
        w2 = w * expit(delta)  # count-weighted share of "dropped out at t_x"
        a1 = gammaln(rx) - gammaln(r) + r * np.log(alpha)
        ll = wx @ (a1 + d) - w @ (rxr * log_aT) + w @ np.logaddexp(0.0, delta)
        inv_aT = (1.0 / (alpha + self.uT))[self.iT]
        inv_at = (1.0 / (alpha + self.ut))[self.it]
        g_r = wx @ (digamma(rx) - digamma(r) + np.log(alpha)) - w @ log_aT - w2 @ lat
        g_alpha = n * r / alpha - w @ (rxr * inv_aT) - w2 @ (rxr * (inv_at - inv_aT))
        w2x = np.bincount(ix, weights=w2, minlength=ux.size)
        return float(ll), np.array([g_r * r, g_alpha * alpha, *w2x])

    def nll(self, theta: Array) -> tuple[float, Array]:
        """Mean negative log-likelihood and its gradient in ``theta = log(params / scale)``.

        Dropout ``p ~ Beta(a, b)``: ``D = ln B(a, b + x) - ln B(a, b)`` and
        ``O = ln a - ln(b + x - 1)`` (see :meth:`_common`).
        """
        r, alpha, a, b = np.exp(theta) * np.array([1.0, self.scale, 1.0, 1.0])
        ux = self.ux
        bx1 = np.where(ux > 0, b + ux - 1.0, 1.0)
        odds_x = np.where(ux > 0, np.log(a) - np.log(bx1), -np.inf)
        ll, g = self._common(r, alpha, odds_x, betaln(a, b + ux) - betaln(a, b))
        w2x = g[2:]
        psi_ab, psi_abx = digamma(a + b), digamma(a + b + ux)
        g_a = self.wx @ (psi_ab - psi_abx) + w2x.sum() / a
        g_b = self.wx @ (digamma(b + ux) - psi_abx - digamma(b) + psi_ab) - w2x @ (1.0 / bx1)
        grad = np.array([g[0], g[1], g_a * a, g_b * b])
        return -ll / self.n, -grad / self.n

    def nll_limit(self, theta: Array) -> tuple[float, Array]:
        """Return :meth:`nll` of the limit ``a, b -> inf`` and its gradient.

        ``theta = (log r, log(alpha / scale), logit p)``; one dropout probability ``p``:
        ``D = x ln(1 - p)`` and ``O = ln(p / (1 - p))``.
        """
        r, alpha = np.exp(theta[:2]) * np.array([1.0, self.scale])
        lo = float(theta[2])
        ux = self.ux
        odds_x = np.where(ux > 0, lo, -np.inf)
        ll, g = self._common(r, alpha, odds_x, -ux * np.logaddexp(0.0, lo))  # ln(1-p) exact
        g_lo = g[2:].sum() - float(expit(lo)) * (self.wx @ ux)
        return -ll / self.n, -np.array([g[0], g[1], g_lo]) / self.n


def _minimise(fun: Any, theta0: Array) -> Any:
    theta0 = np.clip(theta0, -LOG_BOUND + 1, LOG_BOUND - 1)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * theta0.size,
            options={"maxiter": 1000, "ftol": 1e-11, "gtol": 1e-7},
        )


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> BgNbd:
    """Fit BG/NBD by maximum likelihood; never raises for a fit that fails (see ``converged``).

    Fails (``converged=False``, NaN parameters where no optimisation ran) with fewer than
    :data:`MIN_CUSTOMERS` valid histories, no repeat buyer, an optimiser that does not report
    success, non-finite results, or a parameter outside the plausible range (see
    :data:`PLAUSIBLE`). The one exception: when ``a`` and ``b`` run off together (see
    :data:`COLLAPSED_SPREAD`) with ``r`` and ``alpha`` plausible, whether the optimiser then
    reports success or gives up on the flat ridge, the one-dropout-probability limit is fitted
    instead and returned as converged (``p_dropout`` set) if it converges to plausible
    parameters and fits as well (:data:`LIMIT_SLACK`); if not, the failure names both attempts.
    """
    xs, ts, Ts, valid = _histories(x, t_x, T)
    xs, ts, Ts = xs.ravel(), ts.ravel(), Ts.ravel()
    dropped = int(valid.size - valid.sum())
    note = f" ({dropped:,} invalid rows dropped)" if dropped else ""
    xs, ts, Ts = xs[valid.ravel()], ts[valid.ravel()], Ts[valid.ravel()]
    n = int(xs.size)

    def failed(why: str, params: Params4 = (np.nan,) * 4, ll: float = np.nan) -> BgNbd:
        return BgNbd(*params, False, f"BG/NBD fit failed: {why}{note}", ll, n)

    if n < MIN_CUSTOMERS:
        return failed(f"too few customers ({n} valid histories, at least {MIN_CUSTOMERS} needed)")
    if not np.any(xs > 0):
        return failed("no repeat buyer (all x == 0): the purchase and dropout rates are unknown")
    data = _BgNbdData(xs, ts, Ts)
    # Start from r = 1 and alpha matching the mean purchase rate, a = b = 1 (uniform dropout).
    rate = max(float(np.mean(xs) / np.mean(Ts)), 1e-6) if np.mean(Ts) > 0 else 1.0
    res = _minimise(data.nll, np.log([1.0, 1.0 / rate / data.scale, 1.0, 1.0]))
    theta = np.asarray(res.x, dtype=np.float64)
    r, alpha, a, b = (float(v) for v in np.exp(theta) * np.array([1.0, data.scale, 1.0, 1.0]))
    ll = float(-res.fun * data.n)
    names = ("r", "alpha", "a", "b")
    why = _failure_reason(res, theta, ll) or _implausible(
        names, np.array([r, alpha, a, b]), theta, "no spread in purchase rates, or no dropout"
    )
    if why is None:
        message = (
            f"BG/NBD converged in {res.nit} iterations on {data.rows:,} distinct histories "
            f"of {n:,} customers{note}"
        )
        return BgNbd(r, alpha, a, b, True, message, ll, n)
    # On the ridge towards the limit the likelihood is flat, and L-BFGS-B may give up there
    # (ABNORMAL line search) rather than report success: that is the same run-off.
    finite = bool(np.all(np.isfinite(theta)) and np.isfinite(ll))
    if not finite or np.any(np.abs(theta[:2]) > PLAUSIBLE) or not _collapsed(a, b):
        return failed(why, (r, alpha, a, b), ll)
    limit = _fit_limit(data, (r, alpha, a / (a + b)), ll)
    if isinstance(limit, str):
        return failed(
            f"{why}; the one-dropout-probability limit (a, b -> inf) fitted instead failed too: "
            f"{limit}",
            (r, alpha, a, b),
            ll,
        )
    (r1, alpha1, p), ll1 = limit
    message = (
        f"BG/NBD: dropout heterogeneity runs to its limit (a = {a:.3g}, b = {b:.3g} -> inf, "
        f"a/(a+b) = {a / (a + b):.3g}); fitted the one-dropout-probability limit, "
        f"p = {p:.3g} (r = {r1:.3g}, alpha = {alpha1:.3g}) on {n:,} customers{note}"
    )
    return BgNbd(r1, alpha1, None, None, True, message, ll1, n, p_dropout=p)


def _collapsed(a: float, b: float) -> bool:
    """Whether Beta(a, b) is a point for practical purposes (see :data:`COLLAPSED_SPREAD`)."""
    mean = a / (a + b)
    sd = np.sqrt(mean * (1.0 - mean) / (a + b + 1.0))
    return bool(sd < COLLAPSED_SPREAD * min(mean, 1.0 - mean))


def _fit_limit(
    data: _BgNbdData, start: tuple[float, float, float], ll_beta: float
) -> tuple[tuple[float, float, float], float] | str:
    """Fit the limit ``(r, alpha, p)`` from ``start``: parameters and log-likelihood, or why not.

    ``p`` is plausible while its odds are within 1e-4 to 1e4 (``p -> 0`` is no dropout).
    """
    r0, alpha0, p0 = start
    res = _minimise(data.nll_limit, np.array([np.log(r0), np.log(alpha0 / data.scale), logit(p0)]))
    theta = np.asarray(res.x, dtype=np.float64)
    r, alpha = (float(v) for v in np.exp(theta[:2]) * np.array([1.0, data.scale]))
    p = float(expit(theta[2]))
    ll = float(-res.fun * data.n)
    why = _failure_reason(res, theta, ll) or _implausible(
        ("r", "alpha"), np.array([r, alpha]), theta[:2], "no spread in purchase rates"
    )
    if why:
        return why
    if abs(theta[2]) > PLAUSIBLE:
        return f"p = {p:.3g} has odds outside 1e-4 to 1e4 (no dropout, or dropout at once)"
    if ll < ll_beta - LIMIT_SLACK:
        return (
            f"it fits worse than the 4-parameter run-off (log-likelihood {ll:.6g} against "
            f"{ll_beta:.6g}), so that is not where the fit was heading"
        )
    return (r, alpha, p), ll


def _beta(model: BgNbd) -> tuple[float, float]:
    if model.a is None or model.b is None:  # ruled out by BgNbd.__post_init__ unless a limit
        raise ValueError("a BG/NBD limit model (p_dropout set) has no a and b")
    return model.a, model.b


def _log_dropout_odds(model: BgNbd, x: Array, t_x: Array, T: Array) -> Array:
    """Log of ``o * ((alpha + T) / (alpha + t_x)) ** (r + x)``; -inf when x == 0.

    ``o = a / (b + x - 1)``, or ``p / (1 - p)`` in the limit (its value as ``a, b -> inf``).
    """
    r, alpha = model.r, model.alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        if model.p_dropout is None:
            a, b = _beta(model)
            o = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0)
        else:
            o = logit(model.p_dropout)
        odds = o + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, odds, -np.inf)


def probability_alive(model: BgNbd, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """P(still active at T | x, t_x, T); 1 when x == 0, since dropout follows a repeat purchase.

    ``1 / (1 + (x > 0) a / (b + x - 1) ((alpha + T) / (alpha + t_x)) ** (r + x))``, evaluated
    as a logistic of the log-odds so that large ``x`` cannot overflow; ``a / (b + x - 1)`` is
    ``p / (1 - p)`` in the limit model.
    """
    xs, ts, Ts, valid = _histories(x, t_x, T)
    p_alive = expit(-_log_dropout_odds(model, xs, ts, Ts))
    return np.where(valid, p_alive, np.nan)


def probability_no_purchase(
    model: BgNbd, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Array:
    """P(no purchase in (T, T + t] | x, t_x, T).

    A customer who has dropped out buys nothing; one still active buys nothing with probability
    ``E[exp(-lambda t)]`` under the posterior ``lambda ~ Gamma(r + x, alpha + T)``, so
    ``(1 - P(alive)) + P(alive) ((alpha + T) / (alpha + T + t)) ** (r + x)``.
    """
    t = _horizon(t)
    xs, ts, Ts, valid = _histories(x, t_x, T)
    p_alive = expit(-_log_dropout_odds(model, xs, ts, Ts))
    with np.errstate(invalid="ignore"):
        none_if_alive = np.exp(-(model.r + xs) * np.log1p(t / (model.alpha + Ts)))
    return np.where(valid, 1.0 - p_alive + p_alive * none_if_alive, np.nan)


def expected_purchases(model: BgNbd, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Conditional expected purchases in (T, T + t] given the history (eq. 10 of the paper).

    ``P(alive) (a + b + x - 1) / (a - 1) [1 - u ** (r + x) 2F1(r + x, b + x; a + b + x - 1; z)]``
    with ``u = (alpha + T) / (alpha + T + t)`` and ``z = 1 - u``; see :func:`_euler_tail` for
    how the 2F1 term is kept finite. In the limit model the 2F1 is ``(1 - (1 - p) z) ** -(r +
    x)``, so ``P(alive) / p [1 - ((alpha + T) / (alpha + T + p t)) ** (r + x)]``: an active
    customer with rate lambda is still active at s with probability ``exp(-lambda p s)``.
    """
    t = _horizon(t)
    xs, ts, Ts, valid = _histories(x, t_x, T)
    p_alive = expit(-_log_dropout_odds(model, xs, ts, Ts))
    if model.p_dropout is not None:
        p = model.p_dropout
        with np.errstate(invalid="ignore"):
            bought = -np.expm1(-(model.r + xs) * np.log1p(p * t / (model.alpha + Ts)))
        return np.where(valid, p_alive * bought / p, np.nan)
    a, b = _beta(model)
    # Eq. 10 has a removable singularity at a == 1 (0 / 0); a nudge of 1e-6 moves E by ~1e-6.
    a = a if abs(a - 1.0) > 1e-6 else 1.0 + np.copysign(1e-6, a - 1.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        tail = _euler_tail(model.r, model.alpha, a, b, t, xs, Ts)
        out = p_alive * (a + b + xs - 1.0) / (a - 1.0) * (1.0 - tail)
    return np.where(valid, out, np.nan)


def _euler_tail(r: float, alpha: float, a: float, b: float, t: float, x: Array, T: Array) -> Array:
    """``u ** (r + x) 2F1(r + x, b + x; c; z)``, ``c = a + b + x - 1``, in a form that stays finite.

    Euler's transformation gives ``u ** (a - 1) 2F1(a + b - 1 - r, a - 1; c; z)``: the first two
    arguments no longer grow with ``x``, so heavy buyers and long horizons (``z`` near 1), where
    the direct form multiplies a huge 2F1 by a tiny power, stay finite (checked against 40-digit
    mpmath: relative error under 1e-9 over r, a in [0.05, 10], x up to 400, t up to 1e5 days).
    With ``a`` in the hundreds (near the limit ``a, b -> inf``) the same happens to Euler's form
    (``0 * inf``), and the direct form, finite there unless ``x`` is large too, takes over (both
    within 1e-8 of a quadrature over the posterior of ``p`` wherever finite, a, b up to 1e6).
    SciPy's ``hyp2f1`` is unreliable when ``c - A - B`` (here ``+-(x + r - a + 1)``) is within
    ~1e-9 of an integer and ``z`` is near 1 (inf, NaN, or wrong in the third digit), which
    happens for every ``x`` at once when ``r - a`` is a whole number. Those rows are evaluated
    with ``r`` moved so that ``c - A - B`` sits ``_NEAR`` either side of the integer, and
    interpolated linearly (error of order ``_NEAR ** 2``; SciPy is accurate to ~1e-9 at that
    distance).
    """
    x, T = np.broadcast_arrays(x, T)
    h = _tail_at(r, alpha, a, b, t, x, T)
    d = x + r - a + 1.0
    off = d - np.round(d)
    near = np.abs(off) < _NEAR
    if np.any(near):
        o, xn, Tn = off[near], x[near], T[near]
        below = _tail_at(r - o - _NEAR, alpha, a, b, t, xn, Tn)
        above = _tail_at(r - o + _NEAR, alpha, a, b, t, xn, Tn)
        h = h.copy()
        h[near] = below + (above - below) * (o + _NEAR) / (2.0 * _NEAR)
    return h


def _tail_at(
    r: float | Array, alpha: float, a: float, b: float, t: float, x: Array, T: Array
) -> Array:
    """:func:`_euler_tail` without the care for integers: Euler's form, else the direct one."""
    u = (alpha + T) / (alpha + T + t)
    z = t / (alpha + T + t)  # 1 - u without the cancellation
    c = a + b + x - 1.0
    h = np.asarray(u ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z), dtype=np.float64)
    lost = ~np.isfinite(h)
    if np.any(lost):
        rl = np.broadcast_to(r, h.shape)[lost]
        h = h.copy()
        h[lost] = u[lost] ** (rl + x[lost]) * hyp2f1(rl + x[lost], b + x[lost], c[lost], z[lost])
    return h


def _horizon(t: float) -> float:
    t = float(t)
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"horizon t must be a finite number of days >= 0, got {t}")
    return t


# --- Gamma-Gamma ----------------------------------------------------------------------------


class _GammaGammaData:
    """Repeat buyers' (x, m), with x-only terms computed once per distinct x."""

    def __init__(self, x: Array, m: Array) -> None:
        self.n = float(x.size)
        self.x = x
        self.ux, self.ix = _codes(x)
        self.wx = np.bincount(self.ix, weights=None, minlength=self.ux.size).astype(np.float64)
        self.log_ux = np.log(self.ux)
        self.sum_log_m = float(np.sum(np.log(m)))
        self.sum_x_log_m = float(x @ np.log(m))
        self.mx = m * x
        # gamma's unit, in the currency of the data; the median, as a heavy tail drags the mean.
        self.scale = float(np.median(m))

    def nll(self, theta: Array) -> tuple[float, Array]:
        """Mean negative log-likelihood and its gradient in ``theta = log(params / scale)``.

        ``f(m | x) = Gamma(px + q) / (Gamma(px) Gamma(q)) gamma^q m^(px - 1) x^(px)
        / (gamma + m x)^(px + q)``, the density of the mean of ``x`` purchases.
        """
        p, q, gamma = np.exp(theta) * np.array([1.0, 1.0, self.scale])
        ux, wx, n = self.ux, self.wx, self.n
        pxq = p * ux + q
        log_gm = np.log(gamma + self.mx)
        ll = (
            wx @ (gammaln(pxq) - gammaln(p * ux) + p * ux * self.log_ux)
            + n * (q * np.log(gamma) - gammaln(q))
            + p * self.sum_x_log_m
            - self.sum_log_m
            - float((p * self.x + q) @ log_gm)
        )
        psi_pxq = digamma(pxq)
        g_p = (
            wx @ (ux * (psi_pxq - digamma(p * ux) + self.log_ux))
            + self.sum_x_log_m
            - float(self.x @ log_gm)
        )
        g_q = wx @ psi_pxq - n * digamma(q) + n * np.log(gamma) - float(log_gm.sum())
        g_gamma = n * q / gamma - float(np.sum((p * self.x + q) / (gamma + self.mx)))
        grad = np.array([g_p * p, g_q * q, g_gamma * gamma])
        return float(-ll / n), -grad / n


def fit_gamma_gamma(x: ArrayLike, m: ArrayLike) -> GammaGamma:
    """Fit Gamma-Gamma on the rows with a finite ``x >= 1`` and a finite ``m > 0``.

    ``x`` counts the purchases that ``m`` averages (see :func:`inputs_from_snapshot` for what
    the snapshot's ``m`` averages). Never raises for a fit that fails: fewer than
    :data:`MIN_CUSTOMERS` usable rows, an optimiser that does not report success, non-finite
    results, a parameter outside the plausible range, or ``q <= 1`` (no population mean spend)
    give ``converged=False`` and a one-line ``message``.
    """
    xs, ms = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64))
    xs, ms = xs.ravel(), ms.ravel()
    with np.errstate(invalid="ignore"):
        use = np.isfinite(xs) & np.isfinite(ms) & (xs >= 1) & (ms > 0)
    xs, ms = xs[use], ms[use]
    n = int(xs.size)

    def failed(why: str, p: float = np.nan, q: float = np.nan, g: float = np.nan) -> GammaGamma:
        return GammaGamma(p, q, g, False, f"Gamma-Gamma fit failed: {why}", n)

    if n < MIN_CUSTOMERS:
        return failed(
            f"too few repeat buyers with a positive mean spend ({n}, at least {MIN_CUSTOMERS})"
        )
    data = _GammaGammaData(xs, ms)
    # p = 1, q = 2, gamma = median m: the population mean p gamma / (q - 1) starts at median m.
    res = _minimise(data.nll, np.log([1.0, 2.0, 1.0]))
    theta = np.asarray(res.x, dtype=np.float64)
    p, q, gamma = (float(v) for v in np.exp(theta) * np.array([1.0, 1.0, data.scale]))
    why = _failure_reason(res, theta, float(-res.fun)) or _implausible(
        ("p", "q", "gamma"), np.array([p, q, gamma]), theta, "no spread in spend"
    )
    if why is None and q <= 1.0:
        why = f"q = {q:.3g} <= 1: the population mean spend p gamma / (q - 1) does not exist"
    if why:
        return failed(why, p, q, gamma)
    return GammaGamma(
        p, q, gamma, True, f"Gamma-Gamma converged in {res.nit} iterations on {n:,} customers", n
    )


def expected_spend_per_purchase(model: GammaGamma, x: ArrayLike, m: ArrayLike) -> Array:
    """Conditional mean spend per purchase, ``p (gamma + x m) / (p x + q - 1)``.

    A weighted mean of the population mean ``p gamma / (q - 1)`` and the customer's own ``m``,
    which weighs more as ``x`` grows. Customers with ``x == 0`` or no usable ``m`` (NaN or not
    positive) get the population mean; a NaN or negative ``x`` gives NaN, as does the population
    mean of a model with ``q <= 1`` (it does not exist).
    """
    xs, ms = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64))
    p, q, gamma = model.p, model.q, model.gamma
    population = p * gamma / (q - 1.0) if q > 1.0 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        own = (xs >= 1) & np.isfinite(ms) & (ms > 0)
        conditional = p * (gamma + xs * ms) / (p * xs + q - 1.0)
        out = np.where(own, conditional, population)
        return np.where(np.isfinite(xs) & (xs >= 0), out, np.nan)


def expected_spend(
    bg: BgNbd,
    gg: GammaGamma,
    t: float,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m: ArrayLike,
) -> Array:
    """Return the expected spend in (T, T + t]: expected purchases x spend per purchase.

    The product is the expectation because Gamma-Gamma assumes spend independent of the purchase
    process.
    """
    return expected_purchases(bg, t, x, t_x, T) * expected_spend_per_purchase(gg, x, m)
