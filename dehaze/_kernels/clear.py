"""ClearHaze's full-resolution pass: upsample the working-scale maps and recover, fused."""

from __future__ import annotations

from typing import Any

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array
from dehaze._kernels.guided import luma_row

#: Planes of the working-scale stack, in order: the transmission's guided-filter
#: coefficients (mean a, mean b), the weight's (mean a, mean b), the detail weight, then the
#: base layer's C channels.
A_T, B_T, A_W, B_W, DETAIL = 0, 1, 2, 3, 4
BASE = 5
#: Planes of an RGB image's stack.
RGB_PLANES = BASE + 3


def column_sum_dtype(pixels: np.dtype, factor: int) -> np.dtype:
    """Type :func:`block_mean` sums ``factor`` rows of ``pixels`` in (exactly for integers).

    float64 for float pixels; for unsigned integers the narrowest unsigned type wider than
    the pixels that holds k times their maximum (uint16 for uint8 up to k = 257, uint32
    for uint16 up to k = 65537), else int64.
    """
    if pixels.kind == "f":
        return np.dtype(np.float64)
    top = factor * int(np.iinfo(pixels).max)
    for candidate in (np.uint16, np.uint32):
        if top <= np.iinfo(candidate).max and np.dtype(candidate).itemsize > pixels.itemsize:
            return np.dtype(candidate)
    return np.dtype(np.int64)


@jit
def _outside_unit(image: np.ndarray, y0: int, y1: int) -> bool:
    """Whether rows [y0, y1) of ``image`` hold a NaN or a value outside [0, 1] (−0.0 is in)."""
    bad = False
    for y in range(y0, y1):
        row = image[y]
        for x in range(row.shape[0]):
            v = row[x]
            bad |= (v < 0) | (v > 1) | (v != v)
    return bad


@jit
def block_mean(
    image: np.ndarray,
    channels: int,
    factor: int,
    unit: float,
    out: Array,
    b0: int,
    b1: int,
    columns: np.ndarray,
    zero: Any,
    outside: np.ndarray | None,
) -> None:
    """Block rows [b0, b1) of the mean over ``factor`` × ``factor`` blocks, times ``unit``.

    ``image`` is H × (W·C) pixels (float, or unsigned integers), ``out`` h × (w·C) with
    h = ⌈H / k⌉ and w = ⌈W / k⌉: a last block cut by the image's edge is the mean of its
    pixels. Each block is summed in one fixed order (each of its columns top to bottom into
    ``columns``, W·C scratch of :func:`column_sum_dtype`, then the column sums left to right
    from ``zero``: float64 0 for float pixels, int64 0 for integers, exact), so its mean
    depends on its own pixels only: a tile whose origin is a multiple of k gives the whole
    image's blocks bit for bit. Narrow integer column sums let the row pass move 2 or 4
    bytes per sample instead of 8.

    The column sums of a block row are one contiguous pass over each image row, which
    vectorises; only the k-wide sums of the column sums run per block, for RGB with one
    scale per block row and the three channels' sums kept side by side (1920×1080 uint8,
    k = 3, one thread: 4.0 ms with int64 column sums and the per-block loop over channels,
    1.2 ms so; summing pixel by pixel into each block was 1.5× slower still).

    ``outside`` (uint8, one per block row, or empty to skip) receives 1 for a block row
    with a value that is NaN or outside [0, 1], read again right after its sums while it
    is in cache: a float image's values are checked without a pass of their own over
    memory (4K: 0.7–1.4 ms against 4.4–7.5 ms; :func:`dehaze._validate.check_values` then
    gives the error). It is None for integer pixels, which are always in range: Numba
    then compiles no check for them (``is None`` is settled for the argument's type; 0.16 of
    the kernel's 0.59 s of compilation for uint8).
    """
    height = image.shape[0]
    n = image.shape[1]
    width = n // channels
    small_w = out.shape[1] // channels
    for b in range(b0, b1):
        y0 = b * factor
        y1 = min(y0 + factor, height)
        first = image[y0]
        for x in range(n):
            columns[x] = first[x]
        for y in range(y0 + 1, y1):
            row = image[y]
            for x in range(n):
                columns[x] += row[x]  # never wraps: the caller sized the type for k rows
        if outside is not None and outside.shape[0] > 0:  # the rows again, while in cache
            outside[b] = _outside_unit(image, y0, y1)
        out_row = out[b]
        # blocks k columns wide: one scale; RGB with the three channels' sums side by side
        full = width // factor
        scale = unit / ((y1 - y0) * factor)
        if channels == 3:
            for bx in range(full):
                i = bx * factor * 3
                s0 = zero + columns[i]
                s1 = zero + columns[i + 1]
                s2 = zero + columns[i + 2]
                for x in range(1, factor):
                    j = i + 3 * x
                    s0 += columns[j]
                    s1 += columns[j + 1]
                    s2 += columns[j + 2]
                out_row[3 * bx] = np.float64(s0) * scale
                out_row[3 * bx + 1] = np.float64(s1) * scale
                out_row[3 * bx + 2] = np.float64(s2) * scale
            first_cut = full
        else:
            first_cut = 0
        # the rest (every block for other channel counts), and a block cut by the edge
        for bx in range(first_cut, small_w):
            x0 = bx * factor
            x1 = min(x0 + factor, width)
            scale = unit / ((y1 - y0) * (x1 - x0))
            for c in range(channels):
                total = zero + columns[x0 * channels + c]
                for x in range(x0 + 1, x1):
                    total += columns[x * channels + c]
                out_row[bx * channels + c] = np.float64(total) * scale


