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
)


@jit
def _add_gray_row(
    guide: Array, src: Array, row: int, sign: float, colsum: Array, c0: int, c1: int
) -> None:
    for j in range(c0, c1):
        g = np.float64(guide[row, j])
        s = np.float64(src[row, j])
        colsum[0, j] += sign * g
        colsum[1, j] += sign * s
        colsum[2, j] += sign * (g * s)
        colsum[3, j] += sign * (g * g)


@jit
def _move_gray_rows(
    guide: Array, src: Array, enter: int, leave: int, colsum: Array, c0: int, c1: int
) -> None:
    """Slide the window down one row: add row ``enter``, remove row ``leave`` (−1: none).

    With both rows present the four sums are updated in one loop from the difference of
    the two rows' terms, touching each column sum once instead of twice.
    """
    if enter < 0 or leave < 0:
        if enter >= 0:
            _add_gray_row(guide, src, enter, 1.0, colsum, c0, c1)
        if leave >= 0:
            _add_gray_row(guide, src, leave, -1.0, colsum, c0, c1)
        return
    for j in range(c0, c1):
        g1 = np.float64(guide[enter, j])
        s1 = np.float64(src[enter, j])
        g0 = np.float64(guide[leave, j])
        s0 = np.float64(src[leave, j])
        colsum[0, j] += g1 - g0
        colsum[1, j] += s1 - s0
        colsum[2, j] += g1 * s1 - g0 * s0
        colsum[3, j] += g1 * g1 - g0 * g0


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
        for j in range(j0, j1):
            inv_n = inv_y * inv_count_x[j]
            mean_i = sums[0, j] * inv_n
            mean_p = sums[1, j] * inv_n
            cov_ip = sums[2, j] * inv_n - mean_i * mean_p
            var_i = sums[3, j] * inv_n - mean_i * mean_i
            a = cov_ip / (var_i + eps)
            ab[0, i, j] = a
            ab[1, i, j] = mean_p - a * mean_i
        enter = i + radius + 1 if i + radius + 1 < height else -1
        _move_gray_rows(guide, src, enter, i - radius, colsum, c0, c1)


@jit
def _add_color_row(
    guide: Array, src: Array, row: int, sign: float, colsum: Array, c0: int, c1: int
) -> None:
    for j in range(c0, c1):
        r = np.float64(guide[row, j, 0])
        g = np.float64(guide[row, j, 1])
        b = np.float64(guide[row, j, 2])
        s = np.float64(src[row, j])
        colsum[0, j] += sign * r
        colsum[1, j] += sign * g
        colsum[2, j] += sign * b
        colsum[3, j] += sign * s
        colsum[4, j] += sign * (r * s)
        colsum[5, j] += sign * (g * s)
        colsum[6, j] += sign * (b * s)
        colsum[7, j] += sign * (r * r)
        colsum[8, j] += sign * (r * g)
        colsum[9, j] += sign * (r * b)
        colsum[10, j] += sign * (g * g)
        colsum[11, j] += sign * (g * b)
        colsum[12, j] += sign * (b * b)


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
    for j in range(c0, c1):
        r1 = np.float64(guide[enter, j, 0])
        g1 = np.float64(guide[enter, j, 1])
        b1 = np.float64(guide[enter, j, 2])
        s1 = np.float64(src[enter, j])
        r0 = np.float64(guide[leave, j, 0])
        g0 = np.float64(guide[leave, j, 1])
        b0 = np.float64(guide[leave, j, 2])
        s0 = np.float64(src[leave, j])
        colsum[0, j] += r1 - r0
        colsum[1, j] += g1 - g0
        colsum[2, j] += b1 - b0
        colsum[3, j] += s1 - s0
        colsum[4, j] += r1 * s1 - r0 * s0
        colsum[5, j] += g1 * s1 - g0 * s0
        colsum[6, j] += b1 * s1 - b0 * s0
        colsum[7, j] += r1 * r1 - r0 * r0
        colsum[8, j] += r1 * g1 - r0 * g0
        colsum[9, j] += r1 * b1 - r0 * b0
        colsum[10, j] += g1 * g1 - g0 * g0
        colsum[11, j] += g1 * b1 - g0 * b0
        colsum[12, j] += b1 * b1 - b0 * b0


