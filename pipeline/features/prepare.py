"""Clean tables -> sorted numpy arrays keyed by an integer customer code, built once per run.

Every snapshot is then a handful of boolean masks and ``np.bincount`` calls over these arrays,
so a panel of many cutoffs does not re-parse strings or re-sort anything. Customers are the
distinct ``customer_id`` of ``orders`` (sorted, so codes follow id order); returns, feedback and
customer rows of ids without an order are ignored because such customers are never in a
population.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import InputError

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
NAT = np.iinfo(np.int64).min
NEVER = np.iinfo(np.int64).max
FEEDBACK_KINDS = ("review", "survey", "nps", "complaint")
NPS_GROUPS = ("detractor", "passive", "promoter")

REQUIRED = {
    "orders": ("customer_id", "order_ts", "gross_amount"),
    "returns": ("customer_id", "return_ts", "amount"),
    "feedback": ("customer_id", "feedback_ts", "kind"),
    "customers": ("customer_id",),
}
OPTIONAL = {
    "orders": ("discount_amount", "promised_ts", "delivered_ts", "channel"),
    "returns": (),
    "feedback": ("score", "resolved", "resolution_hours"),
    "customers": ("signup_ts", "loyalty_member", "region"),
}

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Prepared:
    """Event arrays of one set of customers, each table sorted by (code, timestamp).

    ``codes`` of a table index ``customer_code`` (the run-wide code of each local customer);
    ``starts[table][k]`` is the first row of local customer ``k`` in that table.
    """

    customer_code: np.ndarray
    orders: Arrays
    returns: Arrays | None
    feedback: dict[str, Arrays] | None
    customers: Arrays | None
    available: Mapping[str, bool]
    channels: tuple[str, ...] = ()
    unseen: Mapping[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of customers."""
        return int(self.customer_code.size)


def timestamps_us(series: pd.Series) -> np.ndarray:
    """Return UTC microseconds since the epoch as int64 (NaT -> ``NAT``); naive = UTC."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(series.dtype):
        series = pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return series.dt.as_unit("us").to_numpy().view(np.int64).copy()


def _arrow(ids: pd.Series) -> pa.Array:
    """Return customer ids as an Arrow large_string array (no copy for Arrow-backed strings)."""
    return pa.array(ids.astype("string[pyarrow]")).cast(pa.large_string())


def factorize_ids(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Return integer codes and the sorted distinct ids (clean tables are sorted by id).

    On id-sorted input the codes are a cumulative count of id changes (one vectorised string
    comparison, no hashing); otherwise ``pandas.factorize(sort=True)``. Both give the same codes.
    """
    values = _arrow(ids)
    if len(values) > 1 and values.null_count == 0:
        head, tail = values.slice(0, len(values) - 1), values.slice(1)
        if not pc.any(pc.less(tail, head)).as_py():
            new = np.ones(len(values), dtype=bool)
            new[1:] = pc.not_equal(tail, head).to_numpy(zero_copy_only=False)
            distinct = pd.Series(values.filter(pa.array(new)), dtype=pd.StringDtype())
            return np.cumsum(new) - 1, pd.Index(distinct, name="customer_id")
    codes, uniques = pd.factorize(ids.astype("string"), sort=True)
    return codes, pd.Index(uniques, dtype="string", name="customer_id")


def _check_columns(name: str, frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED[name] if c not in frame.columns]
    if missing:
        raise InputError(f"{name}: required column(s) missing: {', '.join(missing)}")


