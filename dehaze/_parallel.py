"""Run band kernels on a few threads; the thread count is set in one place.

Kernels are compiled with ``nogil=True`` and take the band they fill (``[start, stop)``
rows or columns) as arguments, so bands run truly in parallel: the calling thread runs the
first band and a thread pool the others. The work is cut into one band per thread: banded
box sums pay a halo of ``radius`` columns on each side, which fewer, wider bands keep
small. Min filters, recovery and depth are exact whatever the banding; box and guided
filters start their running sums at each band's first column, so their float64 sums, and
hence results, may differ in the last bits between thread counts (far below float32
resolution).

The default number of threads is ``$DEHAZE_NUM_THREADS`` if set, else the number of CPUs
available to the process (capped at 8). :func:`num_threads` changes it temporarily.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from dehaze._validate import check_radius

__all__ = ["get_num_threads", "num_threads", "set_num_threads"]

#: Fewest rows or columns in a band: narrower work is not worth a thread.
MIN_BAND = 64


def _default_threads() -> int:
    env = os.environ.get("DEHAZE_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError as exc:
            raise ValueError(f"DEHAZE_NUM_THREADS must be a positive integer, got {env!r}") from exc
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))


_lock = threading.Lock()
_threads = _default_threads()
_executor: ThreadPoolExecutor | None = None
_executor_size = 0


def get_num_threads() -> int:
    """Return the number of threads dehaze's kernels use."""
    return _threads


def set_num_threads(n: int) -> None:
    """Set the number of threads dehaze's kernels use (an integer ≥ 1)."""
    global _threads
    _threads = check_radius(n, "n", minimum=1)


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Use ``n`` threads inside a ``with`` block; the previous count is restored after.

    Examples
    --------
    >>> import dehaze
    >>> with dehaze.num_threads(1):
    ...     dehaze.get_num_threads()
    1
    """
    old = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)


def _pool(size: int) -> ThreadPoolExecutor:
    global _executor, _executor_size
    with _lock:
        if _executor is None or _executor_size < size:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="dehaze")
            _executor_size = size
        return _executor


def run_bands(kernel: Callable[[int, int], None], n: int) -> None:
    """Call ``kernel(start, stop)`` on one band of ``range(n)`` per thread, in parallel."""
    threads = max(1, min(get_num_threads(), n // MIN_BAND))
    if threads == 1:
        kernel(0, n)
        return
    edges = [n * k // threads for k in range(threads + 1)]
    pool = _pool(threads - 1)
    # the calling thread takes the first band itself: one hand-over fewer per call
    futures = [pool.submit(kernel, edges[k], edges[k + 1]) for k in range(1, threads)]
    try:
        kernel(edges[0], edges[1])
    finally:
        for future in futures:
            future.result()
