"""Guided filter kernels (He, Sun & Tang, TPAMI 2013), O(N) via running box sums.

Pass 1 computes the local linear coefficients ``a`` (one per guide channel) and ``b`` for
every window, from box means of the guide, the input, their products and the guide's
(co)variances, all accumulated in float64. Pass 2 averages the coefficients over the same
windows and forms ``q = mean(a) · I + mean(b)``. Both passes use the in-image-count
normalisation of :mod:`dehaze._kernels.boxfilter`.
"""

from __future__ import annotations

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array
from dehaze._kernels.boxfilter import (
    add_stack_row,
    band_columns,
    inverse_window_counts,
    move_stack_rows,
    row_window_sums,
    snap,
    snap_constant,
)


@jit
def _add_gray_row(
    guide: Array, src: Array, row: int, sign: float, colsum: Array, c0: int, c1: int
) -> None:
    g_row = guide[row, c0:c1]
    s_row = src[row, c0:c1]
    cs0 = colsum[0, c0:c1]
    cs1 = colsum[1, c0:c1]
    cs2 = colsum[2, c0:c1]
    cs3 = colsum[3, c0:c1]
    m = snap_constant(src)
    for k in range(c1 - c0):
        g = np.float64(g_row[k])
        s = np.float64(s_row[k])
        cs0[k] += sign * snap(g, m)
        cs1[k] += sign * snap(s, m)
        cs2[k] += sign * snap(g * s, m)
        cs3[k] += sign * snap(g * g, m)


@jit
def _move_gray_rows(
    guide: Array, src: Array, enter: int, leave: int, colsum: Array, c0: int, c1: int
) -> None:
    """Slide the window down one row: add row ``enter``, remove row ``leave`` (−1: none).

    With both rows present the four sums are updated in one loop from the difference of
    the two rows' terms, touching each column sum once instead of twice. Loops run over
    slices with a counter from 0 (no negative-index arithmetic; see ``row_window_sums``).
    """
    if enter < 0 or leave < 0:
        if enter >= 0:
            _add_gray_row(guide, src, enter, 1.0, colsum, c0, c1)
        if leave >= 0:
            _add_gray_row(guide, src, leave, -1.0, colsum, c0, c1)
        return
    g_in = guide[enter, c0:c1]
    s_in = src[enter, c0:c1]
    g_out = guide[leave, c0:c1]
    s_out = src[leave, c0:c1]
    cs0 = colsum[0, c0:c1]
    cs1 = colsum[1, c0:c1]
    cs2 = colsum[2, c0:c1]
    cs3 = colsum[3, c0:c1]
    m = snap_constant(src)
    for k in range(c1 - c0):
        g1 = np.float64(g_in[k])
        s1 = np.float64(s_in[k])
        g0 = np.float64(g_out[k])
        s0 = np.float64(s_out[k])
        cs0[k] += snap(g1, m) - snap(g0, m)
        cs1[k] += snap(s1, m) - snap(s0, m)
        cs2[k] += snap(g1 * s1, m) - snap(g0 * s0, m)
        cs3[k] += snap(g1 * g1, m) - snap(g0 * g0, m)


@jit
def coefficients_gray(
    guide: Array, src: Array, radius: int, eps: float, ab: Array, j0: int, j1: int
) -> None:
    """Gray guide: ab[0] = a, ab[1] = b for each window centre (H×W guide and input)."""
    height, width = guide.shape
    colsum = np.zeros((4, width), dtype=np.float64)
    sums = np.empty((4, width), dtype=np.float64)
    c0, c1 = band_columns(width, radius, j0, j1)
    inv_count_x = inverse_window_counts(width, radius)
    inv_count_y = inverse_window_counts(height, radius)
    for i in range(min(radius, height - 1) + 1):
        _add_gray_row(guide, src, i, 1.0, colsum, c0, c1)
    for i in range(height):
        row_window_sums(colsum, radius, j0, j1, sums)
        inv_y = inv_count_y[i]
        sum_i = sums[0, j0:j1]
        sum_p = sums[1, j0:j1]
        sum_ip = sums[2, j0:j1]
        sum_ii = sums[3, j0:j1]
        inv_x = inv_count_x[j0:j1]
        a_row = ab[0, i, j0:j1]
        b_row = ab[1, i, j0:j1]
        for k in range(j1 - j0):
            inv_n = inv_y * inv_x[k]
            mean_i = sum_i[k] * inv_n
            mean_p = sum_p[k] * inv_n
            cov_ip = sum_ip[k] * inv_n - mean_i * mean_p
            # round-off can make a variance slightly negative: it is ≥ 0
            var_i = max(sum_ii[k] * inv_n - mean_i * mean_i, 0.0)
            a = cov_ip / (var_i + eps)
            a_row[k] = a
            b_row[k] = mean_p - a * mean_i
        enter = i + radius + 1 if i + radius + 1 < height else -1
        _move_gray_rows(guide, src, enter, i - radius, colsum, c0, c1)


