"""What each canonical field looks like: header synonyms and a test of the values.

Synonyms come in a few languages and are compared on a header's words (camelCase and accents
undone, :func:`pipeline.sources.inspect.matching.words`). The value test says how well a
column's values fit the role (0 = not at all): an id repeats and has no blanks, a timestamp
parses under one format, an amount is a number, an order id belongs to one customer.
:mod:`pipeline.sources.inspect.matching` puts the two together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from pipeline.cleaning.parsing import FALSE_WORDS, TRUE_WORDS
from pipeline.cleaning.satisfaction import KINDS
from pipeline.sources.inspect.values import Profile

Fit = Callable[[Profile, "Context"], float]


@dataclass(frozen=True)
class Context:
    """What a value test may look at beyond its own column."""

    table: str
    rows: pd.DataFrame
    customer: str | None = None


@dataclass(frozen=True)
class Role:
    """A canonical field: its synonyms, words that rule a header out, and its value test."""

    name: str
    synonyms: tuple[str, ...]
    fit: Fit
    avoid: tuple[str, ...] = ()
    # Found by its values alone when no header matches (required roles only).
    by_values: bool = False


def _not_time(p: Profile) -> bool:
    return p.timestamp is None


def _customer(p: Profile, ctx: Context) -> float:
    if not _not_time(p) or p.idlike < 0.95 or p.fraction > 0.02 or p.filled == 0:
        return 0.0
    if ctx.table == "customers":
        return 1.0 if p.distinct >= 0.98 * p.filled else 0.2
    if p.distinct < 2:
        return 0.0
    return 0.5 + 0.5 * min(max(p.repeats - 1.0, 0.0) / 0.5, 1.0)


def _order(p: Profile, ctx: Context) -> float:
    if not _not_time(p) or p.idlike < 0.95 or p.fraction > 0.02 or ctx.customer is None:
        return 0.0
    pairs = ctx.rows[[p.name, ctx.customer]].dropna().drop_duplicates()
    if pairs.empty:
        return 0.0
    per_order = pairs.groupby(p.name, observed=True)[ctx.customer].size()
    single = float((per_order == 1).mean())
    return single if single >= 0.98 else 0.0


def _timestamp(p: Profile, ctx: Context) -> float:
    return 0.0 if p.timestamp is None else 1.0


def _number(p: Profile, ctx: Context) -> float:
    if not _not_time(p) or p.numeric < 0.98:
        return 0.0
    return 0.6 + 0.4 * (p.fraction > 0)


def _quantity(p: Profile, ctx: Context) -> float:
    if not _not_time(p) or p.numeric < 0.98 or p.integer < 0.9:
        return 0.0
    return 1.0 if float(p.numbers.abs().median()) < 1000 else 0.3


def _price(p: Profile, ctx: Context) -> float:
    if not _not_time(p) or p.numeric < 0.98 or p.negative > 0.01:
        return 0.0
    return 0.6 + 0.4 * (p.fraction > 0)


def _non_negative(p: Profile, ctx: Context) -> float:
    return 1.0 if _not_time(p) and p.numeric >= 0.98 and p.negative == 0 else 0.0


def _code(p: Profile, ctx: Context) -> float:
    return 1.0 if _not_time(p) and p.idlike >= 0.9 and p.distinct >= 2 else 0.0


def _text(p: Profile, ctx: Context) -> float:
    return 1.0 if p.letters >= 0.9 and p.blanks_inside >= 0.3 else 0.0


def _category(limit: int) -> Fit:
    def fit(p: Profile, ctx: Context) -> float:
        return 1.0 if _not_time(p) and p.letters >= 0.9 and 1 <= p.distinct <= limit else 0.0

    return fit


def _kind(p: Profile, ctx: Context) -> float:
    share = float(p.values.str.lower().isin(KINDS).mean()) if p.filled else 0.0
    return share if share >= 0.5 else 0.0


def _score(p: Profile, ctx: Context) -> float:
    if not _not_time(p) or p.numeric < 0.98:
        return 0.0
    return 1.0 if p.numbers.min() >= 0 and p.numbers.max() <= 10 else 0.0


def _boolean(p: Profile, ctx: Context) -> float:
    words = (*TRUE_WORDS, *FALSE_WORDS)
    share = float(p.values.str.lower().isin(words).mean()) if p.filled else 0.0
    return 1.0 if share >= 0.9 else 0.0


def synonyms(text: str) -> tuple[str, ...]:
    """Split a ``|``-separated list of header phrases."""
    return tuple(phrase.strip() for phrase in text.split("|"))


CUSTOMER = Role(
    "customer_id",
    synonyms(
        "customer id|customer|customer no|customer number|client|client id|kunde|kunden nr|"
        "kundennummer|kundennr|user id|user|member id|member|cust id|buyer|account|account id|"
        "cliente|shopper|id client|num client"
    ),
    _customer,
    avoid=("name", "email", "mail", "type", "date", "since"),
    by_values=True,
)
DATE_WORDS = synonyms(
    "date|datum|fecha|timestamp|time|ts|zeit|zeitpunkt|data|datetime|created|created at|day|"
    "tag|jour|dia"
)
NOT_ORDER_TIME = synonyms(
    "promised|delivered|delivery|ship|shipped|signup|birth|due|lieferdatum|geliefert|"
    "livraison|expected|registered|since"
)
SATISFACTION = synonyms(
    "review|rating|score|nps|stars|sterne|note|bewertung|satisfaction|csat|avis|puntuacion"
)

TRANSACTIONS = (
    CUSTOMER,
    Role(
        "order_ts",
        DATE_WORDS
        + synonyms(
            "invoice date|order date|purchase date|bestelldatum|buchungsdatum|rechnungsdatum|"
            "date commande|fecha pedido"
        ),
        _timestamp,
        avoid=NOT_ORDER_TIME,
        by_values=True,
    ),
    Role(
        "order_id",
        synonyms(
            "invoice|invoice no|order|order id|order no|order number|facture|rechnung|"
            "rechnungsnr|bestellung|bestellnr|bestellnummer|beleg|belegnr|auftrag|pedido|"
            "commande|receipt|transaction|transaction id|basket|ticket|bon|num facture"
        ),
        _order,
        avoid=("date", "datum", "time", "line", "position"),
    ),
    Role(
        "quantity",
        synonyms("qty|quantity|menge|anzahl|quantite|cantidad|units|pieces|stk|stuck|count|nb"),
        _quantity,
        avoid=("price", "preis", "prix", "amount", "total"),
    ),
    Role(
        "unit_price",
        synonyms(
            "price|unit price|unitprice|prix|preis|precio|unit cost|einzelpreis|prix unitaire|"
            "stuckpreis|each"
        ),
        _price,
        avoid=("total", "sum", "gesamt", "line"),
    ),
    Role(
        "amount",
        synonyms(
            "amount|total|montant|betrag|revenue|sales|value|spend|importe|umsatz|gross|"
            "line total|total price|sum|summe|paid|gesamt|gesamtbetrag|total amount|"
            "order total|order value"
        ),
        _number,
        avoid=("discount", "rabatt", "remise", "unit", "qty", "tax", "vat", "mwst"),
        by_values=True,
    ),
    Role(
        "sku",
        synonyms(
            "sku|stock code|stockcode|product id|product code|product|article|artikel|artikelnr|"
            "artikelnummer|item id|item code|item|ean|upc|code|ref|reference|produit|producto"
        ),
        _code,
        avoid=("description", "name", "desc", "bezeichnung", "libelle", "type", "category"),
    ),
    Role(
        "description",
        synonyms(
            "description|desc|product name|item name|name|libelle|bezeichnung|beschreibung|"
            "title|designation|descripcion|product description"
        ),
        _text,
    ),
    Role(
        "discount",
        synonyms("discount|rabatt|remise|descuento|reduction|coupon|nachlass"),
        _non_negative,
    ),
    Role("channel", synonyms("channel|canal|kanal|sales channel|vertriebskanal"), _category(20)),
    Role("promised_ts", synonyms("promised|promised date|due date|expected delivery"), _timestamp),
    Role(
        "delivered_ts",
        synonyms("delivered|delivery date|delivered date|lieferdatum|date livraison"),
        _timestamp,
    ),
)
FEEDBACK = (
    CUSTOMER,
    Role(
        "feedback_ts",
        DATE_WORDS + synonyms("review date|feedback date|submitted"),
        _timestamp,
        by_values=True,
    ),
    Role(
        "kind",
        synonyms("kind|type|typ|category|feedback type|source|art"),
        _kind,
        by_values=True,
    ),
    Role("score", SATISFACTION, _score),
    Role("resolved", synonyms("resolved|closed|solved|erledigt|resolu"), _boolean),
    Role(
        "resolution_hours",
        synonyms("resolution hours|hours to resolve|resolution time|hours"),
        _non_negative,
    ),
)
CUSTOMERS = (
    CUSTOMER,
    Role(
        "signup_ts",
        synonyms(
            "signup|sign up|signup date|registered|registration|since|joined|created|"
            "member since|customer since|anmeldung|inscription|first seen"
        ),
        _timestamp,
    ),
    Role("loyalty_member", synonyms("loyalty|loyalty member|vip|club|card"), _boolean),
    Role(
        "region",
        synonyms("region|country|land|pays|state|city|area|zone|stadt|ville|pais|province"),
        _category(300),
    ),
)
ROLES = {"transactions": TRANSACTIONS, "feedback": FEEDBACK, "customers": CUSTOMERS}
#: The pseudo-role of a satisfaction score outside a feedback table (reported, not mapped).
SCORE = FEEDBACK[3]

#: Words of a file name that say which table it holds.
TABLE_HINTS = {
    "transactions": synonyms(
        "order|transaction|invoice|sale|purchase|bestell|umsatz|commande|vente|pedido|retail|"
        "receipt|basket|line"
    ),
    "feedback": synonyms(
        "review|feedback|rating|survey|nps|complaint|bewertung|avis|opinion|ticket|support"
    ),
    "customers": synonyms("customer|client|kunde|member|user|account|contact"),
}
