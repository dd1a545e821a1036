"""Columns worked on threads: numpy's sorts and passes and Arrow's kernels release the GIL.

Example::

    >>> map_on_threads(lambda x: x * 2, [1, 2, 3], threads=2)
    [2, 4, 6]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

__all__ = ["COLUMN_THREADS", "PARALLEL_VALUES", "map_on_threads"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: Threads for a frame's columns, and the values (rows x columns) a frame needs before threads pay
#: for their start.
COLUMN_THREADS: Final = max(1, min(4, os.cpu_count() or 1))
PARALLEL_VALUES: Final = 200_000


def map_on_threads(function: Callable[[_T], _R], items: Sequence[_T], *, threads: int) -> list[_R]:
    """``[function(item) for item in items]`` on up to ``threads`` threads, in the items' order;
    on this thread alone when there is one thread or one item. The first item (in order) whose
    call fails raises, as it would in a loop."""
    workers = min(threads, len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="steward-columns") as pool:
        return list(pool.map(function, items))
