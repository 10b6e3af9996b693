"""The one Numba configuration every kernel is compiled with.

All ``@njit`` code in :mod:`dehaze._kernels` is decorated with :func:`jit` so that cache
policy and floating-point flags live in one place:

* ``cache=True``: compiled machine code is written next to the module (``__pycache__``) so
  a second process does not pay the compile cost again. Kernels are serial, which is what
  makes caching safe (cached ``parallel=True`` kernels have crashed when the thread count
  changed between processes). Numba checks only the defining file's timestamp: the guided
  filter kernels inline the box-filter helpers of ``boxfilter.py``, and ClearHaze's kernel
  (``clear.py``) the luma row of ``guided.py``, so after editing either file in a source
  checkout delete ``dehaze/_kernels/__pycache__/*.nb[ic]``.
* ``fastmath``: only flags that keep NaN/inf semantics (no ``nnan``/``ninf``): inputs are
  validated, but NaN checks must still work inside kernels.
* ``error_model="numpy"``: division by zero gives inf/NaN like NumPy instead of raising,
  which lets Numba vectorise divisions.
* ``nogil=True``: kernels release the GIL, so callers may run them from threads.

Wrappers pass C-contiguous float32 or float64 arrays; the kernels that read the image
itself (min filter rows, luma, atmospheric light, recovery) also take its uint8/uint16
pixels directly, with the 1 / dtype-max factor as an argument, so no float copy of the
image is made. Each kernel therefore exists in at most four compiled versions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])

#: Fast-math flags that leave NaN and inf handling intact.
FASTMATH_FLAGS = frozenset({"nsz", "arcp", "contract", "afn"})

JIT_OPTIONS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "fastmath": set(FASTMATH_FLAGS),
    "error_model": "numpy",
}


def jit(func: F) -> F:
    """Compile ``func`` with the package's single Numba configuration."""
    return numba.njit(**JIT_OPTIONS)(func)  # type: ignore[no-any-return]
