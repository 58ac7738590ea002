"""Partitions of customers by a stable hash of ``customer_id``, run in a process pool.

A customer's partition depends only on its id (``pandas.util.hash_array`` with a fixed key), so
the same customer lands in the same partition in every run, on every machine, in training and
scoring. Each partition holds all the events of its customers, so partitions are independent.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

HASH_KEY = "loyalty-pipeline"[:16].ljust(16, "0")
T = TypeVar("T")


def partition_of(ids: pd.Index | pd.Series, n_parts: int) -> np.ndarray:
    """Return the partition number (0 .. n_parts - 1) of each customer id."""
    values = np.asarray(pd.Series(ids, dtype="string").to_numpy(dtype=object, na_value=""))
    if n_parts <= 1:
        return np.zeros(values.size, dtype=np.int64)
    hashed = pd.util.hash_array(values, hash_key=HASH_KEY, categorize=False)
    return (hashed % np.uint64(n_parts)).astype(np.int64)


def run_partitions(
    func: Callable[..., T], tasks: Sequence[tuple[Any, ...]], workers: int
) -> list[T]:
    """Run ``func(*task)`` for each task (in a process pool when ``workers > 1``), in order."""
    if workers <= 1 or len(tasks) <= 1:
        return [func(*task) for task in tasks]
    # fork: workers start in milliseconds (forkserver/spawn re-import pandas, seconds on a busy
    # machine) and only run numpy on the arrays they are given, never Arrow or BLAS threads.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
        futures = [pool.submit(func, *task) for task in tasks]
        return [future.result() for future in futures]
