"""The embedded synthetic data source: a seeded simulation of a retailer with known truth.

:func:`generate` is pure (params in, tables out) and deterministic: the same params give the
same tables, and :func:`to_csv_text` turns them into the same bytes. The mechanisms and their
coefficients are in :mod:`pipeline.sources.simulation.mechanisms` and ``docs/simulation.md``;
the export format is in ``docs/architecture.md`` ("Synthetic raw export").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import GenerateParams
from pipeline.sources.simulation import dirty, dynamics, export
from pipeline.sources.simulation.mechanisms import Effects

logger = logging.getLogger(__name__)

#: file name of each table in the output folder
FILES = {
    "transactions": "transactions.csv",
    "feedback": "feedback.csv",
    "customers": "customers.csv",
    "ground_truth": "ground_truth.parquet",
    "manifest": "generate_manifest.json",
}
# Written instead of the export when the pipeline reads another one (generate --when-read).
SKIPPED_NOTE = "generate_skipped.json"


def reads_folder(data_input: str | Path, folder: str | Path) -> bool:
    """Whether the pipeline's raw input (params ``data.input``) is ``folder`` or inside it."""
    target, given = Path(folder).resolve(), Path(data_input).resolve()
    return given == target or target in given.parents


def not_read_note(source: str, data_input: str | Path) -> dict[str, object]:
    """Say why nothing was simulated: the pipeline reads another export."""
    return {
        "skipped": True,
        "reason": f"data.input is {str(data_input)!r} (source {source!r}), not this folder",
    }


@dataclasses.dataclass(frozen=True)
class SyntheticExport:
    """The simulated export, the per-customer truth and a manifest of what was generated."""

    transactions: pd.DataFrame
    feedback: pd.DataFrame
    customers: pd.DataFrame
    ground_truth: pd.DataFrame
    manifest: dict[str, Any]


def generate(params: GenerateParams, effects: Effects | None = None) -> SyntheticExport:
    """Simulate ``params.n_customers`` customers from ``params.start`` to ``params.end``."""
    effects = effects or Effects()
    n_days = (params.end - params.start).days + 1
    if n_days < 1:
        from pipeline.errors import ConfigError

        raise ConfigError(f"generate: end {params.end} is before start {params.start}")
    rng = np.random.default_rng(params.seed)
    pop = dynamics.draw_population(params.n_customers, params.start, n_days, effects, rng)
    hist = dynamics.simulate(pop, params.start, n_days, effects, rng)
    lines = export.transactions(pop, hist, effects, rng)
    lines, dirty_counts = dirty.inject(lines, params.dirty, params.end, rng)
    tables = {
        "transactions": lines,
        "feedback": export.feedback(pop, hist, effects, rng),
        "customers": export.customers(pop, params.start),
        "ground_truth": export.ground_truth(pop, hist),
    }
    # the true coefficients travel with the truth table (Parquet metadata, restored as attrs)
    tables["ground_truth"].attrs["effects"] = effects.as_dict()
    is_return = lines["invoice"].str.startswith("C")
    manifest = {
        "generator": "pipeline.sources.synthetic",
        "params": params.model_dump(mode="json"),
        "extract_end": f"{params.end.isoformat()} 23:59:59",
        "rows": {name: len(frame) for name, frame in tables.items()},
        "orders": len(hist.order_day),
        "sale_invoices": int(lines.loc[~is_return, "invoice"].nunique()),
        "return_invoices": int(lines.loc[is_return, "invoice"].nunique()),
        "return_lines": int(is_return.sum()),
        "dirty": dirty_counts,
        "dropped_out": int((hist.dropout_day >= 0).sum()),
        "base_rates": base_rates(hist, params.n_customers),
        "effects": effects.as_dict(),
    }
    logger.info(
        "simulated %d customers, %d orders, %d transaction lines",
        params.n_customers, len(hist.order_day), len(lines),
    )  # fmt: skip
    return SyntheticExport(manifest=manifest, **tables)


