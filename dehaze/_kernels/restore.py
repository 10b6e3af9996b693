"""Per-pixel kernels of the restoration methods: CAP depth and the tolerance rule.

Both take the band ``[i0, i1)`` of rows they fill, so :func:`dehaze._parallel.run_bands`
can run them on several threads.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (numba resolves np.* inside kernels)

from dehaze._jit import jit
from dehaze._kernels import Array


@jit
def cap_depth(
    image: Array, theta0: float, theta1: float, theta2: float, out: Array, i0: int, i1: int
) -> None:
    """Out = θ0 + θ1·v + θ2·s with v = max_c I_c and s = (v − min_c I_c) / v (0 when v = 0)."""
    width, channels = image.shape[1], image.shape[2]
    T = type(image[0, 0, 0])
    zero, b0, b1, b2 = T(0.0), T(theta0), T(theta1), T(theta2)
    for i in range(i0, i1):
        for j in range(width):
            hi = image[i, j, 0]
            lo = hi
            for c in range(1, channels):
                v = image[i, j, c]
                if v > hi:
                    hi = v
                if v < lo:
                    lo = v
            sat = (hi - lo) / hi if hi > zero else zero
            out[i, j] = b0 + b1 * hi + b2 * sat


@jit
def tolerance_rule(
    transmission: Array,
    distance: Array,
    tolerance: float,
    t_floor: float,
    amount: float,
    out: Array,
    i0: int,
    i1: int,
) -> None:
    """Out = 1 − amount · (1 − min(max(K / d, 1) · max(t, t_floor), 1)), d = |I − A| ≥ 0.

    For K > 0 a zero distance gives t = 1 (the limit of the rule as d → 0); ``amount = 1`` is the
    tolerance rule alone.
    """
    width = transmission.shape[1]
    T = type(transmission[0, 0])
    zero, one, k, floor, keep = T(0.0), T(1.0), T(tolerance), T(t_floor), T(amount)
    for i in range(i0, i1):
        for j in range(width):
            t = transmission[i, j]
            if t < floor:
                t = floor
            d = distance[i, j]
            if d < k:  # never for K = 0
                t = one if d <= zero else t * (k / d)
            if t > one:
                t = one
            out[i, j] = t if keep == one else one - keep * (one - t)
