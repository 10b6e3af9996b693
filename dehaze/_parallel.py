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

Changing the thread count while other threads compute
-----------------------------------------------------
The count may be changed at any moment, from any thread:

* each :func:`run_bands` call reads the count once and cuts its bands from that one value;
* the thread pool only ever grows: a larger pool replaces the old one, which is never shut
  down under a running call (its idle threads exit once the last call using it returns);
* a computation that makes several passes over the *same* bands and sizes buffers per
  band from an earlier pass must fix its bands once, either with an explicit, immutable
  :class:`BandPlan` (``plan = band_plan(n)``, then ``run_bands(kernel, n, plan=plan)`` for
  every pass) or by running inside :func:`fixed_threads`, which pins the count for the
  calling thread only.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from dehaze._validate import check_radius

__all__ = ["get_num_threads", "num_threads", "set_num_threads"]

#: Fewest rows or columns in a band: narrower work is not worth a thread.
MIN_BAND = 64

#: Environment variable read once at import for the default thread count.
ENV_VAR = "DEHAZE_NUM_THREADS"


def _available_cpus() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))


def _default_threads() -> int:
    """Thread count from ``$DEHAZE_NUM_THREADS``, else the available CPUs (at most 8).

    A value that is not an integer ≥ 1 is not an error at import (that would make the
    package unusable until the environment is fixed) but a ``RuntimeWarning`` naming the
    variable and the accepted values; the CPU default is used instead.
    """
    env = os.environ.get(ENV_VAR, "")
    default = _available_cpus()
    if not env.strip():
        return default
    try:
        value = int(env)
    except ValueError:
        value = 0
    if value >= 1:
        return value
    warnings.warn(
        f"{ENV_VAR}={env!r} is ignored: accepted values are integers ≥ 1 (or leave it "
        f"unset for the number of available CPUs, at most 8); using {default}",
        RuntimeWarning,
        stacklevel=2,
    )
    return default


_lock = threading.Lock()
_threads = _default_threads()
_executor: ThreadPoolExecutor | None = None
_executor_size = 0
_pinned = threading.local()
#: Persistent pools of an exact size, by (thread name prefix, size): :func:`thread_pool`.
_named_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}


def _forget_pool() -> None:
    """In a forked child: drop the parent's pools, whose threads the child does not have.

    Without this, a child forked after the parent ran bands (or tiles) submits to a pool
    that never starts a thread (it counts the parent's idle ones) and waits forever.
    """
    global _lock, _executor, _executor_size
    _lock = threading.Lock()
    _executor, _executor_size = None, 0
    _named_pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def get_num_threads() -> int:
    """Return the number of threads dehaze's kernels use (the process-wide setting)."""
    return _threads


def set_num_threads(n: int) -> None:
    """Set the number of threads dehaze's kernels use (an integer ≥ 1).

    Safe at any moment: calls already running keep the count they started with.
    """
    global _threads
    _threads = check_radius(n, "n", minimum=1)


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Use ``n`` threads inside a ``with`` block; the previous count is restored after.

    The setting is process-wide (threads started inside the block use it too); calls
    running in other threads are not disturbed by the change.

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


def current_threads() -> int:
    """Return the count :func:`run_bands` uses now: this thread's pin, else the setting."""
    pinned: int | None = getattr(_pinned, "threads", None)
    return _threads if pinned is None else pinned


@contextmanager
def fixed_threads(threads: int | None = None) -> Iterator[int]:
    """Pin the thread count for the calling thread inside a ``with`` block.

    Every :func:`run_bands` of the calling thread inside the block cuts its bands from
    ``threads`` (default: the count read on entry), whatever :func:`set_num_threads` does
    meanwhile (in this or any other thread), so passes over the same ``n`` get the same
    bands. Nested blocks keep the outermost pin. Other threads are not affected. Yields
    the pinned count. ``fixed_threads(1)`` in a worker thread of a pool that already runs
    one task per thread (tiles in parallel) keeps its kernels on that thread.
    """
    outer: int | None = getattr(_pinned, "threads", None)
    if outer is not None:
        yield outer
        return
    _pinned.threads = _threads if threads is None else check_radius(threads, "threads", minimum=1)
    try:
        yield _pinned.threads
    finally:
        _pinned.threads = None


