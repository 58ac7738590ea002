"""Which column is which canonical field: header names first, value patterns as the check.

A column takes a role only when its values pass the role's test
(:mod:`pipeline.sources.inspect.roles`); a header alone is never enough. A few required roles
may be found by their values alone (low confidence). The customer id is chosen first, because
the order id is the column whose values each belong to one customer; the other roles then take
the best (role, column) pairs in turn.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import pandas as pd

from pipeline.sources.inspect.guess import Confidence, Guess
from pipeline.sources.inspect.roles import ROLES, SCORE, TABLE_HINTS, Context, Role
from pipeline.sources.inspect.values import Profile, describe


def words(header: str) -> tuple[str, ...]:
    """Return a header's lower-case ASCII words: ``CustomerID`` -> (customer, id)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", header)
    spaced = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", " ", spaced)
    plain = unicodedata.normalize("NFKD", spaced).encode("ascii", "ignore").decode("ascii")
    return tuple(re.findall(r"[a-z0-9]+", plain.lower()))


def header_match(header: str, role: Role) -> tuple[float, str]:
    """How well a header names a role (1 exact, 0.8 contains the words, 0.6 inside a word)."""
    found = words(header)
    compact = "".join(found)
    if any(word in found or (len(word) >= 5 and word in compact) for word in role.avoid):
        return 0.0, ""
    best, synonym = 0.0, ""
    for phrase in role.synonyms:
        wanted = tuple(phrase.split())
        joined = "".join(wanted)
        if found == wanted or compact == joined:
            score = 1.0
        elif any(found[i : i + len(wanted)] == wanted for i in range(len(found))):
            score = 0.8
        elif len(joined) >= 4 and joined in compact:
            score = 0.6
        else:
            continue
        if score > best:
            best, synonym = score, phrase
    return best, synonym


@dataclass(frozen=True)
class Match:
    """One column chosen for one role."""

    role: str
    column: str
    guess: Guess[str]


@dataclass(frozen=True)
class TableMatch:
    """The roles found in one file read as one table."""

    table: str
    matches: dict[str, Match]
    unmapped: tuple[str, ...]
    satisfaction: tuple[str, ...] = field(default=())  # columns that look like scores

    def column(self, role: str) -> str | None:
        """Return the column mapped to ``role``, if any."""
        match = self.matches.get(role)
        return None if match is None else match.column


def _confidence(header: float, fit: float) -> Confidence:
    if header >= 0.8 and fit >= 0.9:
        return "high"
    return "medium" if header > 0 and fit >= 0.6 else "low"


def _candidate(role: Role, profile: Profile, ctx: Context) -> tuple[float, Guess[str]] | None:
    fit = role.fit(profile, ctx)
    if fit <= 0:
        return None
    header, synonym = header_match(profile.name, role)
    if header == 0 and not role.by_values:
        return None
    if not header:
        # by values alone, a column of few distinct values (a quantity, a flag) is a poor guess
        fit *= 0.5 + 0.5 * min(profile.distinct / 100, 1.0)
    score = 0.65 * header + 0.35 * fit if header else 0.3 * fit
    said = (
        f'header "{profile.name}" ~ "{synonym}"'
        if header
        else f'no header names it; "{profile.name}" has the values of one'
    )
    evidence = f"{said}; values: {describe(profile)}"
    return score, Guess(profile.name, _confidence(header, fit), evidence)


def match_roles(
    table: str,
    profiles: dict[str, Profile],
    rows: pd.DataFrame,
    forced: dict[str, str | None] | None = None,
) -> TableMatch:
    """Assign columns to the table's roles: the customer id first, then the best pairs.

    ``forced`` maps a role to the column the user named (``--column``), or None for "not in
    the export"; those are taken as given (their values are still described).
    """
    forced = forced or {}
    roles = ROLES[table]
    chosen: dict[str, Match] = {}
    used: set[str] = set()
    for given, column in forced.items():
        if column is not None:
            evidence = f"given with --column; values: {describe(profiles[column])}"
            chosen[given] = Match(given, column, Guess(column, "high", evidence))
            used.add(column)
    customer = roles[0]
    if customer.name not in chosen and customer.name not in forced:
        # a column another role names outright (an invoice number) is not the customer's
        named = {
            name
            for name in profiles
            if (other := max(header_match(name, role)[0] for role in roles[1:])) >= 0.8
            and other > header_match(name, customer)[0]
        }
        best = _best(customer, profiles, Context(table, rows), used | named)
        if best is not None:
            chosen[customer.name] = best
            used.add(best.column)
    ctx = Context(table, rows, chosen[customer.name].column if customer.name in chosen else None)
    pairs: list[tuple[float, int, Match]] = []
    for rank, role in enumerate(roles[1:]):
        if role.name in chosen or role.name in forced:
            continue
        for profile in profiles.values():
            if profile.name in used:
                continue
            found = _candidate(role, profile, ctx)
            if found is not None:
                score, guess = found
                pairs.append((score, -rank, Match(role.name, profile.name, guess)))
    for _, _, match in sorted(pairs, key=lambda item: (item[0], item[1]), reverse=True):
        if match.role not in chosen and match.column not in used:
            chosen[match.role] = match
            used.add(match.column)
    if {"quantity", "unit_price"} <= set(chosen) and "amount" in chosen:
        used.discard(chosen.pop("amount").column)  # quantity x price gives items and spend
    elif _quantity_by_values(chosen, profiles):
        # integers found as the amount beside a named unit price: the quantity it multiplies
        amount = chosen.pop("amount")
        evidence = f"{amount.guess.evidence}; integers beside a unit price: read as quantity"
        chosen["quantity"] = Match("quantity", amount.column, Guess(amount.column, "low", evidence))
    elif len({"quantity", "unit_price"} & set(chosen)) == 1:
        # cleaning multiplies the two: one without the other is no amount
        lone = "quantity" if "quantity" in chosen else "unit_price"
        if lone not in forced:
            used.discard(chosen.pop(lone).column)
    unmapped = tuple(name for name in profiles if name not in used)
    satisfaction = tuple(
        name for name in unmapped if table != "feedback" and header_match(name, SCORE)[0]
    )
    order = [role.name for role in roles]
    ordered = {name: chosen[name] for name in order if name in chosen}
    return TableMatch(table, ordered, unmapped, satisfaction)


def _quantity_by_values(chosen: dict[str, Match], profiles: dict[str, Profile]) -> bool:
    amount = chosen.get("amount")
    return (
        "unit_price" in chosen
        and "quantity" not in chosen
        and amount is not None
        and amount.guess.evidence.startswith("no header")
        and profiles[amount.column].integer >= 0.98
    )


def _best(role: Role, profiles: dict[str, Profile], ctx: Context, used: set[str]) -> Match | None:
    scored = []
    for index, profile in enumerate(profiles.values()):
        if profile.name in used:
            continue
        found = _candidate(role, profile, ctx)
        if found is not None:
            scored.append((found[0], -index, Match(role.name, profile.name, found[1])))
    return max(scored, key=lambda item: (item[0], item[1]))[2] if scored else None


def name_hint(stem: str, table: str) -> bool:
    """Whether a file name says it holds ``table``."""
    compact = "".join(words(stem))
    return any(word in compact for word in TABLE_HINTS[table])
