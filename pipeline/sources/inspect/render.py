"""The proposed source config as YAML, with one comment per guess (confidence and evidence).

Written line by line (PyYAML drops comments); :func:`render_yaml` checks that the text reads
back as exactly the proposal's mapping.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import yaml

from pipeline.sources.inspect.proposal import Proposal

WIDTH = 100


_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def _scalar(value: Any) -> str:
    """One YAML flow scalar: plain where that reads back as the same string, else quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str, indent: int) -> list[str]:
    pad = " " * indent + "# "
    return textwrap.wrap(
        text, WIDTH, initial_indent=pad, subsequent_indent=pad + ("  " if indent else "")
    )


def _key(key: str, value: Any, indent: int, note: str | None = None) -> list[str]:
    lines = _comment(note, indent) if note else []
    return [*lines, f"{' ' * indent}{key}: {_scalar(value)}"]


NOT_FOUND = {
    "order_id": "not in the export: cleaning makes one order per customer per timestamp",
}


def render_yaml(proposal: Proposal, sampled: str) -> str:
    """Render the proposal as YAML with a comment on each guess; check that it round-trips."""
    config = proposal.config()
    main = proposal.transactions.sample
    encoding = main.encoding
    lines = [
        *_comment(
            f"Source config proposed by `loyalty inspect` from {sampled}. Each guess says how "
            "sure it is (high / medium / low) and why: check the medium and low ones against "
            "the export before you train on it (docs/sources.md).",
            0,
        ),
        f"name: {_scalar(config['name'])}",
        f"description: {_scalar(config['description'])}",
        *_key(
            "currency",
            config["currency"],
            0,
            "the amounts' ISO 4217 code (EUR, GBP, ...), for the report; null = plain numbers",
        ),
        "dialect:",
        *_key("encoding", encoding.guess.value, 2, encoding.guess.note()),
        *_key(
            "encoding_fallback",
            encoding.fallback,
            2,
            "lines that do not decode are read with this one, with a warning"
            if encoding.fallback
            else "none: lines that do not decode are quarantined (encoding_error)",
        ),
        *_key("delimiter", main.delimiter.value, 2, main.delimiter.note()),
        *_key("quotechar", main.quotechar.value, 2, main.quotechar.note()),
        "tables:",
    ]
    for table, tp in proposal.tables.items():
        lines += [f"  {table}:", *_key("files", [tp.sample.path.name], 4), "    columns:"]
        for match in tp.match.matches.values():
            lines += _key(match.role, match.column, 6, match.guess.note())
        for role, why in NOT_FOUND.items():
            if table == "transactions" and role not in tp.match.matches:
                lines += _comment(f"{role}: {why}", 6)
        if tp.match.unmapped:
            names = ", ".join(json.dumps(n, ensure_ascii=False) for n in tp.match.unmapped)
            lines += _comment(f"not mapped (clean drops them with a warning): {names}", 4)
    rules = config["rules"]
    lines += [
        "rules:",
        *_key("decimal", rules["decimal"], 2, proposal.decimal.note()),
        *_key("timezone", rules["timezone"], 2, proposal.timezone.note()),
        "  date_formats:",
    ]
    for tp in proposal.tables.values():
        for role, guess in tp.formats.items():
            lines += _key(role, guess.value, 4, guess.note())
    lines += [
        *_key("cancellation_prefix", rules["cancellation_prefix"], 2, proposal.cancellation.note()),
        *_key("return_order_id", rules["return_order_id"], 2, proposal.return_link.note()),
        *_key("non_product_codes", rules["non_product_codes"], 2, proposal.non_products.note()),
    ]
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != config:
        raise AssertionError("inspect: the rendered YAML does not read back as the proposal")
    return text
