"""ClearHaze's full-resolution pass: upsample the working-scale maps and recover, fused."""

from __future__ import annotations

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array
from dehaze._kernels.guided import luma_row

#: Planes of the working-scale stack, in order: the transmission's guided-filter
#: coefficients (mean a, mean b), the weight's (mean a, mean b), the detail weight, then the
#: base layer's C channels.
A_T, B_T, A_W, B_W, DETAIL = 0, 1, 2, 3, 4
BASE = 5


@jit
def block_mean(
    image: np.ndarray, channels: int, factor: int, unit: float, out: Array, b0: int, b1: int
) -> None:
    """Block rows [b0, b1) of the mean over ``factor`` × ``factor`` blocks, times ``unit``.

    ``image`` is H × (W·C) float pixels, ``out`` h × (w·C) with h = ⌈H / k⌉ and
    w = ⌈W / k⌉: a last block cut by the image's edge is the mean of its pixels. Each block
    is summed in float64 in one fixed order (its rows top to bottom, each left to right), so
    its mean depends on its own pixels only: a tile whose origin is a multiple of k gives the
    whole image's blocks bit for bit. (:func:`block_mean_int` for integer pixels.)
    """
    acc = np.empty(out.shape[1], dtype=np.float64)
    _block_sums(image, channels, factor, unit, out, b0, b1, acc)


@jit
def block_mean_int(
    image: np.ndarray, channels: int, factor: int, unit: float, out: Array, b0: int, b1: int
) -> None:
    """:func:`block_mean` for unsigned-integer pixels: exact int64 sums (1.4× faster)."""
    acc = np.empty(out.shape[1], dtype=np.int64)
    _block_sums(image, channels, factor, unit, out, b0, b1, acc)


@jit
def _block_sums(
    image: np.ndarray,
    channels: int,
    factor: int,
    unit: float,
    out: Array,
    b0: int,
    b1: int,
    acc: np.ndarray,
) -> None:
    height = image.shape[0]
    width = image.shape[1] // channels
    small_w = out.shape[1] // channels
    for b in range(b0, b1):
        acc[:] = 0
        y0 = b * factor
        y1 = min(y0 + factor, height)
        for y in range(y0, y1):
            row = image[y]
            bx = 0
            count = 0
            for x in range(width):  # one pass along the row, moving to the next block
                o = bx * channels
                s = x * channels
                for c in range(channels):
                    acc[o + c] += row[s + c]
                count += 1
                if count == factor:
                    count = 0
                    bx += 1
        out_row = out[b]
        for bx in range(small_w):
            count = (y1 - y0) * (min(bx * factor + factor, width) - bx * factor)
            scale = unit / count
            for c in range(channels):
                out_row[bx * channels + c] = np.float64(acc[bx * channels + c]) * scale


@jit
def _upsample_row(
    planes: Array, row: int, col_lo: np.ndarray, col_hi: np.ndarray, col_frac: Array, out: Array
) -> None:
    """out[p, j] = planes[p, row] sampled bilinearly at the columns ``col_*`` (one row)."""
    width = out.shape[1]
    for p in range(planes.shape[0]):
        src = planes[p, row]
        dst = out[p]
        for j in range(width):
            lo = src[col_lo[j]]
            dst[j] = lo + (src[col_hi[j]] - lo) * col_frac[j]


