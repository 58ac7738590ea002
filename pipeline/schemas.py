"""Pandera schemas of the clean tables (docs/architecture.md, "Clean tables").

Optional columns are declared ``required=False``: a source that lacks them leaves them out.
``strict=True`` refuses columns the contract does not list.
"""

from __future__ import annotations

import math

import pandas as pd

from pipeline.errors import DataError
from pipeline.logs import without_pyspark_pandas_notice

# pandera imports pyspark.pandas whenever pyspark is installed (this project never uses it).
with without_pyspark_pandas_notice():
    import pandera.pandas as pa
    from pandera.errors import SchemaError, SchemaErrors

UTC_TS = "datetime64[us, UTC]"
ID = pa.Column("string", pa.Check.str_length(min_value=1), nullable=False)


def _ts(*, nullable: bool = False, required: bool = True) -> pa.Column:
    return pa.Column(UTC_TS, nullable=nullable, required=required)


def _finite(*, nullable: bool = False, required: bool = True) -> pa.Column:
    """Return a float64 column >= 0 and finite (the cleaning bounds keep inf out; this checks)."""
    finite = pa.Check.in_range(0, math.inf, include_max=False)
    return pa.Column("float64", finite, nullable=nullable, required=required)


ORDERS = pa.DataFrameSchema(
    {
        "customer_id": ID,
        "order_id": ID,
        "order_ts": _ts(),
        # 0 = every line of the order was worth zero (rules.zero_value_lines: keep)
        "gross_amount": _finite(),
        "n_items": pa.Column("int64", pa.Check.ge(1)),
        "n_distinct_products": pa.Column("int64", pa.Check.ge(1)),
        "discount_amount": _finite(required=False),
        "promised_ts": _ts(nullable=True, required=False),
        "delivered_ts": _ts(nullable=True, required=False),
        "channel": pa.Column("string", nullable=True, required=False),
    },
    strict=True,
    name="orders",
)

RETURNS = pa.DataFrameSchema(
    {
        "customer_id": ID,
        "order_id": pa.Column("string", nullable=True),
        "return_id": ID,
        "return_ts": _ts(),
        "amount": _finite(),
        "reason": pa.Column("string", nullable=True, required=False),
    },
    strict=True,
    name="returns",
)

FEEDBACK = pa.DataFrameSchema(
    {
        "customer_id": ID,
        "feedback_ts": _ts(),
        "kind": pa.Column("string", pa.Check.isin(["review", "survey", "nps", "complaint"])),
        "score": pa.Column("float64", pa.Check.in_range(0, 10), nullable=True, required=False),
        "resolved": pa.Column("boolean", nullable=True, required=False),
        "resolution_hours": _finite(nullable=True, required=False),
    },
    strict=True,
    name="feedback",
)

#: Free-text contact fields of the customers table (trimmed, as given): the report's contact
#: list carries them; never a model input.
CONTACT_FIELDS = ("name", "email", "phone")

CUSTOMERS = pa.DataFrameSchema(
    {
        "customer_id": pa.Column("string", pa.Check.str_length(min_value=1), unique=True),
        "signup_ts": _ts(nullable=True, required=False),
        "loyalty_member": pa.Column("boolean", nullable=True, required=False),
        "region": pa.Column("string", nullable=True, required=False),
        # contact fields (the report's contact list), never model inputs
        "name": pa.Column("string", nullable=True, required=False),
        "email": pa.Column("string", nullable=True, required=False),
        "phone": pa.Column("string", nullable=True, required=False),
    },
    strict=True,
    name="customers",
)

REJECTS = pa.DataFrameSchema(
    {
        "source_file": pa.Column("string"),
        "line_number": pa.Column("int64", pa.Check.ge(1)),
        "reason_code": pa.Column("string"),
        "raw": pa.Column("string"),
        "table": pa.Column("string"),
    },
    strict=True,
    name="rejects",
)

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "orders": ORDERS,
    "returns": RETURNS,
    "feedback": FEEDBACK,
    "customers": CUSTOMERS,
    "rejects": REJECTS,
}


def validate(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate a clean table against its schema; a violation is a DataError naming the table."""
    try:
        with without_pyspark_pandas_notice():
            return SCHEMAS[name].validate(frame, lazy=False)
    except (SchemaError, SchemaErrors) as exc:
        first = str(exc).splitlines()[0]
        raise DataError(f"clean table {name} breaks its schema: {first}") from exc
