"""Raw exports shaped like common real ones, written from the seeded simulation (small, fast).

Each shape writes the simulated retailer's orders (and, for two of them, a second table) the way
a real system would export them, with a few dirty rows each so that cleaning has something to
reject; :data:`SHAPES` says what ``loyalty inspect`` should guess for it. The end-to-end tests
(tests/integration/test_source_shapes.py) and the worked examples of docs/sources.md use these.

- ``purchase_log``: a whitespace-aligned log (``printf``-style) of one line per purchase: no
  order id, dates as YYYYMMDD, amounts with a decimal point.
- ``european_orders``: a German shop's order export: ``;``, decimal comma, day-first dates
  (dd/mm/yyyy hh:mm), a UTF-8 byte-order mark and an umlaut; plus a reviews file.
- ``line_level``: invoice lines (Online Retail v1 style): order ids, quantity x unit price,
  returns as ``C`` invoices with negative quantities, postage lines, month-first dates without
  zero padding; plus a customers file with ISO dates.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import DirtyRates, GenerateParams
from pipeline.sources import synthetic

N_CUSTOMERS = 400
SEED = 7
CLEAN = DirtyRates(**{name: 0.0 for name in DirtyRates.model_fields})


def simulate(n_customers: int = N_CUSTOMERS, seed: int = SEED) -> synthetic.SyntheticExport:
    """The simulated retailer (2023-2024) without the simulation's own dirty rows."""
    return synthetic.generate(GenerateParams(n_customers=n_customers, seed=seed, dirty=CLEAN))


def _lines(export: synthetic.SyntheticExport) -> pd.DataFrame:
    lines = export.transactions.astype({"invoice": str, "customer_id": str, "sku": str})
    lines["ts"] = pd.to_datetime(lines["invoice_ts"].astype(str), format="%Y-%m-%d %H:%M:%S")
    return lines


def _orders(export: synthetic.SyntheticExport) -> pd.DataFrame:
    """One row per sale invoice: customer, time, total, discount, channel (returns left out)."""
    lines = _lines(export)
    lines = lines[~lines["invoice"].str.startswith("C")]
    lines["value"] = lines["quantity"] * lines["unit_price"]
    return (
        lines.groupby("invoice", sort=False)
        .agg(
            customer_id=("customer_id", "first"),
            ts=("ts", "first"),
            total=("value", "sum"),
            discount=("discount", "sum"),
            channel=("channel", "first"),
        )
        .reset_index()
    )