@jit
def _add_color_row(
    guide: Array, src: Array, row: int, sign: float, colsum: Array, c0: int, c1: int
) -> None:
    g_row = guide[row, c0:c1]
    s_row = src[row, c0:c1]
    cs = colsum[:, c0:c1]
    m = snap_constant(src)
    for k in range(c1 - c0):
        r = np.float64(g_row[k, 0])
        g = np.float64(g_row[k, 1])
        b = np.float64(g_row[k, 2])
        s = np.float64(s_row[k])
        cs[0, k] += sign * snap(r, m)
        cs[1, k] += sign * snap(g, m)
        cs[2, k] += sign * snap(b, m)
        cs[3, k] += sign * snap(s, m)
        cs[4, k] += sign * snap(r * s, m)
        cs[5, k] += sign * snap(g * s, m)
        cs[6, k] += sign * snap(b * s, m)
        cs[7, k] += sign * snap(r * r, m)
        cs[8, k] += sign * snap(r * g, m)
        cs[9, k] += sign * snap(r * b, m)
        cs[10, k] += sign * snap(g * g, m)
        cs[11, k] += sign * snap(g * b, m)
        cs[12, k] += sign * snap(b * b, m)


@jit
def _move_color_rows(
    guide: Array, src: Array, enter: int, leave: int, colsum: Array, c0: int, c1: int
) -> None:
    """Slide the window down one row (see :func:`_move_gray_rows`), colour guide."""
    if enter < 0 or leave < 0:
        if enter >= 0:
            _add_color_row(guide, src, enter, 1.0, colsum, c0, c1)
        if leave >= 0:
            _add_color_row(guide, src, leave, -1.0, colsum, c0, c1)
        return
    g_in = guide[enter, c0:c1]
    s_in = src[enter, c0:c1]
    g_out = guide[leave, c0:c1]
    s_out = src[leave, c0:c1]
    cs = colsum[:, c0:c1]
    m = snap_constant(src)
    for k in range(c1 - c0):
        r1 = np.float64(g_in[k, 0])
        g1 = np.float64(g_in[k, 1])
        b1 = np.float64(g_in[k, 2])
        s1 = np.float64(s_in[k])
        r0 = np.float64(g_out[k, 0])
        g0 = np.float64(g_out[k, 1])
        b0 = np.float64(g_out[k, 2])
        s0 = np.float64(s_out[k])
        cs[0, k] += snap(r1, m) - snap(r0, m)
        cs[1, k] += snap(g1, m) - snap(g0, m)
        cs[2, k] += snap(b1, m) - snap(b0, m)
        cs[3, k] += snap(s1, m) - snap(s0, m)
        cs[4, k] += snap(r1 * s1, m) - snap(r0 * s0, m)
        cs[5, k] += snap(g1 * s1, m) - snap(g0 * s0, m)
        cs[6, k] += snap(b1 * s1, m) - snap(b0 * s0, m)
        cs[7, k] += snap(r1 * r1, m) - snap(r0 * r0, m)
        cs[8, k] += snap(r1 * g1, m) - snap(r0 * g0, m)
        cs[9, k] += snap(r1 * b1, m) - snap(r0 * b0, m)
        cs[10, k] += snap(g1 * g1, m) - snap(g0 * g0, m)
        cs[11, k] += snap(g1 * b1, m) - snap(g0 * b0, m)
        cs[12, k] += snap(b1 * b1, m) - snap(b0 * b0, m)