# --- the working-scale maps' per-pixel steps (ClearHaze._planes) -------------------------
#
# The NumPy steps between the windowed filters took 2.0 ms of the maps' 9.4 ms at 640 × 360
# (a 1080p frame's working image, one thread), most of it in passes over strided channel
# views of the interleaved image. One kernel does those; the steps on single planes stay
# NumPy's (a kernel would save about 0.1 ms each and costs about 0.2 s of the first
# call's compilation). The windowed filters stay OpenCV's.


@jit
def transmission_terms(
    image: Array,
    mean: Array,
    scale: Array,
    light: Array,
    room: Array,
    tolerance: float,
    channel_min: Array,
    bound: Array,
    far: Array,
) -> None:
    """Write the transmission side's three per-pixel terms, from one read of each input.

    ``image`` and ``mean`` (its local mean) are H × (W·3), RGB (a gray image comes as its
    value in three equal channels, which gives the same minima, maxima and distances):

    * ``channel_min`` = min_c I_c · scale_c (``scale`` = 1 / A): the dark channel of I / A
      before its window minimum;
    * ``bound`` = max_c (I_c − A_c) / room_c, ``room`` = max(1 − A, 1e-3): Meng's lower
      bound on t (:func:`dehaze.transmission_map.boundary_transmission`) before its clip to
      [0, 1], which the physical t's own clip makes redundant;
    * ``far`` = clip(1 − (K / d)², 0, 1), d = max(max_c |mean_c − A_c|, 1e-6), K =
      ``tolerance``: 1 where the local mean is clearly away from A (a flat road under thin
      haze), 0 within K of it (sky).

    A's numbers are held in registers and the rows indexed flat, so the loops vectorise (a
    loop over a run-time channel count, or row[x, c] indexing, ran 4–8× slower). RGB only:
    a generic loop over C channels beside it was compiled by every call (0.43 s against
    0.33 s of the first call's compilation) and served gray images alone.
    """
    height, width = far.shape
    zero = far.dtype.type(0.0)
    one = far.dtype.type(1.0)
    k = far.dtype.type(tolerance)
    floor = far.dtype.type(1e-6)
    s0, s1, s2 = scale[0], scale[1], scale[2]
    a0, a1, a2 = light[0], light[1], light[2]
    r0, r1, r2 = room[0], room[1], room[2]
    for y in range(height):
        row = image[y]
        local = mean[y]
        low = channel_min[y]
        high = bound[y]
        weight = far[y]
        for x in range(width):
            v0, v1, v2 = row[3 * x], row[3 * x + 1], row[3 * x + 2]
            low[x] = min(v0 * s0, v1 * s1, v2 * s2)
            high[x] = max((v0 - a0) / r0, (v1 - a1) / r1, (v2 - a2) / r2)
        for x in range(width):
            m0, m1, m2 = local[3 * x], local[3 * x + 1], local[3 * x + 2]
            d = max(abs(m0 - a0), abs(m1 - a1), abs(m2 - a2))
            q = k / max(d, floor)
            weight[x] = min(max(one - q * q, zero), one)


