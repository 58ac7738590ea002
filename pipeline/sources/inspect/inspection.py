"""One inspection from files to the proposed YAML and the printed summary (no writing).

:func:`inspect_export` samples each file, proposes the config, validates it, reads the whole
export with it and suggests the run settings; the CLI adapter writes the YAML and prints
:attr:`Inspection.summary_text`.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.config import Params
from pipeline.errors import InputError
from pipeline.sources.inspect.cadence import Cadence, suggest_cadence
from pipeline.sources.inspect.proposal import (
    Proposal,
    check_name,
    file_stem,
    propose,
    source_name,
)
from pipeline.sources.inspect.render import render_yaml
from pipeline.sources.inspect.sample import SAMPLE_RECORDS, sample_file
from pipeline.sources.inspect.summary import Summary, summarise


@dataclass(frozen=True)
class Inspection:
    """The proposal, its YAML text, the export's figures and the suggested settings."""

    proposal: Proposal
    yaml_text: str
    summary: Summary
    cadence: Cadence
    data_input: str  # what data.input should say


def data_input(paths: list[Path], cwd: Path) -> str:
    """``data.input`` for these files: the file itself, or the folder that holds them all.

    Relative to ``cwd`` (the project, where DVC runs) when inside it, else absolute.
    """
    if len(paths) == 1:
        target = paths[0]
    else:
        folders = {path.resolve().parent for path in paths}
        if len(folders) > 1:
            raise InputError(
                "the files are in different folders; data.input names one folder for several "
                "tables: put them in one"
            )
        target = folders.pop()
    resolved = target.resolve()
    if resolved.is_relative_to(cwd.resolve()):
        return os.path.relpath(resolved, cwd.resolve())
    return str(resolved)


def inspect_export(
    paths: list[Path],
    name: str | None,
    forced: dict[str, dict[str, str | None]],
    cwd: Path,
    params: Params,
    sample_records: int = SAMPLE_RECORDS,
) -> Inspection:
    """Sample, propose, validate and summarise an export; nothing is written.

    The run settings are those the features stage will choose under ``params``.
    """
    if name is not None:
        check_name(name)
    samples = [sample_file(path, str(path), sample_records) for path in paths]
    proposal = propose(samples, name or "", forced)
    if name is None:  # named after the transactions file
        stem = file_stem(proposal.transactions.sample.path)
        proposal = dataclasses.replace(proposal, name=source_name(stem))
        name = proposal.name
    config = proposal.source_config(f"configs/sources/{name}.yaml (proposed)")
    where = data_input(paths, cwd)
    summary = summarise(config, [cwd / where if not Path(where).is_absolute() else Path(where)])
    main = proposal.transactions.sample
    sampled = f"{', '.join(s.path.name for s in samples)} ({len(main.rows):,} sampled records"
    sampled += f" of {summary.rows.get('transactions', summary.lines):,})"
    return Inspection(
        proposal,
        render_yaml(proposal, sampled),
        summary,
        suggest_cadence(summary.first, summary.last, summary.gaps, params),
        where,
    )


def run_lines(inspection: Inspection, out: Path) -> list[str]:
    """Return the command (and params.yaml lines) that run the pipeline on the export.

    Only ``data``: the horizons, step and minimum history are the features stage's own
    choice when params.yaml leaves them null (what :func:`summary_lines` prints).
    """
    name = inspection.proposal.name
    flags = [f"data.source={name}", f"data.input={inspection.data_input}"]
    data: dict[str, object] = {"source": name}
    default = Path("configs/sources") / f"{name}.yaml"
    if out.resolve() != default.resolve():
        flags.insert(1, f"data.source_config={out}")
        data["source_config"] = str(out)
    data["input"] = inspection.data_input
    command = " ".join(f"-S {shlex.quote(flag)}" for flag in flags)
    lines = ["run the pipeline on it:", f"  dvc exp run {command}"]
    block = yaml.safe_dump(
        {"data": data}, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    lines.append("or set in params.yaml (then dvc repro):")
    lines += [f"  {line}" for line in block.splitlines()]
    return lines


def summary_lines(inspection: Inspection) -> list[str]:
    """Describe the export as the pipeline will read it, and the suggested settings."""
    s, proposal = inspection.summary, inspection.proposal
    tables = ", ".join(
        f"{table} {tp.sample.path.name} ({s.rows.get(table, 0):,} rows)"
        for table, tp in proposal.tables.items()
    )
    lines = [f"export: {tables}"]
    scanned = f"first {s.lines:,} lines" if s.capped else f"{s.lines:,} transaction lines"
    lines.append(
        f"  {scanned}: {s.usable:,} with a customer id and a timestamp that parse"
        + (f", {s.returns:,} of them cancellations" if s.returns else "")
    )
    order_rule = "" if proposal.transactions.match.column("order_id") else " (one per timestamp)"
    lines.append(
        f"  customers: {s.customers:,}; orders{order_rule}: {s.orders:,} "
        f"({s.orders_per_customer:.1f} per customer, median {s.median_orders:.0f})"
    )
    if s.first is not None and s.last is not None:
        gap = "" if s.median_gap_days is None else f"; median gap {s.median_gap_days:.0f} days"
        lines.append(
            f"  orders from {s.first.date()} to {s.last.date()} ({s.span_days:,} days){gap}"
        )
    c = inspection.cadence
    if c.fits:
        lines.append("the features stage will choose (params left null; set one to override):")
        lines += [f"  {choice.param} = {choice.value}: {choice.why}" for choice in c.choices]
    else:
        lines.append(f"warning: no train / valid / test split fits: {c.problem}")
    guesses = [
        (role, match.guess)
        for tp in proposal.tables.values()
        for role, match in tp.match.matches.items()
    ]
    unsure = [f"{role} ({g.confidence})" for role, g in guesses if g.confidence != "high"]
    if unsure:
        lines.append(f"check: {', '.join(unsure)}")
    lines += [f"warning: {text}" for text in proposal.warnings]
    return lines
