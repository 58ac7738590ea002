"""Online Retail specifics: the workbook sheets' overlap and the non-product codes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.sources.csv_mapping import load_source_config
from pipeline.sources.online_retail import NON_PRODUCT_CODES, drop_sheet_overlap

REPO = Path(__file__).resolve().parents[3]


def sheet(name: str, invoices: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_file": pd.Series([name] * len(invoices), dtype="string"),
            "order_id": pd.Series(invoices, dtype="string"),
            "line_number": pd.Series(range(2, len(invoices) + 2), dtype="int64"),
            "raw": pd.Series(invoices, dtype="string"),
        }
    )


def test_later_sheets_lose_the_invoices_of_earlier_sheets() -> None:
    first = sheet("b[2009]", ["1", "1", "2"])  # a repeated invoice within a sheet is not overlap
    second = sheet("b[2010]", ["2", "3", "2"])  # invoice 2 is in both sheets
    kept, rejects = drop_sheet_overlap([first, second])
    assert kept[0]["order_id"].tolist() == ["1", "1", "2"]
    assert kept[1]["order_id"].tolist() == ["3"]
    assert rejects[["source_file", "line_number", "reason_code"]].values.tolist() == [
        ["b[2010]", 2, "sheet_overlap"],
        ["b[2010]", 4, "sheet_overlap"],
    ]


def test_config_lists_exactly_the_documented_non_product_codes() -> None:
    config = load_source_config(REPO / "configs" / "sources" / "online_retail.yaml")
    assert set(config.rules.non_product_codes) == set(NON_PRODUCT_CODES)