@jit
def recover_detail(
    image: np.ndarray,
    unit: float,
    luma_weights: Array,
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
    t_out: Array,
    i0: int,
    i1: int,
) -> None:
    """Rows [i0, i1) of J from the image (H × W·C, pixels · ``unit``) and the working maps.

    ``planes`` is the P×h×w stack above; output pixel (i, j) samples it bilinearly at the
    row/column positions ``*_lo``, ``*_hi`` (unsigned), ``*_frac`` (half-pixel centres,
    clamped: OpenCV's INTER_LINEAR). The guide is the pixel's luma
    L = Σ_c ``luma_weights[c]`` · I_c (the 1 / dtype-max factor folded into the weights, as
    :func:`dehaze.guided.to_gray` computes it), formed row by row here. With it:
    t = clip(a_t L + b_t, 0, 1), w = clip(a_w L + b_w, 0, 1), t_s = max(t, t0),
    g = 1 / t_rec = 1 + w (1 − t_s) / t_s, e = (1 − w_d)(g − 1) and
    J_c = clip((I_c − A_c) g + A_c − e (I_c − base_c), 0, 1), stored as rint(J · out_scale)
    for integer outputs (``out_scale > 0``) or as J. ``t_rec_out`` and ``t_out`` (H×W, or
    0×0 to skip) receive t_rec and t.

    The two working rows around an output row are upsampled along the row once each (into
    full-width buffers reused by every output row between them, k times fewer gathers than
    per output row: 91 -> 57 ms at 4K on one thread), blended by ``row_frac``, and the row
    is recovered as one flat run of W·C samples (gain, detail gain and base spread to the
    channels), so the loops have no gathers or channel index and vectorise.
    """
    height = image.shape[0]
    n = image.shape[1]
    channels = luma_weights.shape[0]
    width = n // channels
    n_planes = planes.shape[0]
    T = type(planes[0, 0, 0])  # the working dtype: float32 math stays float32
    zero, one, u, t_min, scale = T(0.0), T(1.0), T(unit), T(t0), T(out_scale)
    want_rec = t_rec_out.shape[0] == height
    want_t = t_out.shape[0] == height
    dtype = planes.dtype
    wide = np.empty((n_planes, width), dtype=dtype)
    lum = np.empty(width, dtype=dtype)
    gain = np.empty(width, dtype=dtype)
    excess = np.empty(width, dtype=dtype)
    gain_flat = np.empty(n, dtype=dtype)
    excess_flat = np.empty(n, dtype=dtype)
    base_flat = np.empty(n, dtype=dtype)
    light_flat = np.empty(n, dtype=dtype)
    for j in range(width):
        for c in range(channels):
            light_flat[j * channels + c] = light[c]
    # the two working rows a band of output rows lies between, upsampled along the row once
    # each (not once per output row: k times fewer gathers), then blended per output row
    top = np.empty((n_planes, width), dtype=dtype)
    bottom = np.empty((n_planes, width), dtype=dtype)
    top_row = -1
    bottom_row = -1
    for i in range(i0, i1):
        fy = row_frac[i]
        lo_r = row_lo[i]
        hi_r = row_hi[i]
        if top_row != lo_r:
            if bottom_row == lo_r:  # moved down one working row: reuse the bottom one
                top, bottom = bottom, top
                top_row, bottom_row = bottom_row, top_row
            else:
                _upsample_row(planes, lo_r, col_lo, col_hi, col_frac, top)
                top_row = lo_r
        if bottom_row != hi_r:
            _upsample_row(planes, hi_r, col_lo, col_hi, col_frac, bottom)
            bottom_row = hi_r
        for p in range(n_planes):
            t_p = top[p]
            b_p = bottom[p]
            dst = wide[p]
            for j in range(width):
                dst[j] = t_p[j] + (b_p[j] - t_p[j]) * fy
        row = image[i]
        luma_row(row, luma_weights, lum)  # the luma kernel's sum, in its order
        for j in range(width):
            t = min(max(wide[A_T, j] * lum[j] + wide[B_T, j], zero), one)
            w = min(max(wide[A_W, j] * lum[j] + wide[B_W, j], zero), one)
            t_s = max(t, t_min)
            g = one + w * (one - t_s) / t_s  # 1 / t_rec, one division per pixel
            gain[j] = g
            excess[j] = (one - wide[DETAIL, j]) * (g - one)
            if want_t:
                t_out[i, j] = t
        if want_rec:
            for j in range(width):
                t_rec_out[i, j] = one / gain[j]
        for j in range(width):
            for c in range(channels):
                k = j * channels + c
                gain_flat[k] = gain[j]
                excess_flat[k] = excess[j]
                base_flat[k] = wide[BASE + c, j]
        out_row = out[i]
        if out_scale > 0.0:
            for k in range(n):
                v = T(row[k]) * u
                a = light_flat[k]
                r = (v - a) * gain_flat[k] + a - excess_flat[k] * (v - base_flat[k])
                out_row[k] = np.rint(min(max(r, zero), one) * scale)
        else:
            for k in range(n):
                v = T(row[k]) * u
                a = light_flat[k]
                r = (v - a) * gain_flat[k] + a - excess_flat[k] * (v - base_flat[k])
                out_row[k] = min(max(r, zero), one)
