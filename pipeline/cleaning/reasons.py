"""The closed list of reject reasons: every quarantined row carries exactly one of these."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a raw row was not accepted (``rejects.reason_code``)."""

    # reading
    MALFORMED_ROW = "malformed_row"
    ENCODING_ERROR = "encoding_error"
    RECORD_TOO_LONG = "record_too_long"
    NUL_BYTE = "nul_byte"
    SHEET_OVERLAP = "sheet_overlap"
    # every table
    DUPLICATE_ROW = "duplicate_row"
    MISSING_CUSTOMER_ID = "missing_customer_id"
    BAD_DATE = "bad_date"
    FUTURE_DATE = "future_date"
    # transactions
    MISSING_ORDER_ID = "missing_order_id"
    NON_NUMERIC_QUANTITY = "non_numeric_quantity"
    NON_NUMERIC_UNIT_PRICE = "non_numeric_unit_price"
    NON_NUMERIC_AMOUNT = "non_numeric_amount"
    NON_NUMERIC_DISCOUNT = "non_numeric_discount"
    QUANTITY_OUT_OF_RANGE = "quantity_out_of_range"
    UNIT_PRICE_OUT_OF_RANGE = "unit_price_out_of_range"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    DISCOUNT_OUT_OF_RANGE = "discount_out_of_range"
    NON_POSITIVE_QUANTITY = "non_positive_quantity"
    NON_POSITIVE_PRICE = "non_positive_price"
    NON_POSITIVE_AMOUNT = "non_positive_amount"
    NEGATIVE_DISCOUNT = "negative_discount"
    # feedback
    INVALID_KIND = "invalid_kind"
    NON_NUMERIC_SCORE = "non_numeric_score"
    SCORE_OUT_OF_RANGE = "score_out_of_range"
    NON_BOOLEAN_RESOLVED = "non_boolean_resolved"
    NON_NUMERIC_RESOLUTION_HOURS = "non_numeric_resolution_hours"
    RESOLUTION_HOURS_OUT_OF_RANGE = "resolution_hours_out_of_range"
    # customers
    NON_BOOLEAN_LOYALTY_MEMBER = "non_boolean_loyalty_member"
    DUPLICATE_CUSTOMER = "duplicate_customer"


def non_numeric(column: str) -> Reason:
    """Return the ``non_numeric_<column>`` reason of a numeric column."""
    return Reason(f"non_numeric_{column}")


def out_of_range(column: str) -> Reason:
    """Return the ``<column>_out_of_range`` reason of a bounded numeric column."""
    return Reason(f"{column}_out_of_range")
