"""Guesses of the cleaning rules that depend on the export: cancellations and non-products.

The rules themselves live in :class:`pipeline.cleaning.rules.CleanRules`; these functions only
look at sampled values and say which setting fits them, and why.
"""

from __future__ import annotations

import re

import pandas as pd

from pipeline.sources.inspect.guess import Confidence, Guess, percent
from pipeline.sources.online_retail import NON_PRODUCT_CODES

_PREFIX = re.compile(r"^([A-Za-z]+)(?=[\w-]*\d)")
# A description that is a service's name, with at most one word before it ("DOTCOM POSTAGE",
# "Bank Charges"); a longer one names a product ("BLACK BAROQUE CARRIAGE CLOCK").
SERVICE_WORDS = re.compile(
    r"\s*(?:\w+\s+)?(?:postage|carriage|shipping|delivery|fee|bank charges?|manual|adjust\w*|"
    r"porto|versand|versandkosten|frais de port|envio|gift voucher|discount)\s*",
    re.IGNORECASE,
)
MAX_CODES = 20


def prefix_of(order_ids: pd.Series) -> pd.Series:
    """Return the letters an id starts with before its digits: ``C536379`` -> ``C``, else ""."""
    return order_ids.str.extract(_PREFIX, expand=False).fillna("")


def guess_cancellation(order_ids: pd.Series | None, signed: pd.Series | None) -> Guess[str | None]:
    """Guess the order-id prefix that marks cancellations and returns (None: there is none).

    A prefix counts when a minority of ids start with letters the others do not (``C536379``
    among ``536379``), the more so when those lines have negative quantities or amounts.
    Negative lines without such a prefix are reported: cleaning quarantines them.
    """
    confidence: Confidence
    negative = signed.lt(0).fillna(False) if signed is not None else None
    n_negative = int(negative.sum()) if negative is not None else 0
    if order_ids is None:
        if n_negative:
            return Guess(
                None,
                "medium",
                f"{n_negative:,} sampled lines are negative but there is no order id to mark "
                "them: cleaning quarantines them (non_positive_*); no prefix possible",
            )
        return Guess(None, "high", "no order id column and no negative line: no cancellations")
    ids = order_ids.str.strip()
    prefixes = prefix_of(ids)
    counts = prefixes.value_counts()
    usual = str(counts.index[0])
    for prefix, count in counts.items():
        prefix = str(prefix)
        if prefix == usual or count > 0.5 * len(ids):
            continue
        # the prefix must not also start the usual ids (C1.. among CR1..)
        marked = ids.str.startswith(prefix)
        if int(marked.sum()) != int(count):
            continue
        evidence = f'{count:,} of {len(ids):,} sampled order ids start with "{prefix}"'
        evidence += f' (the others with "{usual}")' if usual else " (the others with a digit)"
        if negative is not None:
            both = int((marked & negative).sum())
            evidence += f"; {percent(both, int(count))} of those lines are negative"
            if n_negative > both:
                evidence += (
                    f"; {n_negative - both:,} other negative lines will be quarantined "
                    "(non_positive_*)"
                )
            confidence = "high" if both >= 0.9 * count else "medium"
        else:
            confidence = "medium"
        return Guess(prefix, confidence, evidence)
    evidence = "no order-id prefix sets a minority of ids apart"
    if n_negative:
        evidence += (
            f"; {n_negative:,} sampled lines are negative without a marker: cleaning "
            "quarantines them (non_positive_*)"
        )
        return Guess(None, "medium", evidence)
    return Guess(None, "high", evidence + " and no line is negative: no cancellations")


def guess_return_link(order_ids: pd.Series, prefix: str | None) -> Guess[str]:
    """``strip_prefix`` when a cancellation id minus its prefix is a sale's id, else ``none``."""
    if prefix is None:
        return Guess("none", "high", "no cancellation prefix")
    ids = order_ids.str.strip()
    returns = ids[ids.str.startswith(prefix)].str.removeprefix(prefix)
    sales = set(ids[~ids.str.startswith(prefix)])
    if returns.empty:
        return Guess("none", "low", "no cancellation in the sample")
    linked = int(returns.isin(sales).sum())
    evidence = f"{linked:,} of {len(returns):,} sampled cancellation ids minus {prefix!r} are sales"
    if linked >= 0.5 * len(returns):
        return Guess("strip_prefix", "medium", evidence)
    return Guess("none", "medium", evidence + " (their own numbers)")


def guess_non_product_codes(
    sku: pd.Series | None, description: pd.Series | None
) -> Guess[tuple[str, ...]]:
    """Stock codes that look like services, not merchandise (postage, fees, manual lines).

    A code counts when it is a known Online Retail non-product code, when its description
    says so (postage, fee, ...), or when it has no digit while nearly all codes have one.
    """
    if sku is None:
        return Guess((), "high", "no stock code column")
    codes = sku.str.strip().str.upper()
    with_digit = codes.str.contains(r"\d", regex=True)
    reasons: dict[str, str] = {}
    if with_digit.mean() >= 0.9:
        for code in codes[~with_digit].value_counts().index:
            reasons[str(code)] = "no digit, unlike the product codes"
    for code in codes[codes.isin(list(NON_PRODUCT_CODES))].unique():
        reasons[str(code)] = NON_PRODUCT_CODES[str(code)]
    if description is not None:
        service = description.str.fullmatch(SERVICE_WORDS).fillna(False).astype(bool)
        for code in codes[service].value_counts().index:
            reasons.setdefault(str(code), "its description names a service")
    if not reasons:
        return Guess((), "medium", "no stock code looks like a service (postage, fee, manual)")
    chosen = tuple(sorted(reasons)[:MAX_CODES])
    said = "; ".join(f"{code}: {reasons[code]}" for code in chosen[:6])
    more = f" (+{len(chosen) - 6} more)" if len(chosen) > 6 else ""
    return Guess(chosen, "low", f"{said}{more}; check them: they are excluded from spend")
