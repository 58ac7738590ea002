"""Reading an export by ranges and rebuilding partitions gives the local splitter's part folders."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from pipeline.engines.export_plan import (
    MIN_RANGE_BYTES,
    count,
    plan_export,
    read_keyed,
    rebuild_partition,
)
from pipeline.engines.partitioning import split_export
from pipeline.engines.records import place_ranges
from pipeline.errors import InputError

REPO = Path(__file__).resolve().parents[3]
SOURCE = str(REPO / "configs" / "sources" / "synthetic.yaml")

TRANSACTIONS = (
    b"invoice,description,customer_id\n"
    + b"".join(f"{i},plain,{i % 7}\n".encode() for i in range(40))
    + b'40,"two\nlines",3\r\n'  # a quoted newline and a CRLF
    + b'41,"a ""quoted"" word",\n'  # no customer id: the no-key partition
    + b'42,"comma, inside",17850.0'  # the last line has no newline
)
FEEDBACK = b"customer_id,kind,score\n" + b"".join(f"{i},review,4\n".encode() for i in range(9))
CUSTOMERS = b"customer_id,region\n"  # header only


def _export(root: Path) -> Path:
    folder = root / "raw"
    folder.mkdir()
    (folder / "transactions.csv").write_bytes(TRANSACTIONS)
    (folder / "feedback.csv").write_bytes(FEEDBACK)
    (folder / "customers.csv").write_bytes(CUSTOMERS)
    return folder


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _as_executors_do(inputs: list[Path], root: Path, n: int, range_bytes: int) -> dict:
    """The Spark engine's steps without Spark: plan, count, read, group, rebuild."""
    plan = plan_export(SOURCE, inputs)
    ranges = plan.ranges(range_bytes)
    placed = place_ranges(ranges, [count(plan, item) for item in ranges])
    keyed = pd.concat([frame for item in placed for frame in read_keyed(plan, item, n)])
    counts = []
    for p in range(n):
        group = keyed[keyed["partition"] == p].sample(frac=1.0, random_state=p)  # any order
        _, partition_counts = rebuild_partition(plan, root, p, group)
        counts.append(partition_counts)
    return {"ranges": len(ranges), "summary": plan.split_summary(counts)}


@pytest.mark.parametrize("range_bytes", [7, 50, MIN_RANGE_BYTES])
def test_ranges_rebuild_the_split_export_byte_for_byte(tmp_path: Path, range_bytes: int) -> None:
    inputs = [_export(tmp_path)]
    split = split_export(SOURCE, inputs, tmp_path / "whole", 3)
    result = _as_executors_do(inputs, tmp_path / "ranged", 3, range_bytes)
    assert _files(tmp_path / "ranged") == _files(tmp_path / "whole")
    assert result["summary"] == split.as_dict()
    assert (result["ranges"] > 3) == (range_bytes < len(TRANSACTIONS))


def test_a_gzip_file_is_read_whole_by_one_range(tmp_path: Path) -> None:
    lone = tmp_path / "transactions.csv.gz"
    lone.write_bytes(gzip.compress(TRANSACTIONS))
    split = split_export(SOURCE, [lone], tmp_path / "whole", 2)
    result = _as_executors_do([lone], tmp_path / "ranged", 2, 7)
    assert result["ranges"] == 1
    assert _files(tmp_path / "ranged") == _files(tmp_path / "whole")
    assert result["summary"] == split.as_dict()


def test_the_plan_holds_headers_only_and_checks_them(tmp_path: Path) -> None:
    plan = plan_export(SOURCE, [_export(tmp_path)])
    assert [f.header for f in plan.files] == [
        b"invoice,description,customer_id\n",
        b"customer_id,kind,score\n",
        b"customer_id,region\n",
    ]
    assert plan.range_bytes_for(cores=2) == MIN_RANGE_BYTES  # a tiny export is not shredded
    (tmp_path / "raw" / "feedback.csv").write_bytes(b"client,kind\n1,review\n")
    with pytest.raises(InputError, match="customer id column 'customer_id' not found"):
        plan_export(SOURCE, [tmp_path / "raw"])