@contextmanager
def serial_bands() -> Iterator[None]:
    """Run the calling thread's bands one after another, in that thread, inside the block.

    The bands are cut exactly as without the block (from the pinned or current count), so
    every result is the same bit for bit; only the hand-over to the pool is skipped. For
    callers that already keep the CPUs busy with one computation per thread (the video
    pipeline dehazes several frames at once). Other threads are not affected.
    """
    outer: bool = getattr(_pinned, "serial", False)
    _pinned.serial = True
    try:
        yield
    finally:
        _pinned.serial = outer


@dataclass(frozen=True)
class BandPlan:
    """An immutable cut of ``range(n)`` into bands, one per thread.

    ``edges`` are the band limits: band ``k`` is ``[edges[k], edges[k + 1])``. Make one
    with :func:`band_plan` and pass it to every :func:`run_bands` pass that must see the
    same bands.
    """

    n: int
    edges: tuple[int, ...]

    @property
    def threads(self) -> int:
        """Number of bands (threads) of the plan."""
        return len(self.edges) - 1

    def bands(self) -> list[tuple[int, int]]:
        """Return the ``(start, stop)`` of each band, in order."""
        return [(self.edges[k], self.edges[k + 1]) for k in range(self.threads)]


def band_plan(n: int, threads: int | None = None) -> BandPlan:
    """Cut ``range(n)`` into bands for ``threads`` threads (default: the current count).

    Bands have at least :data:`MIN_BAND` elements (so fewer threads than asked may be
    planned) and differ in size by at most one.
    """
    n = check_radius(n, "n", minimum=0)
    count = current_threads() if threads is None else check_radius(threads, "threads", minimum=1)
    bands = max(1, min(count, n // MIN_BAND))
    return BandPlan(n, tuple(n * k // bands for k in range(bands + 1)))


def _pool(size: int) -> ThreadPoolExecutor:
    """Return a pool of at least ``size`` workers; pools grow, never shut down in use.

    A larger pool replaces the current one without shutting it down: a call that took
    the old pool keeps submitting to it, and its workers exit once it is unreferenced.
    """
    global _executor, _executor_size
    with _lock:
        if _executor is None or _executor_size < size:
            _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="dehaze")
            _executor_size = size
        return _executor


def thread_pool(name: str, size: int) -> ThreadPoolExecutor:
    """Return the process's pool of exactly ``size`` threads named ``name`` (made once).

    For callers that run one task per thread themselves (tiles in parallel): starting
    threads for every call costs more than small tasks. Such tasks must not submit to a
    pool they run in; the pools are dropped in a forked child with the band pool.
    """
    with _lock:
        pool = _named_pools.get((name, size))
        if pool is None:
            pool = _named_pools[(name, size)] = ThreadPoolExecutor(size, thread_name_prefix=name)
        return pool


def run_bands(kernel: Callable[[int, int], None], n: int, *, plan: BandPlan | None = None) -> None:
    """Call ``kernel(start, stop)`` on one band of ``range(n)`` per thread, in parallel.

    The bands are ``plan``'s when given (it must be a plan of the same ``n``), else a plan
    made from the thread count read once, at the start of this call.
    """
    if plan is None:
        plan = band_plan(n)
    elif plan.n != n:
        raise ValueError(f"plan cuts range({plan.n}), but run_bands was asked for range({n})")
    bands = plan.bands()
    if len(bands) == 1:
        kernel(0, n)
        return
    if getattr(_pinned, "serial", False):  # inside serial_bands(): the same bands, in turn
        for start, stop in bands:
            kernel(start, stop)
        return
    pool = _pool(len(bands) - 1)
    # the calling thread takes the first band itself: one hand-over fewer per call
    futures = [pool.submit(kernel, start, stop) for start, stop in bands[1:]]
    try:
        kernel(*bands[0])
    finally:
        for future in futures:
            future.result()
