"""Min filters with a cost independent of the window (van Herk 1992; Gil & Werman 1993).

For a window of ``k = 2r + 1`` samples, the padded line is cut into blocks of ``k``; ``g``
holds running minima from each block's start and ``h`` from each block's end, so the
minimum over any window ``[i, i + k - 1]`` is ``min(h[i], g[i + k - 1])``: three
comparisons per sample whatever ``r``. Samples outside the image count as +inf, i.e. the
window is clipped to the image. Callers pass ``radius <= n - 1`` along the filtered axis
(a larger radius gives the same result).
"""

from __future__ import annotations

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array


@jit
def scaled_channel_min(image: Array, scale: Array, out: Array) -> None:
    """out[i, j] = min_c image[i, j, c] * scale[c] for an H×W×C image."""
    height, width, channels = image.shape
    for i in range(height):
        for j in range(width):
            m = image[i, j, 0] * scale[0]
            for c in range(1, channels):
                v = image[i, j, c] * scale[c]
                if v < m:
                    m = v
            out[i, j] = m


@jit
def min_filter_rows(src: Array, radius: int, out: Array) -> None:
    """Minimum over ``[j - radius, j + radius]`` along each row (axis 1)."""
    height, width = src.shape
    k = 2 * radius + 1
    n_blocks = (width + 2 * radius + k - 1) // k
    padded = n_blocks * k
    buf = np.empty(padded, dtype=src.dtype)
    g = np.empty(padded, dtype=src.dtype)
    h = np.empty(padded, dtype=src.dtype)
    for p in range(padded):
        buf[p] = np.inf
    for i in range(height):
        for j in range(width):
            buf[radius + j] = src[i, j]
        for b in range(n_blocks):
            start = b * k
            m = buf[start]
            g[start] = m
            for p in range(start + 1, start + k):
                v = buf[p]
                if v < m:
                    m = v
                g[p] = m
            end = start + k - 1
            m = buf[end]
            h[end] = m
            for p in range(end - 1, start - 1, -1):
                v = buf[p]
                if v < m:
                    m = v
                h[p] = m
        for j in range(width):
            a = h[j]
            b2 = g[j + k - 1]
            out[i, j] = a if a < b2 else b2


@jit
def min_filter_cols(src: Array, radius: int, out: Array) -> None:
    """Minimum over ``[i - radius, i + radius]`` along each column (axis 0).

    Vectorised across columns: every inner loop walks a contiguous row.
    """
    height, width = src.shape
    k = 2 * radius + 1
    n_blocks = (height + 2 * radius + k - 1) // k
    padded = n_blocks * k
    g = np.empty((padded, width), dtype=src.dtype)
    h = np.empty((padded, width), dtype=src.dtype)
    for b in range(n_blocks):
        start = b * k
        for p in range(start, start + k):
            row = p - radius
            inside = 0 <= row < height
            if p == start:
                for j in range(width):
                    g[p, j] = src[row, j] if inside else np.inf
            else:
                for j in range(width):
                    v = src[row, j] if inside else np.inf
                    m = g[p - 1, j]
                    g[p, j] = v if v < m else m
        end = start + k - 1
        for p in range(end, start - 1, -1):
            row = p - radius
            inside = 0 <= row < height
            if p == end:
                for j in range(width):
                    h[p, j] = src[row, j] if inside else np.inf
            else:
                for j in range(width):
                    v = src[row, j] if inside else np.inf
                    m = h[p + 1, j]
                    h[p, j] = v if v < m else m
    for i in range(height):
        for j in range(width):
            a = h[i, j]
            b2 = g[i + k - 1, j]
            out[i, j] = a if a < b2 else b2
