"""Dirty rows, injected into the invoice lines at the rates of ``params.generate.dirty``.

Each kind hits its own sale lines (never a line already made dirty), so the counts in the
manifest are exact: the clean stage's tests compare their reject counts with them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.config import DirtyRates
from pipeline.sources.simulation.export import timestamps

#: kind -> field of :class:`DirtyRates`, in the order the lines are drawn.
KINDS = {
    "missing_customer_id": "missing_customer_id_rate",
    "float_id": "float_id_rate",
    "padded_id": "padded_id_rate",
    "bad_date": "bad_date_rate",
    "future_date": "future_date_rate",
    "negative_quantity": "negative_quantity_rate",
    "zero_price": "zero_price_rate",
    "outlier_quantity": "outlier_quantity_rate",
    "formula_text": "formula_text_rate",
    "duplicate": "duplicate_rate",
}
FORMULAS = (
    '=HYPERLINK("http://example.com","CLICK")',
    "=1+2",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=cmd|' /C notepad'!A1",
)


def inject(
    lines: pd.DataFrame, rates: DirtyRates, end: dt.date, rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return a dirty copy of ``lines`` and how many lines of each kind were injected.

    ``duplicate`` adds an exact copy right after the line; every other kind edits one field.
    Rates are shares of all transaction lines; only sale lines (not ``C`` invoices) are hit.
    """
    out = lines.copy(deep=False)  # copy-on-write: replaced columns never touch `lines`
    sale = np.flatnonzero(~out["invoice"].str.startswith("C").to_numpy())
    shuffled = rng.permutation(sale)
    counts: dict[str, int] = {}
    picked: dict[str, np.ndarray] = {}
    cursor = 0
    for kind, field in KINDS.items():
        count = min(int(round(getattr(rates, field) * len(out))), len(shuffled) - cursor)
        picked[kind] = np.sort(shuffled[cursor : cursor + count])
        counts[kind] = count
        cursor += count

    ids = out["customer_id"]
    _replace(
        out, "customer_id", picked["missing_customer_id"], [""] * counts["missing_customer_id"]
    )
    _replace(
        out, "customer_id", picked["float_id"], [f"{x}.0" for x in ids.iloc[picked["float_id"]]]
    )
    pad = picked["padded_id"]
    front = (rng.random(len(pad)) < 0.5).tolist()
    padded = [f" {x}" if f else f"{x}  " for x, f in zip(ids.iloc[pad], front, strict=True)]
    _replace(out, "customer_id", pad, padded)

    bad = picked["bad_date"]
    variant = rng.integers(0, 4, len(bad)).tolist()
    broken = [
        t[:5] + "13" + t[7:] if v == 0 else t[:8] + "32" + t[10:] if v == 1
        else t[:11] + "25" + t[13:] if v == 2 else "N/A"
        for t, v in zip(out["invoice_ts"].iloc[bad], variant, strict=True)
    ]  # month 13, day 32, hour 25, or not a date at all  # fmt: skip
    _replace(out, "invoice_ts", bad, broken)
    future = picked["future_date"]
    days_after = (end - dt.date(2000, 1, 1)).days + rng.integers(1, 366, len(future))
    seconds = days_after * 86_400 + rng.integers(28_800, 72_000, len(future))
    _replace(out, "invoice_ts", future, timestamps(dt.date(2000, 1, 1), seconds).tolist())

    outliers = rng.integers(10_000, 80_001, len(picked["outlier_quantity"]))
    quantity = out["quantity"].to_numpy().copy()
    quantity[picked["negative_quantity"]] *= -1
    quantity[picked["outlier_quantity"]] = outliers
    out["quantity"] = quantity
    price = out["unit_price"].to_numpy().copy()
    price[picked["zero_price"]] = 0.0
    out["unit_price"] = price
    formulas = rng.choice(np.asarray(FORMULAS, dtype=object), len(picked["formula_text"]))
    _replace(out, "description", picked["formula_text"], formulas.tolist())

    repeat = np.ones(len(out), dtype=np.int64)
    repeat[picked["duplicate"]] = 2
    out = out.iloc[np.repeat(np.arange(len(out)), repeat)].reset_index(drop=True)
    return out, counts


def _replace(frame: pd.DataFrame, column: str, rows: np.ndarray, values: list[str]) -> None:
    """Set ``frame[column]`` at positions ``rows`` (a categorical column gains the new values)."""
    if len(rows) == 0:
        return
    series = frame[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        known = series.cat.categories
        new = sorted(set(values).difference(known))
        series = series.cat.add_categories(pd.Index(new, dtype=object))
    series = series.copy()
    series.iloc[rows] = values
    frame[column] = series
