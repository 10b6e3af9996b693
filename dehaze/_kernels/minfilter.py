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
def min_filter_rows(
    src: Array, scale: Array, radius: int, step: int, out: Array, i0: int, i1: int
) -> None:
    """out[i, jj] = min over ``[j - radius, j + radius]`` of min_c src[i, ·, c] · scale[c].

    j = jj · ``step``: ``out`` has ⌈W / step⌉ columns, every step-th output column from the
    first (the fast guided filter's coarse grid needs no other; the running minima are
    still computed along the whole row).

    ``src`` is H×W×C: the minimum over channels (each scaled, as in dark(I / A)) is taken
    while the row is loaded, so the dark channel needs no separate channel-min pass. Pass
    a H×W×1 view and ``scale = [1]`` for a plain min filter (multiplying by 1 is exact).
    ``src`` may be an unsigned-integer image: ``scale`` (float, with the 1 / dtype-max
    factor folded in) sets the float type of the result.
    """
    width, channels = src.shape[1], src.shape[2]
    k = 2 * radius + 1
    n_blocks = (width + 2 * radius + k - 1) // k
    padded = n_blocks * k
    buf = np.empty(padded, dtype=scale.dtype)
    g = np.empty(padded, dtype=scale.dtype)
    h = np.empty(padded, dtype=scale.dtype)
    for p in range(padded):
        buf[p] = np.inf
    s0 = scale[0]
    s1 = scale[1] if channels > 1 else s0
    s2 = scale[2] if channels > 2 else s0
    line = buf[radius : radius + width]
    tail = g[k - 1 : k - 1 + width]  # g[j + k - 1] for output j
    for i in range(i0, i1):
        # RGB and single planes unrolled: the generic channel loop does not vectorise and
        # costs ~2x the whole row pass (measured at 3840x2160). Every loop below runs over
        # a slice with a counter from 0, so Numba drops its negative-index arithmetic.
        row = src[i]
        if channels == 3:
            for j in range(width):
                line[j] = min(min(row[j, 0] * s0, row[j, 1] * s1), row[j, 2] * s2)
        elif channels == 1:
            for j in range(width):
                line[j] = row[j, 0] * s0
        else:
            for j in range(width):
                m = row[j, 0] * s0
                for c in range(1, channels):
                    m = min(m, row[j, c] * scale[c])
                line[j] = m
        for b in range(n_blocks):
            block = buf[b * k : (b + 1) * k]
            g_b = g[b * k : (b + 1) * k]
            h_b = h[b * k : (b + 1) * k]
            m = block[0]
            g_b[0] = m
            for p in range(1, k):
                m = min(m, block[p])
                g_b[p] = m
            m = block[k - 1]
            h_b[k - 1] = m
            for q in range(1, k):
                p = k - 1 - q
                m = min(m, block[p])
                h_b[p] = m
        out_row = out[i]
        if step == 1:
            for j in range(width):
                out_row[j] = min(h[j], tail[j])
        else:
            for jj in range(out_row.shape[0]):
                j = jj * step
                out_row[jj] = min(h[j], tail[j])


@jit
def min_filter_cols(
    src: Array, radius: int, mul: float, add: float, out: Array, j0: int, j1: int
) -> None:
    """``mul`` · (minimum over ``[i - radius, i + radius]`` along axis 0) + ``add``.

    Columns [j0, j1). The affine step is applied as each output is stored (the
    transmission 1 − ω · dark(I / A) needs no extra pass); ``mul = 1, add = 0`` is the
    plain filter (exact, except that −0.0 comes out as +0.0).

    Vectorised across columns: every inner loop walks a contiguous stretch of a row. Only
    the running minima of the current block (``h``, backwards) and the next block (``g``,
    forwards) are kept, so the buffers are 2·(2r + 1) rows of the band, not the image.
    """
    height = src.shape[0]
    T = type(out[0, 0])
    m_, a_ = T(mul), T(add)
    k = 2 * radius + 1
    n_cols = j1 - j0
    g = np.empty((k, n_cols), dtype=src.dtype)
    h = np.empty((k, n_cols), dtype=src.dtype)
    n_blocks = (height + k - 1) // k  # blocks that contain output rows
    # padded index p corresponds to image row p - radius; rows outside count as +inf
    # g for block 0 is not needed (outputs start at padded index 0, which is in block 0,
    # and use g of indices i + k - 1, in block 0 only for i = 0, where g = h)
    for b in range(n_blocks):
        start = b * k
        end = start + k - 1
        # h: running minima from the end of block b backwards (rows are slices of the
        # band, indexed from 0: no negative-index arithmetic in the inner loops)
        for q in range(k):
            p = end - q
            row = p - radius
            inside = 0 <= row < height
            h_p = h[p - start]
            if p == end:
                if inside:
                    src_row = src[row, j0:j1]
                    for j in range(n_cols):
                        h_p[j] = src_row[j]
                else:
                    for j in range(n_cols):
                        h_p[j] = np.inf
            elif inside:
                src_row = src[row, j0:j1]
                h_next = h[p - start + 1]
                for j in range(n_cols):
                    h_p[j] = min(h_next[j], src_row[j])
            else:
                h_next = h[p - start + 1]
                for j in range(n_cols):
                    h_p[j] = h_next[j]
        # g: running minima of block b + 1 from its start
        nstart = start + k
        for p in range(nstart, nstart + k):
            row = p - radius
            inside = 0 <= row < height
            g_p = g[p - nstart]
            if p == nstart:
                if inside:
                    src_row = src[row, j0:j1]
                    for j in range(n_cols):
                        g_p[j] = src_row[j]
                else:
                    for j in range(n_cols):
                        g_p[j] = np.inf
            elif inside:
                src_row = src[row, j0:j1]
                g_prev = g[p - nstart - 1]
                for j in range(n_cols):
                    g_p[j] = min(g_prev[j], src_row[j])
            else:
                g_prev = g[p - nstart - 1]
                for j in range(n_cols):
                    g_p[j] = g_prev[j]
        # outputs i in block b: window [i, i + k - 1] in padded indices
        for i in range(start, min(end + 1, height)):
            off = i - start
            out_row = out[i, j0:j1]
            h_off = h[off]
            if off == 0:
                for j in range(n_cols):
                    out_row[j] = h_off[j] * m_ + a_
            else:
                g_off = g[off - 1]
                for j in range(n_cols):
                    out_row[j] = min(h_off[j], g_off[j]) * m_ + a_