@jit
def _upsample_row(
    planes: Array,
    row: int,
    col_lo: np.ndarray,
    col_hi: np.ndarray,
    col_frac: Array,
    out: Array,
    copy_from: np.intp,
    side: Array | None,
) -> None:
    """out[p, j] = planes[p, row] sampled bilinearly at the columns ``col_*`` (one row).

    ``copy_from`` ≥ 0 says the columns are planes' columns ``copy_from + j`` with weight 0
    on the next (k = 1: the working image is the image): the row is copied, the same
    numbers (lo + (hi − lo) · 0 = lo) without the gathers.

    With the eight planes of an RGB image (``side``, w × 8 scratch, given) the row's
    values are first put side by side, ``side[x] = planes[:, row, x]``, so that each output
    column reads its two source columns' eight values as two contiguous runs instead of
    sixteen gathers: the full-size pass at 1920×1080 (k = 3, one thread) 8.3 → 6.1 ms, at
    3840×2160 (k = 5) 24.0 → 18.8 ms, the same numbers. A gray image's six planes
    (``side`` None) gather. ``side is None`` is settled when the function is compiled for
    its argument types, so each compiled version holds one of the two paths.
    """
    width = out.shape[1]
    n_planes = planes.shape[0]
    if copy_from >= 0:
        for p in range(n_planes):
            src = planes[p, row]
            dst = out[p]
            # a plain loop: a slice assignment here added 2.5 s to the first call's compile
            for j in range(width):
                dst[j] = src[copy_from + j]
        return
    if side is None:
        for p in range(n_planes):
            src = planes[p, row]
            dst = out[p]
            for j in range(width):
                lo = src[col_lo[j]]
                dst[j] = lo + (src[col_hi[j]] - lo) * col_frac[j]
        return
    for x in range(planes.shape[2]):  # a constant count of planes: unrolled
        values = side[x]
        for p in range(RGB_PLANES):
            values[p] = planes[p, row, x]
    for j in range(width):
        lo = side[col_lo[j]]
        hi = side[col_hi[j]]
        f = col_frac[j]
        for p in range(RGB_PLANES):
            out[p, j] = lo[p] + (hi[p] - lo[p]) * f


@jit
def _copied_columns(col_lo: np.ndarray, col_frac: Array) -> np.intp:
    """Return the first column if the columns are consecutive with weight 0 (a copy), else −1."""
    first = np.intp(col_lo[0])  # signed, as −1 is: one integer type, no float unification
    for j in range(col_lo.shape[0]):
        if col_frac[j] != 0.0 or np.intp(col_lo[j]) != first + j:
            return np.intp(-1)
    return first