@jit
def coefficients_color(
    guide: Array, src: Array, radius: int, eps: float, ab: Array, j0: int, j1: int
) -> None:
    """Colour guide: ab[0:3] = a (per channel), ab[3] = b; solves (Σ + εU) a = cov(I, p).

    The system is solved by an LDLᵀ factorisation (backward stable for positive definite
    matrices). Negative round-off in the variances is clipped to 0; a window whose system
    is still not positive definite (a pivot ≤ 0), or whose solution is not finite, gets
    a = 0, b = mean(p).
    """
    height, width, _ = guide.shape
    colsum = np.zeros((13, width), dtype=np.float64)
    sums = np.empty((13, width), dtype=np.float64)
    c0, c1 = band_columns(width, radius, j0, j1)
    inv_count_x = inverse_window_counts(width, radius)
    inv_count_y = inverse_window_counts(height, radius)
    for i in range(min(radius, height - 1) + 1):
        _add_color_row(guide, src, i, 1.0, colsum, c0, c1)
    for i in range(height):
        row_window_sums(colsum, radius, j0, j1, sums)
        inv_y = inv_count_y[i]
        sm = sums[:, j0:j1]
        inv_x = inv_count_x[j0:j1]
        ab_i = ab[:, i, j0:j1]
        for k in range(j1 - j0):
            inv_n = inv_y * inv_x[k]
            mr = sm[0, k] * inv_n
            mg = sm[1, k] * inv_n
            mb = sm[2, k] * inv_n
            mp = sm[3, k] * inv_n
            cr = sm[4, k] * inv_n - mr * mp
            cg = sm[5, k] * inv_n - mg * mp
            cb = sm[6, k] * inv_n - mb * mp
            # variances made slightly negative by round-off are taken as 0
            srr = max(sm[7, k] * inv_n - mr * mr, 0.0) + eps
            srg = sm[8, k] * inv_n - mr * mg
            srb = sm[9, k] * inv_n - mr * mb
            sgg = max(sm[10, k] * inv_n - mg * mg, 0.0) + eps
            sgb = sm[11, k] * inv_n - mg * mb
            sbb = max(sm[12, k] * inv_n - mb * mb, 0.0) + eps
            # LDLᵀ solve of the symmetric positive definite 3×3 system: backward stable,
            # unlike the inverse by cofactors, whose determinant cancels badly when the
            # guide's channels are (nearly) equal and ε is small
            inv0 = 1.0 / srr  # srr ≥ ε > 0
            l10 = srg * inv0
            l20 = srb * inv0
            d1 = sgg - l10 * srg
            inv1 = 1.0 / d1
            e21 = sgb - l20 * srg
            l21 = e21 * inv1
            d2 = sbb - l20 * srb - l21 * e21
            inv2 = 1.0 / d2
            y1 = cg - l10 * cr
            y2 = cb - l20 * cr - l21 * y1
            ab_ = y2 * inv2
            ag = y1 * inv1 - l21 * ab_
            ar = cr * inv0 - l10 * ag - l20 * ab_
            # not positive definite (only through round-off on a flat window, or ε so
            # small that it underflows), or not finite: the window's plain mean, a = 0;
            # written as selects, not a branch, so the loop still vectorises
            ok = (d1 > 0.0) & (d2 > 0.0) & (abs(ar) + abs(ag) + abs(ab_) < np.inf)
            ar = ar if ok else 0.0
            ag = ag if ok else 0.0
            ab_ = ab_ if ok else 0.0
            ab_i[0, k] = ar
            ab_i[1, k] = ag
            ab_i[2, k] = ab_
            ab_i[3, k] = mp - ar * mr - ag * mg - ab_ * mb
        enter = i + radius + 1 if i + radius + 1 < height else -1
        _move_color_rows(guide, src, enter, i - radius, colsum, c0, c1)