def _write(path: Path, text: str, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8"))
    return path


def purchase_log(folder: Path, n_customers: int = N_CUSTOMERS, seed: int = SEED) -> list[Path]:
    """``purchases.txt``: ``member_id  date  amount`` aligned with spaces; no order id.

    Dirty rows: a line with id ``NULL`` (missing_customer_id), an exact duplicate line
    (duplicate_row) and 30 February (bad_date).
    """
    orders = _orders(simulate(n_customers, seed))
    cells = [
        (cid, ts.strftime("%Y%m%d"), f"{total:.2f}")
        for cid, ts, total in zip(orders["customer_id"], orders["ts"], orders["total"], strict=True)
    ]
    cells[10:10] = [("NULL", "20230301", "12.50")]
    cells.insert(20, cells[19])
    cells.insert(30, (cells[30][0], "20230230", "9.99"))
    rows = ["member_id    date        amount"]
    rows += [f"{cid:>9}    {day:<8}  {amount:>10}" for cid, day, amount in cells]
    return [_write(folder / "purchases.txt", "\n".join(rows) + "\n")]


def _day_first(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%d/%m/%Y %H:%M")


def _comma(values: pd.Series) -> pd.Series:
    return values.map(lambda v: f"{v:.2f}".replace(".", ","))


CHANNELS_DE = {"web": "Web", "store": "Geschäft", "app": "App"}


def european_orders(folder: Path, n_customers: int = N_CUSTOMERS, seed: int = SEED) -> list[Path]:
    """``bestellungen.csv`` (orders) and ``bewertungen.csv`` (reviews): ``;``, decimal comma.

    Orders: ``Kundennummer;Bestellnummer;Bestelldatum;Betrag;Rabatt;Kanal`` with a UTF-8 BOM.
    Reviews: ``Kundennummer;Datum;Art;Sterne`` (Art = review, survey, nps or complaint).
    Dirty rows: an id written ``17850.0`` (read as ``17850``), an amount ``n/a``
    (non_numeric_amount) and an exact duplicate line.
    """
    export = simulate(n_customers, seed)
    orders = _orders(export)
    table = pd.DataFrame(
        {
            "Kundennummer": orders["customer_id"],
            "Bestellnummer": "B" + orders["invoice"],
            "Bestelldatum": _day_first(orders["ts"]),
            "Betrag": _comma(orders["total"]),
            "Rabatt": _comma(orders["discount"]),
            "Kanal": orders["channel"].astype(str).map(CHANNELS_DE),
        }
    )
    table.loc[5, "Kundennummer"] = table.loc[5, "Kundennummer"] + ".0"
    table.loc[15, "Betrag"] = "n/a"
    table = pd.concat([table.iloc[:25], table.iloc[[24]], table.iloc[25:]], ignore_index=True)
    feedback = export.feedback
    reviews = pd.DataFrame(
        {
            "Kundennummer": feedback["customer_id"].astype(str),
            "Datum": _day_first(pd.to_datetime(feedback["feedback_ts"].astype(str))),
            "Art": feedback["kind"].astype(str),
            "Sterne": feedback["score"].astype("Int64").astype("string").fillna(""),
        }
    )
    return [
        _write(folder / "bestellungen.csv", _csv(table, ";"), bom=True),
        _write(folder / "bewertungen.csv", _csv(reviews, ";")),
    ]


def _csv(frame: pd.DataFrame, delimiter: str) -> str:
    rows = [delimiter.join(frame.columns)]
    rows += [delimiter.join(map(str, values)) for values in frame.itertuples(index=False)]
    return "\n".join(rows) + "\n"


def _month_first(ts: pd.Series) -> pd.Series:
    """``12/1/2010 8:26``: month first, no zero padding (the UCI Online Retail v1 way)."""
    return (
        ts.dt.month.astype(str)
        + "/"
        + ts.dt.day.astype(str)
        + "/"
        + ts.dt.year.astype(str)
        + " "
        + ts.dt.hour.astype(str)
        + ":"
        + ts.dt.strftime("%M")
    )


COUNTRIES = {
    "north": "United Kingdom",
    "south": "France",
    "central": "Germany",
    "west": "EIRE",
    "east": "Netherlands",
}


def line_level(folder: Path, n_customers: int = N_CUSTOMERS, seed: int = SEED) -> list[Path]:
    """``sales_lines.csv`` (invoice lines) and ``customers.csv``, comma-delimited.

    Lines: ``InvoiceNo,StockCode,Description,Quantity,UnitPrice,InvoiceDate,CustomerID,Country``;
    returns are ``C`` invoices with negative quantities; every 40th invoice has a ``POST``
    (postage) line. Customers: ``CustomerID,Country,SignupDate`` (ISO dates).
    Dirty rows: a line without a customer id (missing_customer_id), an exact duplicate line
    (duplicate_row) and a zero price (kept by default as a zero-value line, counted).
    """
    export = simulate(n_customers, seed)
    lines = _lines(export)
    region = dict(
        zip(
            export.customers["customer_id"].astype(str),
            export.customers["region"].astype(str).map(COUNTRIES),
            strict=True,
        )
    )
    table = pd.DataFrame(
        {
            "InvoiceNo": lines["invoice"],
            "StockCode": lines["sku"],
            "Description": lines["description"].astype(str),
            "Quantity": lines["quantity"].astype(str),
            "UnitPrice": lines["unit_price"].map(lambda v: f"{v:.2f}"),
            "InvoiceDate": _month_first(lines["ts"]),
            "CustomerID": lines["customer_id"],
            "Country": lines["customer_id"].map(region),
        }
    )
    first = table.drop_duplicates("InvoiceNo")
    postage = first[~first["InvoiceNo"].str.startswith("C")].iloc[::40].copy()
    postage[["StockCode", "Description", "Quantity", "UnitPrice"]] = [
        "POST",
        "POSTAGE",
        "1",
        "18.00",
    ]
    table = pd.concat([table, postage]).sort_index(kind="stable").reset_index(drop=True)
    table.loc[7, "CustomerID"] = ""
    table.loc[17, "UnitPrice"] = "0.00"
    table = pd.concat([table.iloc[:33], table.iloc[[32]], table.iloc[33:]], ignore_index=True)
    customers = pd.DataFrame(
        {
            "CustomerID": export.customers["customer_id"].astype(str),
            "Country": export.customers["region"].astype(str).map(COUNTRIES),
            "SignupDate": export.customers["signup_date"].astype(str),
        }
    )
    return [
        _write(folder / "sales_lines.csv", _csv(table, ",")),
        _write(folder / "customers.csv", _csv(customers, ",")),
    ]


@dataclass(frozen=True)
class Shape:
    """A shape of export, how to write it, and what ``loyalty inspect`` should guess."""

    name: str
    write: Callable[..., list[Path]]
    delimiter: str
    decimal: str
    formats: dict[str, str]
    columns: dict[str, dict[str, str]]
    rules: dict[str, Any] = field(default_factory=dict)
    bom: bool = False


SHAPES = {
    "purchase_log": Shape(
        "purchase_log",
        purchase_log,
        delimiter="whitespace",
        decimal=".",
        formats={"order_ts": "%Y%m%d"},
        columns={
            "transactions": {"customer_id": "member_id", "order_ts": "date", "amount": "amount"}
        },
        rules={"cancellation_prefix": None, "non_product_codes": []},
    ),
    "european_orders": Shape(
        "european_orders",
        european_orders,
        delimiter=";",
        decimal=",",
        formats={"order_ts": "%d/%m/%Y %H:%M", "feedback_ts": "%d/%m/%Y %H:%M"},
        columns={
            "transactions": {
                "customer_id": "Kundennummer",
                "order_ts": "Bestelldatum",
                "order_id": "Bestellnummer",
                "amount": "Betrag",
                "discount": "Rabatt",
                "channel": "Kanal",
            },
            "feedback": {
                "customer_id": "Kundennummer",
                "feedback_ts": "Datum",
                "kind": "Art",
                "score": "Sterne",
            },
        },
        rules={"cancellation_prefix": None},
        bom=True,
    ),
    "line_level": Shape(
        "line_level",
        line_level,
        delimiter=",",
        decimal=".",
        formats={"order_ts": "%m/%d/%Y %H:%M", "signup_ts": "%Y-%m-%d"},
        columns={
            "transactions": {
                "customer_id": "CustomerID",
                "order_ts": "InvoiceDate",
                "order_id": "InvoiceNo",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
                "sku": "StockCode",
                "description": "Description",
            },
            "customers": {
                "customer_id": "CustomerID",
                "signup_ts": "SignupDate",
                "region": "Country",
            },
        },
        rules={
            "cancellation_prefix": "C",
            "return_order_id": "none",
            "non_product_codes": ["POST"],
        },
    ),
}


def main(argv: list[str] | None = None) -> None:
    """Write every shape under a folder: ``python -m tests.support.shapes exports``."""
    import sys

    folder = Path((argv or sys.argv[1:] or ["exports"])[0])
    for name, shape in SHAPES.items():
        for path in shape.write(folder / name):
            print(path)  # noqa: T201 - a command-line helper


if __name__ == "__main__":
    main()
