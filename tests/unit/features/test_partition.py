"""Customer partitions: stable across runs, independent of the batch, roughly balanced."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.features.partition import partition_of, run_partitions


def test_partition_depends_only_on_the_id() -> None:
    ids = pd.Index([f"C{i}" for i in range(1000)], dtype="string")
    whole = partition_of(ids, 8)
    # The same ids in another batch (reversed, half of them) land in the same partitions.
    assert (partition_of(ids[::-1], 8)[::-1] == whole).all()
    assert (partition_of(ids[:500], 8) == whole[:500]).all()


def test_partition_numbers_are_pinned() -> None:
    # Pinned values: a change of hash would silently move customers between partitions.
    assert (
        partition_of(pd.Index(["17850", "13047", "C0000001"], dtype="string"), 4).tolist() == PINNED
    )


def test_partitions_are_roughly_balanced() -> None:
    counts = np.bincount(partition_of(pd.Index([str(i) for i in range(20_000)], dtype="string"), 4))
    assert counts.min() > 0.9 * counts.max()


def _square(x: int) -> int:
    return x * x


def test_pool_keeps_task_order() -> None:
    assert run_partitions(_square, [(i,) for i in range(5)], workers=2) == [0, 1, 4, 9, 16]


PINNED = [3, 1, 1]
