"""Box means in O(N) by running sums accumulated in float64.

A column-sum buffer of one row per quantity is moved down the image (add the row entering
the window, subtract the row leaving it), and each row of column sums is turned into window
sums by a running sum along the row. Cost per pixel is independent of the radius. Windows
are clipped to the image and every mean is normalised by the number of in-image pixels
(He's reference code's rule: ``boxfilter(I, r) ./ boxfilter(ones, r)``).

Kernels that filter along both axes work on a band of output columns ``[j0, j1)`` so that
callers can run bands on several threads; the column sums of a band cover its columns
plus ``radius`` on each side, and a band restarts the running sums at its first column.

**Exact sums for float32 data.** Every term added to a float32 plane's running sums is first
rounded to a multiple of 2^-34 (:func:`snap`: add and subtract a constant, two additions).
Sums of such terms are exact in float64 while they stay below 2^19 (a window of up to
2^19 values in [0, 1]: radius ≤ 361), so a window sum does not depend on where the running
sums started: the result is the same bit for bit whatever the band count (threads), and a
tile processed with enough halo equals the same pixels of the whole image
(:mod:`dehaze.tiles`). The rounding moves a mean by at most 2^-35 ≈ 3e-11, far below
float32's resolution. Float64 planes are summed without it (float64 results agree with the
references to 1e-10, not bit for bit across band counts).
"""

from __future__ import annotations

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array

#: Terms of float32 sums are rounded to multiples of 2^-SNAP_BITS (see the module docstring).
SNAP_BITS = 34
#: x + SNAP32 − SNAP32 rounds x to a multiple of 2^-SNAP_BITS (float64 spacing near SNAP32).
SNAP32 = 1.5 * 2.0 ** (52 - SNAP_BITS)


@jit
def snap_constant(plane: Array) -> float:
    """Return the rounding constant for sums of ``plane``: SNAP32 for float32, else 0."""
    return SNAP32 if plane.itemsize == 4 else 0.0


@jit
def snap(x: float, constant: float) -> float:
    """Round ``x`` to a multiple of 2^-SNAP_BITS (``constant`` = SNAP32), or keep it (0)."""
    return (x + constant) - constant


@jit
def inverse_window_counts(n: int, radius: int) -> Array:
    """1 / (number of in-image samples in the window) around each of ``n`` positions.

    Reciprocals, so the per-pixel normalisation is two multiplications, not a division.
    """
    inverse = np.empty(n, dtype=np.float64)
    for i in range(n):
        lo = i - radius if i - radius > 0 else 0
        hi = i + radius if i + radius < n - 1 else n - 1
        inverse[i] = 1.0 / (hi - lo + 1)
    return inverse


@jit
def _middle_columns(width: int, radius: int, j0: int, j1: int) -> tuple[int, int]:
    """Return [m0, m1), the columns of [j0, j1) whose step has both columns inside.

    Left of m0 no column leaves the window, right of m1 none enters it.
    """
    m0 = min(max(radius, j0), j1)
    m1 = max(min(width - radius - 1, j1), m0)
    return m0, m1


@jit
def _left_part(colsum: Array, q: int, radius: int, j0: int, m0: int, out: Array) -> float:
    """Write the window sum at j0 and the outputs for [j0, m0); return the running sum at m0."""
    width = colsum.shape[1]
    lo = j0 - radius if j0 - radius > 0 else 0
    hi = j0 + radius if j0 + radius < width - 1 else width - 1
    acc = 0.0
    for j in range(lo, hi + 1):
        acc += colsum[q, j]
    # no column leaves here; one enters while j + r + 1 is inside the image
    e = min(m0, max(j0, width - radius - 1))
    lead = colsum[q, j0 + radius + 1 : e + radius + 1]
    out_q = out[q, j0:e]
    for k in range(e - j0):
        out_q[k] = acc
        acc += lead[k]
    for j in range(e, m0):
        out[q, j] = acc
    return acc


