"""The guided filter (He, Sun & Tang 2013) with gray or colour guide.

Also its fast subsampled variant (He & Sun 2015).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._lazy import lazy_module
from dehaze._parallel import run_bands
from dehaze._validate import (
    FloatArray,
    as_float_image,
    buffer_or_new,
    check_eps,
    check_float_map,
    check_radius,
    working_dtype,
)
from dehaze.filters import box_mean_planes

if TYPE_CHECKING:
    import cv2

    from dehaze._kernels import guided as _gk
else:
    cv2 = lazy_module("cv2")  # OpenCV too (dehaze/_lazy.py)
    _gk = lazy_module("dehaze._kernels.guided")  # Numba is imported on first use

__all__ = [
    "GUIDES",
    "guided_coefficients",
    "guided_filter",
    "grid_weights",
    "guided_halo",
    "to_gray",
]

#: Guides of the transmission refinement: the luma, or the RGB image (3×3 solve per pixel).
GUIDES = ("gray", "color")

#: ``src`` may use at most 1/SRC_HEADROOM of its dtype's range: the filter's output can
#: overshoot the input's range (by a few times it, at small eps), and must stay finite.
SRC_HEADROOM = 2.0**20

#: Rec. 601 luma weights (R, G, B), as OpenCV's and MATLAB's rgb2gray use.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def to_gray(image: FloatArray, unit: float = 1.0) -> FloatArray:
    """Rec. 601 luma of a C-contiguous H×W×3 RGB image (H×W input is returned as is).

    ``image`` is float in [0, 1], or unsigned-integer pixels with ``unit = 1 / dtype max``
    (then the result is float32 in [0, 1]).
    """
    if image.ndim == 2:
        return image
    wdt = working_dtype(image.dtype)
    weights = np.asarray(GRAY_WEIGHTS, dtype=np.float64) * unit
    w = weights.astype(wdt)
    height, width, channels = image.shape
    flat = np.ascontiguousarray(image).reshape(height, width * channels)
    out = np.empty((height, width), dtype=wdt)
    run_bands(lambda i0, i1: _gk.luma(flat, w, out, i0, i1), height)
    return out


def guided_halo(radius: int, subsample: int = 1) -> int:
    """How far (in pixels) the guided filter's output at a pixel looks into its input.

    The coefficients are box means over radius r of the guide and source, and the output
    box-averages the coefficients again: 2r. The fast variant works on a grid ``subsample``
    times coarser with radius round(r / s) and upsamples bilinearly: at most 2r + 3s.
    """
    if subsample == 1:
        return 2 * radius
    return 2 * radius + 3 * subsample


def guided_filter_plane(
    guide: FloatArray,
    src: FloatArray,
    radius: int,
    eps: float,
    subsample: int,
    *,
    coarse_src: bool = False,
) -> FloatArray:
    """Guided-filter one float 2-D plane ``src`` with a float H×W×C guide (C = 1 or 3).

    A radius larger than the image gives the same result as the image's longest side (every
    window then covers the whole image), so it is clamped to that. ``eps`` is checked here
    too (``ValueError`` below :data:`~dehaze._validate.MIN_EPS`), as the pipelines call this
    directly with their own ``eps``. With ``coarse_src`` (and ``subsample`` > 1) ``src`` is
    given on the coarse grid only, ``src[::s, ::s]`` of the full plane: the fast filter
    never reads the rest, so a caller need not compute it.
    """
    eps = check_eps(eps)
    height, width, channels = guide.shape
    radius = min(radius, max(height, width))
    dtype = guide.dtype
    if subsample == 1:
        small_guide: FloatArray = guide
        small_src: FloatArray = src
        small_r = radius
    else:
        # every subsample-th pixel from the first: the coarse grid of a tile whose origin is
        # a multiple of subsample is part of the whole image's (exact tiles)
        small_guide = np.ascontiguousarray(guide[::subsample, ::subsample])
        if coarse_src:  # given on the coarse grid already (src[::s, ::s] of the full plane)
            if src.shape != small_guide.shape[:2]:
                raise ValueError(
                    f"a coarse src must have shape {small_guide.shape[:2]}, got {src.shape}"
                )
            small_src = np.ascontiguousarray(src)
        else:
            small_src = np.ascontiguousarray(src[::subsample, ::subsample])
        small_r = max(1, round(radius / subsample)) if radius > 0 else 0
    sh, sw = small_src.shape
    small_r = min(small_r, max(sh, sw))
    ab = np.empty((channels + 1, sh, sw), dtype=dtype)
    if channels == 1:
        gray = np.ascontiguousarray(small_guide[:, :, 0])
        run_bands(
            lambda j0, j1: _gk.coefficients_gray(gray, small_src, small_r, eps, ab, j0, j1), sw
        )
    else:
        run_bands(
            lambda j0, j1: _gk.coefficients_color(small_guide, small_src, small_r, eps, ab, j0, j1),
            sw,
        )
    out = np.empty((height, width), dtype=dtype)
    if subsample == 1:
        run_bands(lambda j0, j1: _gk.apply_coefficients(ab, guide, small_r, out, j0, j1), width)
        return out
    mean_ab = box_mean_planes(ab, small_r)
    rows = grid_weights(height, sh, subsample, dtype)
    cols = grid_weights(width, sw, subsample, dtype)
    run_bands(
        lambda i0, i1: _gk.combine_upsampled(mean_ab, guide, *rows, *cols, out, i0, i1), height
    )
    return out


def grid_weights(
    n_out: int, n_in: int, factor: int, dtype: np.dtype[Any], start: int = 0
) -> tuple[NDArray[np.uintp], NDArray[np.uintp], FloatArray]:
    """Bilinear sampling of a grid ``factor`` times coarser: output i reads lo, hi, frac.

    Coarse sample k stands for the block of fine pixels [k·factor, (k+1)·factor) and sits
    at its centre (half-pixel centres, as OpenCV's INTER_LINEAR): fine pixel i is at coarse
    position x = (i + ½)/factor − ½, clamped to [0, n_in − 1], and reads ``lo`` = ⌊x⌋ and
    ``hi`` = min(lo + 1, n_in − 1) with weight ``frac`` = x − lo on ``hi``. Positions are
    computed in integers, x = (2i + 1 − factor) / (2·factor), so the weights depend only on
    i mod factor: a tile whose origin is a multiple of ``factor`` gets the whole image's.
    Indices are unsigned (kernels need no negative-index checks). With ``start``, the
    ``n_out`` outputs are fine pixels ``start``, ``start + 1``, …: a region's part of the
    whole image's weights, without computing the rest.

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi, frac = grid_weights(6, 3, 2, np.dtype(np.float64))
    >>> lo.tolist(), hi.tolist(), frac.tolist()
    ([0, 0, 0, 1, 1, 2], [1, 1, 1, 2, 2, 2], [0.0, 0.25, 0.75, 0.25, 0.75, 0.0])
    """
    numerator = 2 * np.arange(start, start + n_out, dtype=np.int64) + 1 - factor
    lo = np.floor_divide(numerator, 2 * factor)
    frac = np.mod(numerator, 2 * factor) / (2 * factor)
    low = lo < 0
    high = lo >= n_in - 1
    lo[low] = 0
    lo[high] = n_in - 1
    frac[low | high] = 0.0
    hi = np.minimum(lo + 1, n_in - 1)
    return lo.astype(np.uintp), hi.astype(np.uintp), frac.astype(dtype)


def guided_coefficients(
    small_guide: FloatArray,
    small_src: FloatArray,
    radius: int,
    eps: float,
    out: FloatArray | None = None,
    *,
    scratch: FloatArray | None = None,
) -> FloatArray:
    """Box-averaged guided-filter coefficients (mean a, mean b) of a gray-guided plane.

    The 2×h×w stack whose planes, combined as mean(a) · guide + mean(b), give the guided
    filter's output; computed on a small copy and upsampled, they are He & Sun's fast guided
    filter (as :class:`dehaze.ClearHaze` uses them). Validated float h×w inputs (``eps``
    checked); the result is written to ``out`` (a C-contiguous 2×h×w array of the source's
    dtype) when given; ``scratch``, an array like ``out``, holds the per-window a and b
    (allocated when not given). Windows are cut by the plane's edges, sums are float64; the
    whole plane is computed in one call on the calling thread (the planes are small):
    callers run several of them in parallel.
    """
    eps = check_eps(eps)
    sh, sw = small_src.shape
    dtype = small_src.dtype
    r = min(radius, max(sh, sw))
    gray = np.ascontiguousarray(small_guide, dtype=dtype)
    src = np.ascontiguousarray(small_src, dtype=dtype)
    shape = (2, sh, sw)
    out = buffer_or_new(out, "out", shape, dtype)
    ab = buffer_or_new(scratch, "scratch", shape, dtype)
    _gk.coefficient_means(gray, src, r, eps, ab, out)
    return out


def guided_filter(
    guide: ArrayLike,
    src: ArrayLike,
    radius: int,
    eps: float,
    *,
    subsample: int = 1,
) -> FloatArray:
    """Edge-preserving smoothing of ``src`` guided by ``guide``.

    Parameters
    ----------
    guide : (H, W) or (H, W, 3) ndarray
        Gray or RGB guidance image, uint8/uint16/float32/float64 (float in [0, 1]; integers
        are scaled to [0, 1]). With an RGB guide the per-pixel 3×3 system of the colour
        guided filter is solved.
    src : (H, W) or (H, W, C) ndarray
        The image to filter (C ≥ 1), any finite real values (e.g. a transmission map) up to
        ``finfo(dtype).max / 2**20`` in magnitude (3.2e32 in float32) so that the output,
        which may overshoot the input's range, stays finite. A 3-D ``src`` is filtered
        channel by channel.
    radius : int
        Window radius r ≥ 0 (window (2r + 1)²). Larger than the image is valid.
    eps : float
        Regularisation ε ≥ 1e-12 (:data:`dehaze._validate.MIN_EPS`); larger values smooth
        more (ε is on the [0, 1] intensity scale, so it compares with variances of the
        guide). Below 1e-12 it no longer regularises: the variances are accumulated in
        float64 with a round-off of up to ~1e-14, and a flat window's 3×3 system would be
        singular.
    subsample : int, optional
        s ≥ 1. With s > 1 the fast guided filter is used: coefficients are computed on
        images subsampled by s (nearest neighbour) with radius max(1, round(r / s)) and
        bilinearly upsampled, costing about 1/s² of the full filter.

    Returns
    -------
    ndarray
        Filtered ``src``, same shape; float64 if ``guide`` or ``src`` is float64, else
        float32.

    Notes
    -----
    Box means use running sums accumulated in float64 with windows clipped to the image
    and normalised by the in-image pixel count (He's reference code's border rule).
    Variances that round-off makes slightly negative are taken as 0; a window whose
    regularised 3×3 system is still not positive definite (only possible through
    round-off) gets ``a = 0, b = mean(src)``, its plain mean, so the output is finite for
    every finite input.

    References
    ----------
    .. [1] K. He, J. Sun and X. Tang, "Guided image filtering", IEEE TPAMI 35(6), 2013.
    .. [2] K. He and J. Sun, "Fast guided filter", arXiv:1505.00996, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import guided_filter
    >>> rng = np.random.default_rng(0)
    >>> guide = rng.random((32, 48))
    >>> flat = np.full((32, 48), 0.25)
    >>> bool(np.allclose(guided_filter(guide, flat, 4, 1e-3), 0.25))
    True
    """
    guide_f = as_float_image(guide, "guide")
    src_arr = np.asarray(src)
    if src_arr.ndim == 3:
        if src_arr.shape[2] == 0:
            raise ValueError(
                f"src has 0 channels (shape {src_arr.shape}); accepted shapes are H×W or "
                f"H×W×C with C ≥ 1"
            )
        planes = [src_arr[:, :, c] for c in range(src_arr.shape[2])]
    elif src_arr.ndim == 2:
        planes = [src_arr]
    else:
        raise ValueError(f"src must be H×W or H×W×C, got shape {src_arr.shape}")
    r = check_radius(radius, "radius")
    e = check_eps(eps)
    s = check_radius(subsample, "subsample", minimum=1)
    shape = guide_f.shape[:2]
    checked = [check_float_map(p, "src", shape) for p in planes]
    dtype = np.result_type(guide_f.dtype, *(c.dtype for c in checked))
    limit = float(np.finfo(dtype).max) / SRC_HEADROOM
    largest = max(float(np.max(np.abs(c))) for c in checked)
    if largest > limit:
        raise ValueError(
            f"src has values up to {largest:.3g} in magnitude; in {np.dtype(dtype).name} at "
            f"most {limit:.3g} is accepted (the output may overshoot the input's range and "
            f"must stay finite): pass float64, or scale src"
        )
    guide3 = guide_f if guide_f.ndim == 3 else guide_f[:, :, np.newaxis]
    guide3 = np.ascontiguousarray(guide3, dtype=dtype)
    outs = [
        guided_filter_plane(guide3, np.ascontiguousarray(c, dtype=dtype), r, e, s) for c in checked
    ]
    if src_arr.ndim == 2:
        return outs[0]
    return np.stack(outs, axis=-1)
