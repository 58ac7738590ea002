"""Partitions of customers by a stable hash of ``customer_id``, run in a process pool.

The one customer hash of the project: ``crc32(normalised customer_id)`` (:func:`customer_hash`),
``mod n`` for a partition (:func:`customer_partition`). It depends only on the id, so a customer
lands in the same partition in every run, on every machine, Python version and engine: the
features stage's process pool and the scorer's split of a raw export
(:mod:`pipeline.engines.partitioning`) use it alike, and the reason-code cut breaks ties with
it (:class:`pipeline.business.ReasonCut`). Each partition holds all the events of its
customers, so partitions are independent.
"""

from __future__ import annotations

import logging
import multiprocessing
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from pipeline import logs

logger = logging.getLogger(__name__)

T = TypeVar("T")


def customer_partition(normalised_id: str, n_parts: int) -> int:
    """Return the partition of one normalised customer id: ``crc32(utf-8 id) mod n_parts``."""
    return zlib.crc32(normalised_id.encode("utf-8")) % n_parts


def customer_hash(ids: Any) -> np.ndarray:
    """Return ``crc32(utf-8 id)`` of each (normalised) customer id, as int64 (missing: "")."""
    values = pd.Series(ids, dtype="string").to_numpy(dtype=object, na_value="")
    return np.fromiter(
        (zlib.crc32(v.encode("utf-8")) for v in values), dtype=np.int64, count=values.size
    )


def partition_of(ids: pd.Index | pd.Series, n_parts: int) -> np.ndarray:
    """Return the partition number (0 .. n_parts - 1) of each (normalised) customer id."""
    if n_parts <= 1:
        return np.zeros(len(ids), dtype=np.int64)
    return customer_hash(ids) % n_parts


# Set only inside pool worker processes (by the pool initializer): the partitions the worker
# was forked with. The parent never sets it, so library calls in the parent stay stateless.
_INHERITED: Sequence[Any] = ()


def _inherit(parts: Sequence[Any], log_queue: Any, log_level: int) -> None:
    global _INHERITED
    _INHERITED = parts
    logs.log_to_queue(log_queue, log_level)


def _call_inherited(func: Callable[..., T], index: int, args: tuple[Any, ...]) -> T:
    return func(_INHERITED[index], *args)


def run_partitions(
    func: Callable[..., T], parts: Sequence[Any], args: tuple[Any, ...], workers: int
) -> list[T]:
    """Run ``func(part, *args)`` for each partition, in order; a process pool when workers > 1.

    The pool starts by fork and hands the partitions to its workers as the initializer's
    arguments, which fork passes by inheritance: the partitions are never pickled, only the
    small task arguments and the results are.
    """
    if workers <= 1 or len(parts) <= 1:
        return [func(part, *args) for part in parts]
    # fork: workers start in milliseconds (forkserver/spawn re-import pandas, seconds on a busy
    # machine) and only run numpy on the arrays they inherit, never Arrow or BLAS threads.
    context = multiprocessing.get_context("fork")
    level = logging.getLogger().getEffectiveLevel()
    with (
        logs.worker_queue(context) as queue,
        ProcessPoolExecutor(
            max_workers=min(workers, len(parts)),
            mp_context=context,
            initializer=_inherit,
            initargs=(parts, queue, level),
        ) as pool,
    ):
        futures = [pool.submit(_call_inherited, func, i, args) for i in range(len(parts))]
        return [future.result() for future in futures]
