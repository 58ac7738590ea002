"""An export read where it lies: a tiny plan on the driver, byte ranges read by executors.

The Spark engine's driver never holds the export. :func:`plan_export` lists its files exactly
as the local splitter does (:func:`~pipeline.engines.partitioning.list_export`) and reads only
their header lines; :meth:`ExportPlan.ranges` cuts the bodies into byte ranges
(:mod:`pipeline.engines.records`). On the executors, :func:`read_keyed` turns one range into
frames of keyed records (the local splitter's record rule and
:class:`~pipeline.engines.partitioning.RecordKeys`), and, once they are grouped by partition,
:func:`rebuild_partition` writes them back into the very part folder (files and line sidecars)
that :func:`~pipeline.engines.partitioning.split_export` writes, so that clean reads the same
bytes whichever engine ran. No pyspark here: the functions move frames, Spark moves the frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import MAX_RECORD_BYTES
from pipeline.engines import partitioning, records

#: The columns of a keyed-records frame (Spark DDL).
RECORD_SCHEMA = (
    "partition int, file int, line long, lines int, no_key boolean, record binary, too_long boolean"
)
#: :func:`read_keyed` yields frames of about this many record bytes.
BATCH_BYTES = 16 << 20
#: Range sizes: about two ranges per core, within these bounds.
MIN_RANGE_BYTES = 256 << 10
MAX_RANGE_BYTES = 128 << 20


@dataclass(frozen=True)
class InputFile:
    """What an executor needs to read one export file and rebuild its part files."""

    path: str  # absolute: executors open it
    shown: str  # as given on the command line (the manifest names it so)
    name: str  # the part file inside a partition folder
    header: bytes
    key_index: int
    layout: partitioning.CsvLayout
    size: int
    body_start: int  # offset of the first byte after the header (and a UTF-8 BOM)
    body_line: int  # line number of the body's first line

    @property
    def splittable(self) -> bool:
        """Whether a reader can start at a byte offset (not inside a gzip or UTF-16/32 stream)."""
        return not self.path.endswith(".gz") and self.layout.wide is None


@dataclass(frozen=True)
class ExportPlan:
    """The export as the driver sees it: file list and header lines (tiny)."""

    entries: list[tuple[int, str, str]]
    files: list[InputFile]

    def ranges(self, range_bytes: int) -> list[records.ByteRange]:
        """Cut every file's body into ranges of about ``range_bytes`` (a gzip file is one)."""
        return [
            replace(item, first_line=f.body_line)
            for index, f in enumerate(self.files)
            for item in records.plan_ranges(index, f.body_start, f.size, range_bytes, f.splittable)
        ]

    def range_bytes_for(self, cores: int) -> int:
        """About two ranges per core, never tiny and never huge."""
        body = sum(max(f.size - f.body_start, 0) for f in self.files)
        wanted = math.ceil(body / max(2 * cores, 1))
        return int(min(max(wanted, MIN_RANGE_BYTES), MAX_RANGE_BYTES))

    def split_summary(self, counts: list[dict[str, list[int]]]) -> dict[str, object]:
        """Rebuild the local splitter's input summary from :func:`rebuild_partition` counts."""
        files = [
            partitioning.PartitionStats(
                file=f.shown,
                header_lines=1,
                records=[c["records"][i] for c in counts],
                lines=[c["lines"][i] for c in counts],
                no_key_records=sum(c["no_key"][i] for c in counts),
            )
            for i, f in enumerate(self.files)
        ]
        return partitioning.ExportSplit(len(counts), self.entries, files).as_dict()


def plan_export(
    source_config: str, inputs: list[Path], max_record_bytes: int = MAX_RECORD_BYTES
) -> ExportPlan:
    """List the export's files and read their header lines (the driver's only reads)."""
    listing = partitioning.list_export(source_config, inputs, max_record_bytes)
    files = []
    for f in listing.files:
        header = partitioning.read_header(f.path, f.layout)
        path = Path(f.path).resolve()
        files.append(
            InputFile(
                str(path),
                f.path,
                f.name,
                header.raw,
                header.key_index,
                f.layout,
                path.stat().st_size,
                header.body_start,
                header.body_line,
            )
        )
    return ExportPlan(listing.entries, files)


def count(plan: ExportPlan, item: records.ByteRange) -> tuple[int, int]:
    """Count the quotes and line breaks of one range (the first, cheap pass over the export)."""
    f = plan.files[item.file]
    return records.count_range(f.path, item.start, item.end, f.layout.quote)


def read_keyed(
    plan: ExportPlan, item: records.ByteRange, n_partitions: int
) -> Iterator[pd.DataFrame]:
    """Yield one range's records with their partitions, in frames of :data:`RECORD_SCHEMA`."""
    f = plan.files[item.file]
    keys = partitioning.RecordKeys(f.layout, f.key_index, n_partitions)
    columns = ("partition", "line", "lines", "no_key", "record", "too_long")
    rows: dict[str, list[Any]] = {name: [] for name in columns}
    held = 0
    layout = f.layout
    for line, n_lines, record, too_long, _ in records.read_range(
        f.path, item, f.body_start, layout.dialect.quotechar, layout.max_record_bytes
    ):
        part = -1 if too_long else keys.partition(record, n_lines)
        rows["partition"].append(partitioning.NO_KEY_PARTITION if part < 0 else part)
        rows["line"].append(line)
        rows["lines"].append(n_lines)
        rows["no_key"].append(part < 0)
        rows["record"].append(record)
        rows["too_long"].append(too_long)
        held += len(record)
        if held >= BATCH_BYTES:
            yield _keyed_frame(item.file, rows)
            rows, held = {name: [] for name in columns}, 0
    if rows["record"]:
        yield _keyed_frame(item.file, rows)


def _keyed_frame(file: int, rows: dict[str, list[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "partition": pd.array(rows["partition"], dtype="int32"),
            "file": pd.array([file] * len(rows["record"]), dtype="int32"),
            "line": pd.array(rows["line"], dtype="int64"),
            "lines": pd.array(rows["lines"], dtype="int32"),
            "no_key": pd.array(rows["no_key"], dtype="bool"),
        }
    )
    frame["record"] = pd.Series(rows["record"], dtype=object)
    frame["too_long"] = pd.array(rows["too_long"], dtype="bool")
    return frame


def rebuild_partition(
    plan: ExportPlan, root: str | Path, partition: int, keyed: pd.DataFrame
) -> tuple[list[Path], dict[str, list[int]]]:
    """Write one partition's part folder under ``root`` from its keyed records.

    ``keyed`` may hold the records in any order and rows with ``file < 0`` (markers that keep
    an empty partition in the map). Returns the clean inputs (shaped like ``--input``) and the
    partition's counts per file (records, physical lines, records without a customer id).
    """
    rows = keyed[keyed["file"] >= 0].sort_values(["file", "line"], kind="stable")
    partitioning.write_partition(
        root,
        partition,
        [(f.name, f.header, f.layout) for f in plan.files],
        zip(
            rows["file"].tolist(),
            rows["line"].tolist(),
            rows["lines"].tolist(),
            rows["record"].tolist(),
            rows["too_long"].tolist(),
            strict=True,
        ),
    )
    per_file = rows.groupby("file").agg(
        records=("lines", "size"), lines=("lines", "sum"), no_key=("no_key", "sum")
    )
    counts = {
        name: [int(per_file[name].get(i, 0)) for i in range(len(plan.files))]
        for name in ("records", "lines", "no_key")
    }
    inputs = partitioning.ExportSplit(0, plan.entries, []).part_inputs(root, partition)
    return inputs, counts