@jit
def recover_detail(
    image: np.ndarray,
    unit: float,
    luma_weights: Array | None,
    side: Array | None,
    planes: Array,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    row_frac: Array,
    col_lo: np.ndarray,
    col_hi: np.ndarray,
    col_frac: Array,
    light: Array,
    t0: float,
    out_scale: float,
    out: np.ndarray,
    t_rec_out: Array,
    inverse_out: Array,
    i0: int,
    i1: int,
) -> None:
    """Rows [i0, i1) of J from the image (H × W·C, pixels · ``unit``) and the working maps.

    An RGB image (H × W·3) comes with ``luma_weights`` and ``side`` (w × 8 scratch, see
    :func:`_upsample_row`), a gray one (H × W) with both None. ``planes`` is the P×h×w
    stack above; output pixel (i, j) samples it bilinearly at the row/column positions
    ``*_lo``, ``*_hi`` (unsigned), ``*_frac`` (half-pixel centres, clamped: OpenCV's
    INTER_LINEAR). The guide is the pixel's luma L = Σ_c ``luma_weights[c]`` · I_c (the
    1 / dtype-max factor folded into the weights, as :func:`dehaze.guided.to_gray` computes
    it), formed row by row here; a gray pixel is its own luma, I · ``unit``. With it:
    t = clip(a_t L + b_t, 0, 1), w = clip(a_w L + b_w, 0, 1), t_s = max(t, t0),
    g = 1 / t_rec = 1 + w (1 − t_s) / t_s, e = (1 − w_d)(g − 1) and
    J_c = clip((I_c − A_c) g + A_c − e (I_c − base_c), 0, 1), stored as rint(J · out_scale)
    for integer outputs (``out_scale > 0``) or as J. ``t_rec_out`` and ``inverse_out`` (H×W,
    or 0×0 to skip) receive t_rec and 1 / t_s (= 1 / clip(t, t0, 1), what
    :func:`dehaze._kernels.depth.inverse_clipped` gives: the depth is its logarithm).

    The two working rows around an output row are upsampled along the row once each (into
    full-width buffers reused by every output row between them, k times fewer gathers than
    per output row: 91 -> 57 ms at 4K on one thread), blended by ``row_frac`` where they
    are used. An RGB row is then recovered in one pass over its pixels, the three channels
    written out (the compiler vectorises the interleaved loads and stores: 1920×1080 uint8,
    one thread, 15.8 → 8.5 ms against spreading gain, detail gain and base to W·C-long
    buffers first).

    ``luma_weights is None`` is settled when the kernel is compiled for its argument types
    (Numba prunes the branch), so an RGB call compiles the RGB path only, and a gray call
    the gray path: one kernel holding both compiled both for every call, 0.4–0.5 s more of
    the first call's compilation.
    """
    height = image.shape[0]
    width = image.shape[1] if luma_weights is None else image.shape[1] // 3
    n_planes = planes.shape[0]
    T = type(planes[0, 0, 0])  # the working dtype: float32 math stays float32
    zero, one, u, t_min, scale = T(0.0), T(1.0), T(unit), T(t0), T(out_scale)
    want_rec = t_rec_out.shape[0] == height
    want_inverse = inverse_out.shape[0] == height
    integer = out_scale > 0.0
    dtype = planes.dtype
    lum = np.empty(width, dtype=dtype)
    gain = np.empty(width, dtype=dtype)
    excess = np.empty(width, dtype=dtype)
    # the two working rows a band of output rows lies between, upsampled along the row once
    # each (not once per output row: k times fewer gathers), then blended per output row
    top = np.empty((n_planes, width), dtype=dtype)
    bottom = np.empty((n_planes, width), dtype=dtype)
    top_row = -1
    bottom_row = -1
    copy_from = _copied_columns(col_lo, col_frac)
    for i in range(i0, i1):
        fy = row_frac[i]
        lo_r = row_lo[i]
        hi_r = row_hi[i]
        if top_row != lo_r:
            if bottom_row == lo_r:  # moved down one working row: reuse the bottom one
                top, bottom = bottom, top
                top_row, bottom_row = bottom_row, top_row
            else:
                _upsample_row(planes, lo_r, col_lo, col_hi, col_frac, top, copy_from, side)
                top_row = lo_r
        if bottom_row != hi_r:
            _upsample_row(planes, hi_r, col_lo, col_hi, col_frac, bottom, copy_from, side)
            bottom_row = hi_r
        row = image[i]
        if luma_weights is None:
            for j in range(width):
                lum[j] = T(row[j]) * u
        else:
            luma_row(row, luma_weights, lum)  # the luma kernel's sum, in its order
        # the coefficient planes are interpolated between the two rows where they are used
        at0, at1, bt0, bt1 = top[A_T], bottom[A_T], top[B_T], bottom[B_T]
        aw0, aw1, bw0, bw1 = top[A_W], bottom[A_W], top[B_W], bottom[B_W]
        d0, d1 = top[DETAIL], bottom[DETAIL]
        for j in range(width):
            a_t = at0[j] + (at1[j] - at0[j]) * fy
            b_t = bt0[j] + (bt1[j] - bt0[j]) * fy
            a_w = aw0[j] + (aw1[j] - aw0[j]) * fy
            b_w = bw0[j] + (bw1[j] - bw0[j]) * fy
            detail = d0[j] + (d1[j] - d0[j]) * fy
            t = min(max(a_t * lum[j] + b_t, zero), one)
            w = min(max(a_w * lum[j] + b_w, zero), one)
            t_s = max(t, t_min)
            # the one division per pixel; 1 / t_s also gives the depth. Written out, so the
            # gain is the same product whether or not the depth is asked for (with
            # reciprocal fast-math, an (1 − t_s) / t_s beside a 1 / t_s got rounded
            # differently in the two cases)
            inverse = one / t_s
            g = one + w * ((one - t_s) * inverse)  # 1 / t_rec
            gain[j] = g
            excess[j] = (one - detail) * (g - one)
            if want_inverse:
                inverse_out[i, j] = inverse
        if want_rec:
            for j in range(width):
                t_rec_out[i, j] = one / gain[j]
        out_row = out[i]
        if luma_weights is None:  # gray: the pixel is its luma
            a = light[0]
            base0, base1 = top[BASE], bottom[BASE]
            for j in range(width):
                v = lum[j]
                base = base0[j] + (base1[j] - base0[j]) * fy
                r = min(max((v - a) * gain[j] + a - excess[j] * (v - base), zero), one)
                out_row[j] = np.rint(r * scale) if integer else r
            continue
        # RGB: one interleaved pass, measured 1.7x the spread-then-flat one
        l0, l1, l2 = light[0], light[1], light[2]
        r0a, g0a, b0a = top[BASE], top[BASE + 1], top[BASE + 2]
        r0b, g0b, b0b = bottom[BASE], bottom[BASE + 1], bottom[BASE + 2]
        for j in range(width):
            g = gain[j]
            e = excess[j]
            v = T(row[3 * j]) * u
            base = r0a[j] + (r0b[j] - r0a[j]) * fy
            r = min(max((v - l0) * g + l0 - e * (v - base), zero), one)
            out_row[3 * j] = np.rint(r * scale) if integer else r
            v = T(row[3 * j + 1]) * u
            base = g0a[j] + (g0b[j] - g0a[j]) * fy
            r = min(max((v - l1) * g + l1 - e * (v - base), zero), one)
            out_row[3 * j + 1] = np.rint(r * scale) if integer else r
            v = T(row[3 * j + 2]) * u
            base = b0a[j] + (b0b[j] - b0a[j]) * fy
            r = min(max((v - l2) * g + l2 - e * (v - base), zero), one)
            out_row[3 * j + 2] = np.rint(r * scale) if integer else r
