"""UCI Online Retail / Online Retail II line-level exports.

Both namings are mapped by ``configs/sources/online_retail.yaml`` (``InvoiceNo/UnitPrice/
CustomerID`` and ``Invoice/Price/Customer ID``); CSV, CSV.gz, Parquet and the official .xlsx are
read by :mod:`pipeline.sources.reading`. What is specific to this source lives here:

- the official workbook has two sheets that overlap (2010-12-01..09 is in both): rows of a later
  sheet whose invoice is already in an earlier sheet are rejected as ``sheet_overlap``;
- the stock codes that are not products (postage, manual entries, bank charges, bad debt...),
  excluded from spend and counted in the manifest.
"""

from __future__ import annotations

import pandas as pd

from pipeline.cleaning.reasons import Reason
from pipeline.sources.reading import REJECT_COLUMNS

# Stock codes of Online Retail (II) that are not merchandise (see the dataset's README).
NON_PRODUCT_CODES: dict[str, str] = {
    "POST": "postage",
    "DOT": "dotcom postage",
    "C2": "carriage",
    "M": "manual entry",
    "D": "discount",
    "S": "samples",
    "B": "adjust bad debt",
    "BANK CHARGES": "bank charges",
    "AMAZONFEE": "Amazon fee",
    "ADJUST": "adjustment by the accounts team",
    "ADJUST2": "adjustment by the accounts team",
    "CRUK": "CRUK commission",
    "PADS": "pads to match all cushions",
    "TEST001": "test line",
    "TEST002": "test line",
    "GIFT": "gift voucher",
}


def drop_sheet_overlap(sheets: list[pd.DataFrame]) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Reject rows of later sheets whose ``order_id`` already appears in an earlier sheet.

    Returns the sheets without those rows and the rejected rows (REJECT_COLUMNS).
    """
    seen: set[str] = set()
    kept: list[pd.DataFrame] = []
    dropped: list[pd.DataFrame] = []
    for sheet in sheets:
        ids = sheet["order_id"].astype("string").str.strip()
        overlap = ids.isin(seen).fillna(False).astype(bool)
        kept.append(sheet[~overlap].reset_index(drop=True))
        dropped.append(sheet[overlap].assign(reason_code=Reason.SHEET_OVERLAP.value))
        seen.update(ids.dropna().unique().tolist())
    rejects = pd.concat(dropped, ignore_index=True)[list(REJECT_COLUMNS)]
    return kept, rejects.astype({"reason_code": "string"})