@jit
def apply_coefficients(ab: Array, guide: Array, radius: int, out: Array, j0: int, j1: int) -> None:
    """Out = mean(a) · guide + mean(b) for a (C+1)×H×W stack ``ab`` and an H×W×C guide."""
    n_q, height, width = ab.shape
    channels = n_q - 1
    colsum = np.zeros((n_q, width), dtype=np.float64)
    sums = np.empty((n_q, width), dtype=np.float64)
    c0, c1 = band_columns(width, radius, j0, j1)
    inv_count_x = inverse_window_counts(width, radius)
    inv_count_y = inverse_window_counts(height, radius)
    for i in range(min(radius, height - 1) + 1):
        add_stack_row(ab, i, 1.0, colsum, c0, c1)
    for i in range(height):
        row_window_sums(colsum, radius, j0, j1, sums)
        inv_y = inv_count_y[i]
        if channels == 1:  # gray guide: a straight loop the compiler vectorises
            sum_a = sums[0, j0:j1]
            sum_b = sums[1, j0:j1]
            g_row = guide[i, j0:j1, 0]
            inv_x = inv_count_x[j0:j1]
            out_row = out[i, j0:j1]
            for k in range(j1 - j0):
                out_row[k] = (sum_a[k] * g_row[k] + sum_b[k]) * (inv_y * inv_x[k])
        else:
            sm = sums[:, j0:j1]
            g_row = guide[i, j0:j1]
            inv_x = inv_count_x[j0:j1]
            out_row = out[i, j0:j1]
            for k in range(j1 - j0):
                acc = sm[channels, k]
                for c in range(channels):
                    acc += sm[c, k] * g_row[k, c]
                out_row[k] = acc * (inv_y * inv_x[k])
        enter = i + radius + 1 if i + radius + 1 < height else -1
        move_stack_rows(ab, enter, i - radius, colsum, c0, c1)


@jit
def combine_coefficients(mean_ab: Array, guide: Array, out: Array, i0: int, i1: int) -> None:
    """Out = mean_ab[:C] · guide + mean_ab[C] for already-averaged coefficients."""
    n_q, height, width = mean_ab.shape
    channels = n_q - 1
    for i in range(i0, i1):
        out_row = out[i]
        if channels == 1:  # gray guide: a straight loop over rows, which vectorises
            a_row = mean_ab[0, i]
            b_row = mean_ab[1, i]
            g_row = guide[i].reshape(width)
            for j in range(width):
                out_row[j] = a_row[j] * g_row[j] + b_row[j]
        else:
            g_rows = guide[i]
            for j in range(width):
                acc = np.float64(mean_ab[channels, i, j])
                for c in range(channels):
                    acc += mean_ab[c, i, j] * g_rows[j, c]
                out_row[j] = acc


@jit
def combine_upsampled(
    mean_ab: Array,
    guide: Array,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    row_frac: Array,
    col_lo: np.ndarray,
    col_hi: np.ndarray,
    col_frac: Array,
    out: Array,
    i0: int,
    i1: int,
) -> None:
    """Rows [i0, i1) of out = up(mean_ab[:C]) · guide + up(mean_ab[C]), upsampled bilinearly.

    ``mean_ab`` is the (C+1)×h×w stack of averaged coefficients on the coarse grid; output
    pixel (i, j) samples it at rows ``row_lo[i]``, ``row_hi[i]`` (weight ``row_frac[i]`` on
    the second) and columns ``col_*[j]`` (:func:`dehaze.guided.grid_weights`). Each row
    first interpolates the two coarse rows it needs into a buffer, then the columns: no
    full-size plane of upsampled coefficients is written. Every output depends only on its
    own position and the coarse values, so bands and tiles give the same bits.
    """
    n_q, _, small_w = mean_ab.shape
    channels = n_q - 1
    width = out.shape[1]
    buf = np.empty((n_q, small_w), dtype=mean_ab.dtype)
    for i in range(i0, i1):
        fy = row_frac[i]
        for q in range(n_q):
            top = mean_ab[q, row_lo[i]]
            bottom = mean_ab[q, row_hi[i]]
            b_q = buf[q]
            for j in range(small_w):
                b_q[j] = top[j] + fy * (bottom[j] - top[j])
        out_row = out[i]
        g_row = guide[i]
        if channels == 1:
            a_buf = buf[0]
            b_buf = buf[1]
            for j in range(width):
                lo = col_lo[j]
                hi = col_hi[j]
                fx = col_frac[j]
                a = a_buf[lo] + fx * (a_buf[hi] - a_buf[lo])
                b = b_buf[lo] + fx * (b_buf[hi] - b_buf[lo])
                out_row[j] = a * g_row[j, 0] + b
        else:
            for j in range(width):
                lo = col_lo[j]
                hi = col_hi[j]
                fx = col_frac[j]
                acc = buf[channels, lo] + fx * (buf[channels, hi] - buf[channels, lo])
                for c in range(channels):
                    acc += (buf[c, lo] + fx * (buf[c, hi] - buf[c, lo])) * g_row[j, c]
                out_row[j] = acc


