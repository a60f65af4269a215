"""The ``threads`` option of the kernels: Numba's thread count, set for one call and restored."""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager

import numba


def check_threads(threads: object) -> int:
    """``threads`` as an int in ``[1, NUMBA_NUM_THREADS]``."""
    if threads == 1 and type(threads) is int:
        return 1
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"expected an integer threads, got {type(threads).__name__}")
    threads = int(threads)
    most = numba.config.NUMBA_NUM_THREADS
    if not 1 <= threads <= most:
        raise ValueError(f"expected threads in [1, {most}] (NUMBA_NUM_THREADS), got {threads}")
    return threads


@contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """Run the body with ``numba.set_num_threads(threads)``, then restore the previous value."""
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