def base_rates(hist: dynamics.History, n_customers: int) -> dict[str, dict[str, float]]:
    """Churn (no order in 90 days) and repurchase (an order in 30 days) shares at quarterly cutoffs.

    Computed on the true orders (before dirty rows), over customers with an order in the 365
    days before the cutoff: the label base rates a model trained on this export should see.
    """
    out: dict[str, dict[str, float]] = {}
    start = pd.Timestamp(hist.start)
    cutoff = start + pd.DateOffset(years=1)
    while (day := (cutoff - start).days) + 90 <= hist.n_days:
        active, within_90, within_30 = (np.zeros(n_customers, dtype=bool) for _ in range(3))
        active[hist.order_customer[(hist.order_day >= day - 365) & (hist.order_day < day)]] = True
        within_90[hist.order_customer[(hist.order_day >= day) & (hist.order_day < day + 90)]] = True
        within_30[hist.order_customer[(hist.order_day >= day) & (hist.order_day < day + 30)]] = True
        n_active = max(int(active.sum()), 1)
        out[cutoff.date().isoformat()] = {
            "active_customers": int(active.sum()),
            "churn_90d": round(1 - float((active & within_90).sum()) / n_active, 4),
            "repurchase_30d": round(float((active & within_30).sum()) / n_active, 4),
        }
        cutoff += pd.DateOffset(months=3)
    return out


def csv_chunks(frame: pd.DataFrame, rows: int = 200_000) -> Iterator[str]:
    """Render a table as the export's CSV text, a block of rows at a time (header first).

    Same bytes as ``DataFrame.to_csv(index=False)`` (minimal quoting, ``repr`` floats, empty
    missing values), about twice as fast: each distinct text or number is formatted once.
    Cells are written verbatim: formula-like text is NOT defused, because the raw export must
    carry the dirty cells a real export would; the pipeline neutralises formulas only in what it
    writes for people.
    """
    yield ",".join(_quote(str(name)) for name in frame.columns) + "\n"
    columns = [_prepare(frame[name]) for name in frame.columns]
    for begin in range(0, len(frame), rows):
        block = [render(slice(begin, begin + rows)) for render in columns]
        yield "".join([",".join(cells) + "\n" for cells in zip(*block, strict=True)])


def _quote(text: str) -> str:
    if any(char in text for char in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _prepare(series: pd.Series) -> Callable[[slice], np.ndarray]:
    """Return a function giving the cell texts of ``series[rows]`` as an object array."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        integer = pd.api.types.is_integer_dtype(series.dtype)
        missing = series.isna().to_numpy()
        values = series.to_numpy(dtype=np.int64 if integer else np.float64, na_value=0)

        def numbers(rows: slice) -> np.ndarray:
            distinct, inverse = np.unique(values[rows], return_inverse=True)
            texts = np.array([str(v) if integer else repr(v) for v in distinct.tolist()], object)
            cells = texts[inverse]
            cells[missing[rows]] = ""
            return cells

        return numbers
    if isinstance(series.dtype, pd.CategoricalDtype):
        categorical = series.array
    else:
        categorical = pd.Categorical(series.astype(object).where(series.notna(), ""))
    categories = categorical.categories
    # texts are materialised per block only: a column can have millions of distinct values
    needs_quotes = np.asarray(categories.str.contains(r'[,"\r\n]', regex=True), dtype=bool)
    codes = categorical.codes
    category_texts = np.asarray(categories, dtype=object)

    def texts(rows: slice) -> np.ndarray:
        block = codes[rows]
        missing = block < 0
        safe = np.where(missing, 0, block)
        cells = category_texts[safe]  # a new array of references to the category strings
        cells[missing] = ""
        quote = np.flatnonzero(needs_quotes[safe] & ~missing)
        cells[quote] = [_quote(text) for text in cells[quote]]
        return cells

    return texts