@jit
def luma(image: Array, weights: Array, out: Array, i0: int, i1: int) -> None:
    """out[i, j] = Σ_c weights[c] · image[i, j·C + c] for rows [i0, i1).

    ``image`` is H × (W·C), channels interleaved (a reshaped C-contiguous H×W×C image):
    indexing the flat row lets the compiler vectorise the RGB case (4× the H×W×C
    indexing at 3840×2160, measured). It may be unsigned-integer, with the 1 / dtype-max
    factor folded into the (float) ``weights``, whose type the sum takes.
    """
    for i in range(i0, i1):
        luma_row(image[i], weights, out[i])


@jit
def luma_row(row: np.ndarray, weights: Array, out_row: Array) -> None:
    """out_row[j] = Σ_c weights[c] · row[j·C + c] for one flat row of W·C samples.

    The one place the luma sum is written (its order fixes the result's last bits): the
    luma kernel and ClearHaze's fused pass both call it.
    """
    width = out_row.shape[0]
    channels = weights.shape[0]
    T = type(weights[0])
    if channels == 3:
        w0, w1, w2 = weights[0], weights[1], weights[2]
        for j in range(width):
            out_row[j] = w0 * T(row[3 * j]) + w1 * T(row[3 * j + 1]) + w2 * T(row[3 * j + 2])
    else:
        for j in range(width):
            s = weights[0] * T(row[j * channels])
            for c in range(1, channels):
                s += weights[c] * T(row[j * channels + c])
            out_row[j] = s


@jit
def _window_means_2(
    sums0: Array,
    sums1: Array,
    pad: int,
    first: int,
    inv_y: float,
    inv_x: Array,
    out0: Array,
    out1: Array,
) -> None:
    """Window means along a row of two planes' padded column sums, into ``out0``, ``out1``.

    The column sums are stored with ``pad`` = r + 1 zeros on each side, so the window sum
    moves by one addition of the entering minus the leaving column with no edge case;
    ``first`` columns make up the first window. Two planes, two independent chains; loops
    over slices from 0 (no negative-index checks). Rows, not a plane index, are passed: an
    integer literal would compile the function once per value.
    """
    width = out0.shape[0]
    init0 = sums0[pad : pad + first]
    init1 = sums1[pad : pad + first]
    acc0 = 0.0
    acc1 = 0.0
    for j in range(first):
        acc0 += init0[j]
        acc1 += init1[j]
    lead0 = sums0[2 * pad : 2 * pad + width]
    lead1 = sums1[2 * pad : 2 * pad + width]
    trail0 = sums0[1 : 1 + width]
    trail1 = sums1[1 : 1 + width]
    for j in range(width):
        scale = inv_y * inv_x[j]
        out0[j] = acc0 * scale
        out1[j] = acc1 * scale
        acc0 += lead0[j] - trail0[j]
        acc1 += lead1[j] - trail1[j]


@jit
def _add_terms(guide: Array, src: Array, row: int, sign: float, sums: Array, pad: int) -> None:
    """Add ``sign`` · (I, p, I p, I²) of one row to the column sums, in float64."""
    width = guide.shape[1]
    g_row = guide[row]
    s_row = src[row]
    s0 = sums[0, pad : pad + width]
    s1 = sums[1, pad : pad + width]
    s2 = sums[2, pad : pad + width]
    s3 = sums[3, pad : pad + width]
    for j in range(width):
        g = np.float64(g_row[j])
        s = np.float64(s_row[j])
        s0[j] += sign * g
        s1[j] += sign * s
        s2[j] += sign * (g * s)
        s3[j] += sign * (g * g)


