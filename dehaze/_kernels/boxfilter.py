"""Box means in O(N) by running sums accumulated in float64.

A column-sum buffer of one row per quantity is moved down the image (add the row entering
the window, subtract the row leaving it), and each row of column sums is turned into window
sums by a running sum along the row. Cost per pixel is independent of the radius. Windows
are clipped to the image and every mean is normalised by the number of in-image pixels
(He's reference code's rule: ``boxfilter(I, r) ./ boxfilter(ones, r)``).
"""

from __future__ import annotations

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array


@jit
def window_counts(n: int, radius: int) -> Array:
    """Count the in-image samples in the window around each of ``n`` positions."""
    counts = np.empty(n, dtype=np.float64)
    for i in range(n):
        lo = i - radius if i - radius > 0 else 0
        hi = i + radius if i + radius < n - 1 else n - 1
        counts[i] = hi - lo + 1
    return counts


@jit
def row_window_sums(colsum: Array, radius: int, out: Array) -> None:
    """out[q, j] = sum of colsum[q, j - radius : j + radius + 1] (clipped), every row q."""
    n_q, width = colsum.shape
    first = radius if radius < width - 1 else width - 1
    for q in range(n_q):
        acc = 0.0
        for j in range(first + 1):
            acc += colsum[q, j]
        for j in range(width):
            out[q, j] = acc
            enter = j + radius + 1
            leave = j - radius
            if enter < width:
                acc += colsum[q, enter]
            if leave >= 0:
                acc -= colsum[q, leave]


@jit
def add_stack_row(src: Array, row: int, sign: float, colsum: Array) -> None:
    """colsum[q, :] += sign * src[q, row, :] for every plane q of a K×H×W stack."""
    n_q, _, width = src.shape
    for q in range(n_q):
        for j in range(width):
            colsum[q, j] += sign * src[q, row, j]


@jit
def box_mean_stack(src: Array, radius: int, out: Array) -> None:
    """Box mean of every plane of a K×H×W stack into ``out`` (same shape)."""
    n_q, height, width = src.shape
    colsum = np.zeros((n_q, width), dtype=np.float64)
    sums = np.empty((n_q, width), dtype=np.float64)
    count_x = window_counts(width, radius)
    count_y = window_counts(height, radius)
    for i in range(min(radius, height - 1) + 1):
        add_stack_row(src, i, 1.0, colsum)
    for i in range(height):
        row_window_sums(colsum, radius, sums)
        for q in range(n_q):
            for j in range(width):
                out[q, i, j] = sums[q, j] / (count_y[i] * count_x[j])
        if i + radius + 1 < height:
            add_stack_row(src, i + radius + 1, 1.0, colsum)
        if i - radius >= 0:
            add_stack_row(src, i - radius, -1.0, colsum)