def _available(tables: Mapping[str, pd.DataFrame | None]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for name, frame in tables.items():
        for column in REQUIRED[name] + OPTIONAL[name]:
            out[f"{name}.{column}"] = frame is not None and column in frame.columns
    return out


def _sorted(codes: np.ndarray, ts: np.ndarray, arrays: Arrays) -> Arrays:
    """Drop rows of unknown customers and sort by (code, ts) unless already sorted."""
    keep = codes >= 0
    if not keep.all():
        codes, ts = codes[keep], ts[keep]
        arrays = {k: v[keep] for k, v in arrays.items()}
    step = np.diff(codes)
    if not bool(np.all((step > 0) | ((step == 0) & (np.diff(ts) >= 0)))):
        order = np.lexsort((ts, codes))
        codes, ts = codes[order], ts[order]
        arrays = {k: v[order] for k, v in arrays.items()}
    return {"code": codes, "ts": ts, **arrays}


def _float(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)


def _orders(frame: pd.DataFrame, codes: np.ndarray) -> tuple[Arrays, tuple[str, ...]]:
    arrays: Arrays = {"amount": _float(frame, "gross_amount")}
    if "discount_amount" in frame.columns:
        arrays["discount"] = np.nan_to_num(_float(frame, "discount_amount"), nan=0.0)
    for column, key in (("promised_ts", "promised"), ("delivered_ts", "delivered")):
        if column in frame.columns:
            arrays[key] = timestamps_us(frame[column])
    channels: tuple[str, ...] = ()
    if "channel" in frame.columns:
        channel_codes, uniques = pd.factorize(frame["channel"], sort=True)
        arrays["channel"] = channel_codes.astype(np.int16)
        channels = tuple(str(u) for u in uniques)
    out = _sorted(codes, timestamps_us(frame["order_ts"]), arrays)
    same = np.zeros(out["code"].size, dtype=bool)
    same[1:] = out["code"][1:] == out["code"][:-1]
    gap = np.zeros(out["code"].size)
    gap[1:] = (out["ts"][1:] - out["ts"][:-1]) / DAY_US
    out["gap_sq"] = np.where(same, gap * gap, 0.0)
    out["has_prev"] = same
    return out, channels


def _feedback(frame: pd.DataFrame, codes: np.ndarray) -> dict[str, Arrays]:
    kind = frame["kind"].astype("string").str.lower().to_numpy(dtype=object, na_value="")
    ts = timestamps_us(frame["feedback_ts"])
    score = _float(frame, "score") if "score" in frame.columns else np.full(len(frame), np.nan)
    out = {"any": _sorted(codes, ts, {})}
    for name in ("review", "survey", "nps"):
        rows = (kind == name) & ~np.isnan(score)
        out[name] = _sorted(codes[rows], ts[rows], {"score": score[rows]})
    rows = kind == "complaint"
    if "resolved" in frame.columns:
        resolved = frame["resolved"].to_numpy(dtype=object, na_value=False)[rows].astype(bool)
    else:
        resolved = np.zeros(int(rows.sum()), dtype=bool)
    hours = (
        _float(frame, "resolution_hours")[rows]
        if "resolution_hours" in frame.columns
        else np.full(int(rows.sum()), np.nan)
    )
    # A complaint counts as unresolved until it was resolved, so that a resolution after the
    # cutoff is not known at the cutoff. Resolved without a duration: resolved when raised.
    delay = np.where(np.isnan(hours), 0.0, hours) * HOUR_US
    resolved_at = np.where(resolved, ts[rows] + delay.astype(np.int64), NEVER)
    out["complaint"] = _sorted(
        codes[rows],
        ts[rows],
        {"resolved_at": resolved_at, "hours": np.where(resolved, hours, np.nan)},
    )
    return out


def _customers(
    frame: pd.DataFrame, codes: np.ndarray, n: int, regions: tuple[str, ...]
) -> tuple[Arrays, dict[str, int]]:
    keep = codes >= 0
    out: Arrays = {}
    unseen: dict[str, int] = {}
    if "loyalty_member" in frame.columns:
        member = np.full(n, np.nan)
        values = (
            frame["loyalty_member"].astype("boolean").to_numpy(dtype=np.float64, na_value=np.nan)
        )
        member[codes[keep]] = values[keep]
        out["loyalty_member"] = member
    if "region" in frame.columns:
        text = frame["region"].astype("string").str.strip().str.lower()
        level = pd.Index(list(regions), dtype="string").get_indexer(pd.Index(text)).astype(np.int16)
        bad = text.notna().to_numpy() & (level < 0) & keep
        if bad.any():
            unseen["region"] = int(bad.sum())
        region = np.full(n, -1, dtype=np.int16)
        region[codes[keep]] = level[keep]
        out["region"] = region
    return out, unseen


def prepare(
    orders: pd.DataFrame,
    returns: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    regions: tuple[str, ...] = (),
) -> tuple[Prepared, pd.Index]:
    """Index the clean tables by customer code; return them and the sorted customer ids."""
    tables = {"orders": orders, "returns": returns, "feedback": feedback, "customers": customers}
    for name, frame in tables.items():
        if frame is not None:
            _check_columns(name, frame)
    codes, index = factorize_ids(orders["customer_id"])
    n = len(index)

    known = _arrow(index.to_series())

    def lookup(frame: pd.DataFrame) -> np.ndarray:
        # Arrow's hash lookup: about twice as fast as Index.get_indexer on millions of ids.
        found = pc.index_in(_arrow(frame["customer_id"]), value_set=known)
        return found.fill_null(-1).to_numpy().astype(np.int64)

    order_arrays, channels = _orders(orders, codes.astype(np.int64))
    return_arrays = None
    if returns is not None:
        return_arrays = _sorted(
            lookup(returns),
            timestamps_us(returns["return_ts"]),
            {"amount": _float(returns, "amount")},
        )
    feedback_arrays = _feedback(feedback, lookup(feedback)) if feedback is not None else None
    customer_arrays: Arrays | None = None
    unseen: dict[str, int] = {}
    if customers is not None:
        customer_arrays, unseen = _customers(customers, lookup(customers), n, regions)
    prepared = Prepared(
        customer_code=np.arange(n, dtype=np.int64),
        orders=order_arrays,
        returns=return_arrays,
        feedback=feedback_arrays,
        customers=customer_arrays,
        available=_available(tables),
        channels=channels,
        unseen=unseen,
    )
    return prepared, index


def starts(codes: np.ndarray, n: int) -> np.ndarray:
    """Return the first row of each customer code in a code-sorted array."""
    return np.searchsorted(codes, np.arange(n, dtype=codes.dtype), side="left")


def _take_rows(arrays: Arrays, rows: np.ndarray, local: np.ndarray) -> Arrays:
    out = {k: v[rows] for k, v in arrays.items()}
    out["code"] = local[out["code"]]
    return out


def split(prepared: Prepared, part_of_customer: np.ndarray, n_parts: int) -> list[Prepared]:
    """Split into ``n_parts`` partitions by a per-customer partition number (order kept)."""
    local = np.empty(prepared.n, dtype=np.int64)
    members = [np.flatnonzero(part_of_customer == p) for p in range(n_parts)]
    for rows in members:
        local[rows] = np.arange(rows.size)

    def by_part(arrays: Arrays) -> list[np.ndarray]:
        part = part_of_customer[arrays["code"]]
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(n_parts + 1))
        return [order[bounds[p] : bounds[p + 1]] for p in range(n_parts)]

    def cut(arrays: Arrays) -> list[Arrays]:
        return [_take_rows(arrays, rows, local) for rows in by_part(arrays)]

    order_parts = cut(prepared.orders)
    return_parts: list[Arrays | None] = [None] * n_parts
    if prepared.returns is not None:
        return_parts = list(cut(prepared.returns))
    feedback_parts: list[dict[str, Arrays] | None] = [None] * n_parts
    if prepared.feedback is not None:
        per_kind = {kind: cut(arrays) for kind, arrays in prepared.feedback.items()}
        feedback_parts = [
            {kind: parts[p] for kind, parts in per_kind.items()} for p in range(n_parts)
        ]
    out = []
    for p, rows in enumerate(members):
        customers = None
        if prepared.customers is not None:
            customers = {k: v[rows] for k, v in prepared.customers.items()}
        out.append(
            replace(
                prepared,
                customer_code=prepared.customer_code[rows],
                orders=order_parts[p],
                returns=return_parts[p],
                feedback=feedback_parts[p],
                customers=customers,
            )
        )
    return out