@jit
def _add_pair(ab: Array, row: int, sign: float, sums: Array, pad: int) -> None:
    """Add ``sign`` · (a, b) of one row of ``ab`` to the column sums, in float64."""
    width = ab.shape[2]
    a_row = ab[0, row]
    b_row = ab[1, row]
    s0 = sums[0, pad : pad + width]
    s1 = sums[1, pad : pad + width]
    for j in range(width):
        s0[j] += sign * np.float64(a_row[j])
        s1[j] += sign * np.float64(b_row[j])


@jit
def coefficient_means(
    guide: Array, src: Array, radius: int, eps: float, ab: Array, out: Array
) -> None:
    """out[0] = mean a, out[1] = mean b of the gray-guided filter of ``src`` (H×W planes).

    a = cov(I, p) / (var(I) + ε), b = mean(p) − a · mean(I) over each (2r + 1)² window
    (written to ``ab``, 2×H×W in the planes' dtype), then both averaged over the same
    windows: the two planes that, combined as mean(a) · I + mean(b), are the guided
    filter's output. Windows are cut by the image's edges (r ≤ max(H, W)) and every sum is
    a float64 running sum of column sums. The whole plane in one call, on one thread (it is
    meant for a working-scale image); a few small functions, so it compiles in a fraction
    of the time of the banded, tile-exact :func:`coefficients_gray` and
    :func:`dehaze._kernels.boxfilter.box_mean_stack`, which a whole-image working map does
    not need.
    """
    height, width = guide.shape
    pad = radius + 1
    first = min(radius, width - 1) + 1  # columns in a row's first window
    inv_x = np.empty(width, dtype=np.float64)
    for j in range(width):
        inv_x[j] = 1.0 / (min(j + radius + 1, width) - max(j - radius, 0))
    sums = np.zeros((4, width + 2 * pad), dtype=np.float64)
    means = np.empty((4, width), dtype=np.float64)
    for i in range(min(radius, height - 1) + 1):
        _add_terms(guide, src, i, 1.0, sums, pad)
    for i in range(height):
        inv_y = 1.0 / (min(i + radius + 1, height) - max(i - radius, 0))
        _window_means_2(sums[0], sums[1], pad, first, inv_y, inv_x, means[0], means[1])
        _window_means_2(sums[2], sums[3], pad, first, inv_y, inv_x, means[2], means[3])
        a_row = ab[0, i]
        b_row = ab[1, i]
        m0 = means[0]
        m1 = means[1]
        m2 = means[2]
        m3 = means[3]
        for j in range(width):
            mean_i = m0[j]
            mean_p = m1[j]
            # round-off can make a variance slightly negative: it is ≥ 0
            var_i = max(m3[j] - mean_i * mean_i, 0.0)
            a = (m2[j] - mean_i * mean_p) / (var_i + eps)
            a_row[j] = a
            b_row[j] = mean_p - a * mean_i
        if i + radius + 1 < height:
            _add_terms(guide, src, i + radius + 1, 1.0, sums, pad)
        if i - radius >= 0:
            _add_terms(guide, src, i - radius, -1.0, sums, pad)
    sums[:] = 0.0
    for i in range(min(radius, height - 1) + 1):
        _add_pair(ab, i, 1.0, sums, pad)
    for i in range(height):
        inv_y = 1.0 / (min(i + radius + 1, height) - max(i - radius, 0))
        _window_means_2(sums[0], sums[1], pad, first, inv_y, inv_x, means[0], means[1])
        a_row = out[0, i]
        b_row = out[1, i]
        m0 = means[0]
        m1 = means[1]
        for j in range(width):
            a_row[j] = m0[j]
            b_row[j] = m1[j]
        if i + radius + 1 < height:
            _add_pair(ab, i + radius + 1, 1.0, sums, pad)
        if i - radius >= 0:
            _add_pair(ab, i - radius, -1.0, sums, pad)
