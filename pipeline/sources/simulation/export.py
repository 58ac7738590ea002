"""Turn the simulated history into export-shaped tables: invoice lines, feedback, customers.

Every column is built with numpy over all orders at once. Text columns are plain strings so
that the CSV bytes depend only on the seed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipeline.sources.simulation.dynamics import CHANNELS, REGIONS, History, Population
from pipeline.sources.simulation.mechanisms import Effects

IntArray = npt.NDArray[np.int64]

N_PRODUCTS = 500
FIRST_INVOICE = 500_000
PREFERRED_CHANNEL_SHARE = 0.8
RETURN_LINE_SHARE = 0.6  # each further line of a returned order goes back with this probability
_DAY_S = 86_400
_ADJECTIVES = ("VINTAGE", "CLASSIC", "SMALL", "LARGE", "RUSTIC", "MODERN", "PAINTED", "GLASS")
_COLOURS = ("RED", "WHITE", "BLUE", "PINK", "GREEN", "IVORY", "BLACK", "GOLD", "GREY", "TEAL")
_NOUNS = (
    "MUG", "CANDLE HOLDER", "LANTERN", "TEA TOWEL", "CUSHION COVER", "PHOTO FRAME", "JUG",
    "STORAGE TIN", "NOTEBOOK", "BUNTING", "DOORSTOP", "CAKE STAND", "WALL CLOCK", "VASE",
)  # fmt: skip
TRANSACTION_COLUMNS = (
    "invoice", "sku", "description", "quantity", "unit_price", "invoice_ts", "customer_id",
    "channel", "discount", "promised_date", "delivered_date",
)  # fmt: skip


def catalog(rng: np.random.Generator) -> pd.DataFrame:
    """Products: numeric stock codes, descriptions, unit prices and a long-tailed popularity."""
    words = rng.integers(0, [len(_ADJECTIVES), len(_COLOURS), len(_NOUNS)], size=(N_PRODUCTS, 3))
    description = [f"{_ADJECTIVES[a]} {_COLOURS[c]} {_NOUNS[n]}" for a, c, n in words.tolist()]
    popularity = 1.0 / (np.arange(N_PRODUCTS) + 10.0)
    return pd.DataFrame(
        {
            "sku": (rng.choice(90_000, N_PRODUCTS, replace=False) + 10_000).astype(str),
            "description": description,
            "price": np.maximum(np.round(rng.lognormal(np.log(5.0), 0.8, N_PRODUCTS), 2), 0.29),
            "weight": popularity / popularity.sum(),
        }
    )


def timestamps(start: dt.date, seconds: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """``YYYY-MM-DD HH:MM:SS`` strings for seconds since the extract start (UTC)."""
    instants = np.datetime64(start, "s") + seconds.astype("timedelta64[s]")
    if len(instants) == 0:  # np.strings.replace fails on empty input (numpy 2.4)
        return np.array([], dtype="<U19")
    return np.strings.replace(np.datetime_as_string(instants, unit="s"), "T", " ")


def dates(start: dt.date, days: IntArray) -> npt.NDArray[np.str_]:
    """``YYYY-MM-DD`` strings for days since the extract start."""
    return np.datetime_as_string(np.datetime64(start, "D") + days.astype("timedelta64[D]"))


def _time_of_day(n: int, rng: np.random.Generator) -> IntArray:
    """Seconds after midnight: shopping hours, busiest in the afternoon."""
    hour = np.clip(np.round(rng.normal(14.0, 3.5, n)), 7, 22).astype(np.int64)
    return hour * 3600 + rng.integers(0, 3600, n)


def basket_lines(
    products: pd.DataFrame,
    mean_basket: npt.NDArray[np.float64],
    effects: Effects,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray, npt.NDArray[np.float64], IntArray]:
    """Draw the sale lines of orders whose customers have these mean baskets (one per order).

    Return each line's order (index into ``mean_basket``, lines grouped by order), product,
    unit price and quantity. An order's gross amount is the sum of quantity x price over its
    lines: the one amount model of the export, also used by
    :mod:`pipeline.sources.simulation.truth`.
    """
    n_orders = len(mean_basket)
    sigma = effects.order_value_sigma
    value = mean_basket * rng.lognormal(-sigma * sigma / 2, sigma, n_orders)
    # lines: 1 + Poisson(1.5) products per order, no product twice in one order
    n_lines = np.minimum(1 + rng.poisson(1.5, n_orders), 8)
    line_order = np.repeat(np.arange(n_orders), n_lines)
    sku = rng.choice(N_PRODUCTS, size=len(line_order), p=products["weight"].to_numpy())
    keep = np.sort(np.unique(line_order * N_PRODUCTS + sku, return_index=True)[1])
    line_order, sku = line_order[keep], sku[keep]
    price = products["price"].to_numpy()[sku]
    quantity = np.clip(np.round(value[line_order] / n_lines[line_order] / price), 1, 200).astype(
        np.int64
    )
    return line_order, sku, price, quantity


def transactions(
    pop: Population, hist: History, effects: Effects, rng: np.random.Generator
) -> pd.DataFrame:
    """Invoice lines of every order and of every return (``C`` invoices, negative quantity)."""
    start, n_days = hist.start, hist.n_days
    products = catalog(rng)
    n_orders = len(hist.order_day)
    cust = hist.order_customer
    order_s = hist.order_day * _DAY_S + _time_of_day(n_orders, rng)
    other = rng.integers(0, len(CHANNELS), n_orders)
    channel = np.where(
        rng.random(n_orders) < PREFERRED_CHANNEL_SHARE, pop.preferred_channel[cust], other
    )
    line_order, sku, price, quantity = basket_lines(products, pop.mean_basket[cust], effects, rng)
    delivered_day = hist.order_day + hist.promised_days + hist.late_days
    depth = hist.promo_depth[hist.order_day][line_order]
    discount = np.round(depth * quantity * price, 2)
    first_line = np.r_[True, line_order[1:] != line_order[:-1]]

    # returns: the first line of a returned order, and each other line with some probability
    return_day = delivered_day + 1 + rng.poisson(6.0, n_orders)
    returning = hist.returned & (return_day < n_days)
    return_s = return_day * _DAY_S + _time_of_day(n_orders, rng)
    back = returning[line_order] & (first_line | (rng.random(len(line_order)) < RETURN_LINE_SHARE))

    # one invoice number sequence in time order; returns share it with a C prefix
    event_s = np.concatenate([order_s, return_s[returning]])
    is_return = np.r_[np.zeros(n_orders, bool), np.ones(int(returning.sum()), bool)]
    rank = np.empty(len(event_s), dtype=np.int64)
    rank[np.lexsort((np.arange(len(event_s)), event_s))] = np.arange(len(event_s))
    number = (FIRST_INVOICE + rank).astype("U8")
    invoice = np.where(is_return, np.strings.add("C", number), number)
    del number
    event_of_order = np.full(n_orders, -1, dtype=np.int64)
    event_of_order[returning] = n_orders + np.arange(int(returning.sum()))

    sale_event = line_order
    ret_lines = np.flatnonzero(back)
    ret_event = event_of_order[line_order[ret_lines]]
    event = np.concatenate([sale_event, ret_event])
    src = np.concatenate([np.arange(len(line_order)), ret_lines])
    sign = np.where(np.arange(len(event)) < len(line_order), 1, -1)
    order_of_line = line_order[src]
    order_idx = np.lexsort((np.arange(len(event)), rank[event]))
    event, src, sign, order_of_line = (
        event[order_idx],
        src[order_idx],
        sign[order_idx],
        order_of_line[order_idx],
    )
    is_sale = sign > 0
    del line_order, first_line, back, depth, sale_event, ret_lines, ret_event, order_idx

    # build the columns one by one, freeing line-level intermediates (matters at 10x size)
    columns: dict[str, Any] = {"invoice": _categorical(invoice, event, distinct=True)}
    del invoice
    seconds, event_second = np.unique(event_s, return_inverse=True)
    columns["invoice_ts"] = _categorical(
        timestamps(start, seconds), event_second[event], distinct=True
    )
    del seconds, event_second, event
    line_sku = sku[src]
    columns["sku"] = _categorical(products["sku"].to_numpy(), line_sku)
    columns["description"] = _categorical(products["description"].to_numpy(), line_sku)
    del line_sku, sku
    columns["quantity"] = sign * quantity[src]
    columns["unit_price"] = price[src]
    columns["discount"] = np.where(is_sale, discount[src], 0.0)
    del sign, quantity, price, discount, src
    columns["customer_id"] = _categorical(pop.customer_id.astype(str), cust[order_of_line])
    columns["channel"] = _categorical(np.asarray(CHANNELS), channel[order_of_line])
    calendar = np.append(dates(start, np.arange(n_days + 32)), "")  # "" = no date (code -1)
    promised_day = hist.order_day + hist.promised_days
    delivered_code = np.where(delivered_day < n_days, delivered_day, -1)
    columns["promised_date"] = _categorical(
        calendar, np.where(is_sale, promised_day[order_of_line], -1)
    )
    columns["delivered_date"] = _categorical(
        calendar, np.where(is_sale, delivered_code[order_of_line], -1)
    )
    return pd.DataFrame(columns, columns=list(TRANSACTION_COLUMNS))


def _categorical(
    values: npt.NDArray[np.str_], codes: npt.NDArray[np.int64], distinct: bool = False
) -> pd.Categorical:
    """``values[codes]`` stored once per distinct value (millions of lines, few distinct texts).

    ``distinct=True`` says ``values`` has no repeats, which saves sorting millions of strings.
    """
    if not distinct:
        values, inverse = np.unique(values, return_inverse=True)
        codes = inverse[codes]
    return pd.Categorical.from_codes(codes, categories=pd.Index(values, dtype=object))


def feedback(
    pop: Population, hist: History, effects: Effects, rng: np.random.Generator
) -> pd.DataFrame:
    """Reviews, surveys, NPS answers (noisy readings of satisfaction) and complaints."""
    start, n_days = hist.start, hist.n_days
    n = len(hist.order_day)
    s = hist.satisfaction_after
    late = hist.late_days > 0
    delivered_s = (hist.order_day + hist.promised_days + hist.late_days) * _DAY_S
    e = effects
    review_p = np.where(hist.problem, e.review_prob_problem, e.review_prob)
    review = e.review_intercept + e.review_slope * s + e.review_problem_shift * hist.problem
    review = review + e.review_late_shift * late + rng.normal(0.0, e.review_noise, n)
    survey = e.survey_intercept + e.survey_slope * s + rng.normal(0.0, e.survey_noise, n)
    nps = e.nps_intercept + e.nps_slope * s + rng.normal(0.0, e.nps_noise, n)
    hours = np.round(
        rng.lognormal(np.log(e.resolution_hours_median), e.resolution_hours_sigma, n), 1
    )
    u = rng.random((n, 3))
    order_s = hist.order_day * _DAY_S
    parts = [
        ("review", u[:, 0] < review_p, delivered_s + rng.integers(0, 7 * _DAY_S, n), review, 5),
        (
            "survey",
            u[:, 1] < e.survey_prob,
            delivered_s + rng.integers(_DAY_S, 14 * _DAY_S, n),
            survey,
            5,
        ),
        ("nps", u[:, 2] < e.nps_prob, order_s + rng.integers(_DAY_S, 30 * _DAY_S, n), nps, 10),
        ("complaint", hist.complaint, delivered_s + rng.integers(0, 3 * _DAY_S, n), None, 0),
    ]
    keep_s, keep_i, kinds, scores = [], [], [], []
    for kind, chosen, seconds, reading, top in parts:
        take = np.flatnonzero(chosen & (seconds < n_days * _DAY_S))
        keep_s.append(seconds[take])
        keep_i.append(take)
        kinds.append(np.full(len(take), kind))
        low = 0 if top == 10 else 1
        scores.append(
            np.full(len(take), np.nan)
            if reading is None
            else np.clip(np.round(reading[take]), low, top)
        )
    seconds_all, order_all = np.concatenate(keep_s), np.concatenate(keep_i)
    kind_all, score_all = np.concatenate(kinds), np.concatenate(scores)
    customer_all = hist.order_customer[order_all]
    rank = np.lexsort((kind_all, customer_all, seconds_all))
    seconds_all, order_all = seconds_all[rank], order_all[rank]
    kind_all, score_all, customer_all = kind_all[rank], score_all[rank], customer_all[rank]
    complaint = kind_all == "complaint"
    resolved = hist.resolved[order_all]
    return pd.DataFrame(
        {
            "customer_id": pop.customer_id[customer_all].astype(str),
            "feedback_ts": timestamps(start, seconds_all),
            "kind": kind_all,
            "score": pd.array(np.where(complaint, np.nan, score_all), dtype="Int64"),
            "resolved": np.where(complaint, np.where(resolved, "true", "false"), ""),
            "resolution_hours": np.where(complaint & resolved, hours[order_all], np.nan),
        }
    )


def customers(pop: Population, start: dt.date) -> pd.DataFrame:
    """Build the customer attributes as a CRM export has them, sorted by id."""
    order = np.argsort(pop.customer_id, kind="stable")
    return pd.DataFrame(
        {
            "customer_id": pop.customer_id[order].astype(str),
            "signup_date": dates(start, pop.signup_day[order]),
            "loyalty_member": np.where(pop.member[order], "true", "false"),
            "region": np.asarray(REGIONS)[pop.region[order]],
        }
    )


def ground_truth(pop: Population, hist: History) -> pd.DataFrame:
    """Per customer: true dropout date, latent traits and what the customer went through."""
    n = len(pop.customer_id)
    order = np.argsort(pop.customer_id, kind="stable")

    def count(flags: npt.NDArray[np.bool_]) -> IntArray:
        return np.bincount(hist.order_customer[flags], minlength=n).astype(np.int64)

    every = np.ones(len(hist.order_day), dtype=bool)
    origin = pd.Timestamp(hist.start, tz="UTC")
    signup = pd.Series(origin + pd.to_timedelta(pop.signup_day, unit="D"))
    dropout = pd.Series(origin + pd.to_timedelta(np.maximum(hist.dropout_day, 0), unit="D"))
    dropout = dropout.where(hist.dropout_day >= 0)
    columns = {
        "customer_id": pd.array(pop.customer_id.astype(str), dtype="string"),
        "signup_date": pd.Series(signup).astype("datetime64[us, UTC]"),
        "existing_at_start": pop.existing,
        "dropout_date": dropout.astype("datetime64[us, UTC]"),
        "loyalty_member": pop.member,
        "region": pd.array(np.asarray(REGIONS)[pop.region], dtype="string"),
        "preferred_channel": pd.array(np.asarray(CHANNELS)[pop.preferred_channel], dtype="string"),
        "orders_per_year": pop.orders_per_year,
        "mean_basket": pop.mean_basket,
        "price_sensitivity": pop.price_sensitivity,
        "satisfaction_baseline": pop.satisfaction_baseline,
        "final_satisfaction": hist.final_satisfaction,
        "n_orders": count(every),
        "n_late": count(hist.late_days > 0),
        "n_problems": count(hist.problem),
        "n_complaints": count(hist.complaint),
        "n_unresolved": count(hist.complaint & ~hist.resolved),
        "n_returned_orders": count(hist.returned),
    }
    return pd.DataFrame(columns).iloc[order].reset_index(drop=True)
