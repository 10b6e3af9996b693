"""Kernels of the restoration methods: CAP depth, the tolerance rule, the sky count.

Each takes the band it covers (rows ``[i0, i1)``; columns ``[j0, j1)`` for the sky count,
which uses running box sums), so :func:`dehaze._parallel.run_bands` can run them on
several threads.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (numba resolves np.* inside kernels)

from dehaze._jit import jit
from dehaze._kernels import Array
from dehaze._kernels.boxfilter import (
    band_columns,
    inverse_window_counts,
    row_window_sums,
    snap,
    snap_constant,
)


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


@jit
def _add_sky_row(gray: Array, row: int, sign: float, colsum: Array, c0: int, c1: int) -> None:
    g_row = gray[row, c0:c1]
    cs = colsum[:, c0:c1]
    m = snap_constant(gray)
    for k in range(c1 - c0):
        g = np.float64(g_row[k])
        cs[0, k] += sign * snap(g, m)
        cs[1, k] += sign * snap(g * g, m)


@jit
def sky_count(
    gray: Array,
    rows: int,
    radius: int,
    max_var: float,
    light_luma: float,
    max_distance: float,
    j0: int,
    j1: int,
) -> int:
    """Count the pixels of the top ``rows`` rows, columns [j0, j1), that look like sky.

    A pixel counts when the variance of ``gray`` over its (2r + 1)² window (clipped to
    ``gray``, moments normalised by the in-image count, float64 running sums as in
    ``box_mean_stack``) is below ``max_var`` and its value is within ``max_distance`` of
    ``light_luma``. One pass, no planes of means: the box means of g and g² are formed
    row by row and tested at once.
    """
    height, width = gray.shape
    colsum = np.zeros((2, width), dtype=np.float64)
    sums = np.empty((2, width), dtype=np.float64)
    c0, c1 = band_columns(width, radius, j0, j1)
    inv_count_x = inverse_window_counts(width, radius)
    inv_count_y = inverse_window_counts(height, radius)
    for i in range(min(radius, height - 1) + 1):
        _add_sky_row(gray, i, 1.0, colsum, c0, c1)
    count = 0
    for i in range(rows):
        row_window_sums(colsum, radius, j0, j1, sums)
        inv_y = inv_count_y[i]
        sum_g = sums[0, j0:j1]
        sum_gg = sums[1, j0:j1]
        inv_x = inv_count_x[j0:j1]
        g_row = gray[i, j0:j1]
        for k in range(j1 - j0):
            inv_n = inv_y * inv_x[k]
            mean = sum_g[k] * inv_n
            variance = sum_gg[k] * inv_n - mean * mean
            near = abs(np.float64(g_row[k]) - light_luma) < max_distance
            count += 1 if (variance < max_var) and near else 0
        enter = i + radius + 1
        leave = i - radius
        if enter < height and leave >= 0:
            # one step from the difference, as box_mean_stack moves (same rounding)
            g_in = gray[enter, c0:c1]
            g_out = gray[leave, c0:c1]
            cs = colsum[:, c0:c1]
            m = snap_constant(gray)
            for k in range(c1 - c0):
                g1 = np.float64(g_in[k])
                g0 = np.float64(g_out[k])
                cs[0, k] += snap(g1, m) - snap(g0, m)
                cs[1, k] += snap(g1 * g1, m) - snap(g0 * g0, m)
        elif enter < height:
            _add_sky_row(gray, enter, 1.0, colsum, c0, c1)
        elif leave >= 0:
            _add_sky_row(gray, leave, -1.0, colsum, c0, c1)
    return count