@jit
def coefficients_color(
    guide: Array, src: Array, radius: int, eps: float, ab: Array, j0: int, j1: int
) -> None:
    """Colour guide: ab[0:3] = a (per channel), ab[3] = b; solves (Σ + εU) a = cov(I, p)."""
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
        for j in range(j0, j1):
            inv_n = inv_y * inv_count_x[j]
            mr = sums[0, j] * inv_n
            mg = sums[1, j] * inv_n
            mb = sums[2, j] * inv_n
            mp = sums[3, j] * inv_n
            cr = sums[4, j] * inv_n - mr * mp
            cg = sums[5, j] * inv_n - mg * mp
            cb = sums[6, j] * inv_n - mb * mp
            srr = sums[7, j] * inv_n - mr * mr + eps
            srg = sums[8, j] * inv_n - mr * mg
            srb = sums[9, j] * inv_n - mr * mb
            sgg = sums[10, j] * inv_n - mg * mg + eps
            sgb = sums[11, j] * inv_n - mg * mb
            sbb = sums[12, j] * inv_n - mb * mb + eps
            # inverse of the symmetric 3×3 matrix by cofactors
            c00 = sgg * sbb - sgb * sgb
            c01 = srb * sgb - srg * sbb
            c02 = srg * sgb - srb * sgg
            c11 = srr * sbb - srb * srb
            c12 = srb * srg - srr * sgb
            c22 = srr * sgg - srg * srg
            inv_det = 1.0 / (srr * c00 + srg * c01 + srb * c02)
            ar = (c00 * cr + c01 * cg + c02 * cb) * inv_det
            ag = (c01 * cr + c11 * cg + c12 * cb) * inv_det
            ab_ = (c02 * cr + c12 * cg + c22 * cb) * inv_det
            ab[0, i, j] = ar
            ab[1, i, j] = ag
            ab[2, i, j] = ab_
            ab[3, i, j] = mp - ar * mr - ag * mg - ab_ * mb
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
            for j in range(j0, j1):
                out[i, j] = (sums[0, j] * guide[i, j, 0] + sums[1, j]) * (inv_y * inv_count_x[j])
        else:
            for j in range(j0, j1):
                acc = sums[channels, j]
                for c in range(channels):
                    acc += sums[c, j] * guide[i, j, c]
                out[i, j] = acc * (inv_y * inv_count_x[j])
        enter = i + radius + 1 if i + radius + 1 < height else -1
        move_stack_rows(ab, enter, i - radius, colsum, c0, c1)


@jit
def combine_coefficients(mean_ab: Array, guide: Array, out: Array, i0: int, i1: int) -> None:
    """Out = mean_ab[:C] · guide + mean_ab[C] for already-averaged coefficients."""
    n_q, height, width = mean_ab.shape
    channels = n_q - 1
    for i in range(i0, i1):
        for j in range(width):
            acc = np.float64(mean_ab[channels, i, j])
            for c in range(channels):
                acc += mean_ab[c, i, j] * guide[i, j, c]
            out[i, j] = acc


@jit
def luma(image: Array, weights: Array, out: Array, i0: int, i1: int) -> None:
    """out[i, j] = Σ_c weights[c] · image[i, j, c] for rows [i0, i1).

    ``image`` may be unsigned-integer, with the 1 / dtype-max factor folded into the
    (float) ``weights``, whose type the sum takes.
    """
    width, channels = image.shape[1], image.shape[2]
    T = type(weights[0])
    for i in range(i0, i1):
        for j in range(width):
            s = weights[0] * T(image[i, j, 0])
            for c in range(1, channels):
                s += weights[c] * T(image[i, j, c])
            out[i, j] = s