@jit
def _right_part(
    colsum: Array, q: int, radius: int, m1: int, j1: int, out: Array, acc: float
) -> None:
    """Write the outputs for [m1, j1) from the running sum at m1 (no column enters here)."""
    f = max(m1, min(j1, radius))  # from f on, column j − r leaves
    for j in range(m1, f):
        out[q, j] = acc
    trail = colsum[q, f - radius : j1 - radius]
    out_q = out[q, f:j1]
    for k in range(j1 - f):
        out_q[k] = acc
        acc -= trail[k]


@jit
def _middle_2(
    colsum: Array,
    q: int,
    p: int,
    radius: int,
    m0: int,
    m1: int,
    out: Array,
    acc_q: float,
    acc_p: float,
) -> tuple[float, float]:
    """Step over [m0, m1) for quantities ``q`` and ``p`` (two chains)."""
    lead_q = colsum[q, m0 + radius + 1 : m1 + radius + 1]
    lead_p = colsum[p, m0 + radius + 1 : m1 + radius + 1]
    trail_q = colsum[q, m0 - radius : m1 - radius]
    trail_p = colsum[p, m0 - radius : m1 - radius]
    out_q = out[q, m0:m1]
    out_p = out[p, m0:m1]
    for k in range(m1 - m0):
        out_q[k] = acc_q
        out_p[k] = acc_p
        acc_q += lead_q[k] - trail_q[k]
        acc_p += lead_p[k] - trail_p[k]
    return acc_q, acc_p


@jit
def _middle_4(
    colsum: Array,
    q: int,
    radius: int,
    m0: int,
    m1: int,
    out: Array,
    acc_0: float,
    acc_1: float,
    acc_2: float,
    acc_3: float,
) -> tuple[float, float, float, float]:
    """Step over [m0, m1) for quantities ``q`` to ``q + 3`` (four chains)."""
    lead_0 = colsum[q, m0 + radius + 1 : m1 + radius + 1]
    lead_1 = colsum[q + 1, m0 + radius + 1 : m1 + radius + 1]
    lead_2 = colsum[q + 2, m0 + radius + 1 : m1 + radius + 1]
    lead_3 = colsum[q + 3, m0 + radius + 1 : m1 + radius + 1]
    trail_0 = colsum[q, m0 - radius : m1 - radius]
    trail_1 = colsum[q + 1, m0 - radius : m1 - radius]
    trail_2 = colsum[q + 2, m0 - radius : m1 - radius]
    trail_3 = colsum[q + 3, m0 - radius : m1 - radius]
    out_0 = out[q, m0:m1]
    out_1 = out[q + 1, m0:m1]
    out_2 = out[q + 2, m0:m1]
    out_3 = out[q + 3, m0:m1]
    for k in range(m1 - m0):
        out_0[k] = acc_0
        out_1[k] = acc_1
        out_2[k] = acc_2
        out_3[k] = acc_3
        acc_0 += lead_0[k] - trail_0[k]
        acc_1 += lead_1[k] - trail_1[k]
        acc_2 += lead_2[k] - trail_2[k]
        acc_3 += lead_3[k] - trail_3[k]
    return acc_0, acc_1, acc_2, acc_3


