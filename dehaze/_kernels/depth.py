"""The element-wise step of the depth map that is worth a kernel: 1 / clip(t, t0, 1)."""

from __future__ import annotations

from dehaze._jit import jit
from dehaze._kernels import Array


@jit
def inverse_clipped(t: Array, t0: float, out: Array, i0: int, i1: int) -> None:
    """Write 1 / clip(t, t0, 1) into ``out`` for rows [i0, i1) (one pass instead of NumPy's two)."""
    T = type(t[0, 0])
    lo, one = T(t0), T(1.0)
    for i in range(i0, i1):
        for j in range(t.shape[1]):
            out[i, j] = one / min(max(t[i, j], lo), one)