@jit
def row_window_sums(colsum: Array, radius: int, j0: int, j1: int, out: Array) -> None:
    """out[q, j] = sum of colsum[q, j − radius : j + radius + 1] (clipped), j in [j0, j1).

    Written for speed, each step measured at 3840×2160 (together ≈3.5× the obvious
    loop for four quantities):

    * away from the borders the step is ``acc += colsum[j + r + 1] − colsum[j − r]``: the
      difference does not depend on ``acc``, so the loop-carried chain is one addition;
    * quantities are summed four (or two) at a time, independent chains the CPU overlaps
      (an odd quantity left over is paired with itself);
    * every loop runs over slices with a counter from 0, so Numba can drop its
      negative-index (wraparound) arithmetic, which was most of the instructions; near
      the borders the steps are split where the entering or leaving column stops
      existing, so no loop has a branch.

    Each quantity is summed in the same order whatever the grouping.
    """
    n_q, width = colsum.shape
    m0, m1 = _middle_columns(width, radius, j0, j1)
    q = 0
    while q < n_q:
        if n_q - q >= 4:
            a0 = _left_part(colsum, q, radius, j0, m0, out)
            a1 = _left_part(colsum, q + 1, radius, j0, m0, out)
            a2 = _left_part(colsum, q + 2, radius, j0, m0, out)
            a3 = _left_part(colsum, q + 3, radius, j0, m0, out)
            a0, a1, a2, a3 = _middle_4(colsum, q, radius, m0, m1, out, a0, a1, a2, a3)
            _right_part(colsum, q, radius, m1, j1, out, a0)
            _right_part(colsum, q + 1, radius, m1, j1, out, a1)
            _right_part(colsum, q + 2, radius, m1, j1, out, a2)
            _right_part(colsum, q + 3, radius, m1, j1, out, a3)
            q += 4
        else:
            p = q + 1 if q + 1 < n_q else q
            a0 = _left_part(colsum, q, radius, j0, m0, out)
            a1 = _left_part(colsum, p, radius, j0, m0, out)
            a0, a1 = _middle_2(colsum, q, p, radius, m0, m1, out, a0, a1)
            _right_part(colsum, q, radius, m1, j1, out, a0)
            _right_part(colsum, p, radius, m1, j1, out, a1)
            q = p + 1


@jit
def band_columns(width: int, radius: int, j0: int, j1: int) -> tuple[int, int]:
    """Columns whose sums the output band [j0, j1) needs: [j0 − r, j1 + r) ∩ [0, W)."""
    c0 = j0 - radius if j0 - radius > 0 else 0
    c1 = j1 + radius if j1 + radius < width else width
    return c0, c1


@jit
def add_stack_row(src: Array, row: int, sign: float, colsum: Array, c0: int, c1: int) -> None:
    """colsum[q, c0:c1] += sign · src[q, row, c0:c1] for every plane q of a K×H×W stack."""
    m = snap_constant(src)
    for q in range(src.shape[0]):
        s_row = src[q, row, c0:c1]
        cs = colsum[q, c0:c1]
        for k in range(c1 - c0):
            cs[k] += sign * snap(np.float64(s_row[k]), m)


@jit
def move_stack_rows(src: Array, enter: int, leave: int, colsum: Array, c0: int, c1: int) -> None:
    """Slide the column sums down a row: add row ``enter``, remove ``leave`` (< 0: none).

    Loops run over slices with a counter from 0 (no negative-index arithmetic).
    """
    if enter < 0 or leave < 0:
        if enter >= 0:
            add_stack_row(src, enter, 1.0, colsum, c0, c1)
        if leave >= 0:
            add_stack_row(src, leave, -1.0, colsum, c0, c1)
        return
    m = snap_constant(src)
    for q in range(src.shape[0]):
        s_in = src[q, enter, c0:c1]
        s_out = src[q, leave, c0:c1]
        cs = colsum[q, c0:c1]
        for k in range(c1 - c0):
            cs[k] += snap(np.float64(s_in[k]), m) - snap(np.float64(s_out[k]), m)


@jit
def box_mean_stack(src: Array, radius: int, out: Array, j0: int, j1: int) -> None:
    """Box mean of every plane of a K×H×W stack into ``out``, output columns [j0, j1)."""
    n_q, height, width = src.shape
    c0, c1 = band_columns(width, radius, j0, j1)
    colsum = np.zeros((n_q, width), dtype=np.float64)
    sums = np.empty((n_q, width), dtype=np.float64)
    inv_count_x = inverse_window_counts(width, radius)
    inv_count_y = inverse_window_counts(height, radius)
    for i in range(min(radius, height - 1) + 1):
        add_stack_row(src, i, 1.0, colsum, c0, c1)
    for i in range(height):
        row_window_sums(colsum, radius, j0, j1, sums)
        inv_y = inv_count_y[i]
        inv_x = inv_count_x[j0:j1]
        for q in range(n_q):
            sum_q = sums[q, j0:j1]
            out_q = out[q, i, j0:j1]
            for k in range(j1 - j0):
                out_q[k] = sum_q[k] * (inv_y * inv_x[k])
        enter = i + radius + 1 if i + radius + 1 < height else -1
        move_stack_rows(src, enter, i - radius, colsum, c0, c1)
