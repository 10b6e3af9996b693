"""Atmospheric light: He's rule with its O(N) selection, the guarded rule, the quad-tree search.

The atmospheric light A is a whole-image statistic (it belongs to a method's ``estimate``
phase). Functions taking ``pixels`` work on validated pixels: C-contiguous float in [0, 1],
or unsigned integers with ``unit = 1 / dtype max`` (scaled as they are read); the public
functions without that contract validate their inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._lazy import lazy_module
from dehaze._parallel import fixed_threads, run_bands
from dehaze._validate import (
    FloatArray,
    as_channels,
    as_float_image,
    check_float_map,
    check_radius,
    check_real,
    working_dtype,
)
from dehaze.filters import min_filter_plane
from dehaze.transmission_map import dark_channel_plane

if TYPE_CHECKING:
    from dehaze._kernels import atmosphere as _atm
else:
    _atm = lazy_module("dehaze._kernels.atmosphere")  # Numba is imported on first use

__all__ = [
    "LIGHT_RULES",
    "MIN_ESTIMATED_LIGHT",
    "atmospheric_light",
    "bright_mean_light",
    "brightest_index",
    "first_brightest",
    "guarded_he_light",
    "guard_window",
    "he_light",
    "quadtree_atmospheric_light",
    "pixel_light",
    "quadtree_light",
    "window_light",
]

#: Lower bound applied to an *estimated* atmospheric light (a black image has no haze
#: to estimate; the bound keeps I / A finite).
MIN_ESTIMATED_LIGHT = 1e-3

#: Atmospheric-light rules a method can be configured with: Kim et al.'s quad-tree search
#: and He's rule (both guarded against small white objects when a guard radius is set).
LIGHT_RULES = ("quadtree", "he")


#: Most boundary-bin positions :func:`brightest_index` stores (512 KiB of indices).
MAX_KEPT_POSITIONS = 1 << 16


def brightest_index(dark: FloatArray, image: FloatArray, k: int) -> int:
    """Flat index of the pixel He's rule takes A from (validated inputs, unchecked).

    Candidates are the pixels whose dark value is at least the k-th largest dark value
    (ties included); among them the one with the largest channel sum wins, the first in
    row-major order on ties. The k-th largest value is found by a histogram followed by
    ``np.partition`` of the boundary bin only (none when its values are all equal); every
    pass runs on row bands in parallel. ``dark`` is a C-contiguous H×W map, ``image``
    H×W×C.
    """
    # the passes size their buffers per band from the histogram pass: one band plan for all
    with fixed_threads():
        return _brightest_index(dark, image, k)


def _brightest_index(dark: FloatArray, image: FloatArray, k: int) -> int:
    height = dark.shape[0]
    hists: dict[int, NDArray[np.int64]] = {}
    extents: dict[int, NDArray[np.float64]] = {}

    def count(i0: int, i1: int) -> None:
        hists[i0] = np.zeros((_atm.N_COPIES, _atm.N_BINS), dtype=np.int64)
        extents[i0] = np.empty(2)
        _atm.histogram(dark, hists[i0], extents[i0], i0, i1)

    run_bands(count, height)
    if min(e[0] for e in extents.values()) == max(e[1] for e in extents.values()):
        # a constant map (a black or blank frame): every pixel is a candidate
        return _brightest_at_least(dark, image, _atm.N_BINS, -np.inf)[1]
    band_hist = {i0: h.sum(axis=0) for i0, h in hists.items()}
    hist = np.sum(list(band_hist.values()), axis=0)
    from_top = np.cumsum(hist[::-1])
    pos = int(np.searchsorted(from_top, k))  # first bin from the top reaching k
    target = _atm.N_BINS - 1 - pos
    above = int(from_top[pos] - hist[target])
    # positions of the boundary bin are kept when they are few (the usual case, two passes
    # in all); for a large bin, a third pass finds its brightest candidate instead
    keep_index = int(hist[target]) <= MAX_KEPT_POSITIONS
    parts: dict[int, tuple[NDArray[Any], NDArray[np.int64], NDArray[np.float64]]] = {}

    def split(i0: int, i1: int) -> None:
        n = int(band_hist[i0][target])
        part = (
            np.empty(n, dtype=dark.dtype),
            np.empty(n if keep_index else 0, dtype=np.int64),
            np.empty(4),
        )
        _atm.split_at_bin(dark, image, target, *part, i0, i1)
        parts[i0] = part

    run_bands(split, height)
    bands = [parts[i0] for i0 in sorted(parts)]  # row-major order
    values = np.concatenate([p[0] for p in bands])
    low = min(float(p[2][2]) for p in bands)
    high = max(float(p[2][3]) for p in bands)
    rank = values.size - (k - above)  # ascending position of the k-th largest
    # a bin of equal values (a constant or black frame) needs no partition
    threshold = low if low == high else float(np.partition(values, rank)[rank])
    candidates: list[tuple[float, int]] = [(float(p[2][0]), int(p[2][1])) for p in bands]
    if keep_index:
        # boundary-bin candidates, in row-major order; sums added channel by channel as
        # the kernel adds them, so equal pixels tie exactly
        found = np.concatenate([p[1] for p in bands])[values >= threshold]
        pixels = image.reshape(-1, image.shape[2])[found]
        sums = pixels[:, 0].astype(np.float64)
        for c in range(1, image.shape[2]):
            sums += pixels[:, c]
        if found.size:
            pick = int(np.argmax(sums))  # the first of equal maxima
            candidates.append((float(sums[pick]), int(found[pick])))
    else:
        candidates.append(_brightest_at_least(dark, image, target, threshold))
    return first_brightest(candidates)[1]


def first_brightest(candidates: Iterable[tuple[float, int]]) -> tuple[float, int]:
    """Pick the (sum, index) of largest sum, the earliest pixel on ties (index −1: none)."""
    best_sum, best = -np.inf, -1
    for s, index in candidates:
        if index >= 0 and (s > best_sum or (s == best_sum and index < best)):
            best_sum, best = s, index
    return best_sum, best


def _brightest_at_least(
    dark: FloatArray, image: FloatArray, target: int, threshold: float
) -> tuple[float, int]:
    """Find the brightest pixel with ``dark >= threshold`` in bin ``target``, banded.

    ``target = N_BINS`` means any bin. Returns (channel sum, flat index), the first in
    row-major order on ties.
    """
    bests: dict[int, NDArray[np.float64]] = {}

    def pick(i0: int, i1: int) -> None:
        bests[i0] = np.empty(2)
        _atm.brightest_in_bin(dark, image, target, threshold, bests[i0], i0, i1)

    run_bands(pick, dark.shape[0])
    return first_brightest([(float(b[0]), int(b[1])) for b in bests.values()])


def he_light(
    image: FloatArray, dark: FloatArray, top_fraction: float, unit: float = 1.0
) -> FloatArray:
    """He's rule on validated pixels (float, or unsigned int with ``unit``).

    The brightest (largest channel sum) of the pixels whose ``dark`` value is among the
    ``top_fraction`` largest, in the working dtype, each component at least
    :data:`MIN_ESTIMATED_LIGHT`.
    """
    img3 = as_channels(image)
    wdt = working_dtype(image.dtype)
    k = max(1, int(dark.size * top_fraction))
    index = brightest_index(np.ascontiguousarray(dark, dtype=wdt), img3, k)
    return pixel_light(img3.reshape(-1, img3.shape[2])[index], unit)


def _kth_largest(values: NDArray[Any], k: int) -> float:
    """Return the k-th largest of a flat array (1 ≤ k ≤ size), exactly.

    A strided sample proposes a bound, most likely below the answer (at twice the share of
    the k largest in the sample); when at least k values reach it, the k-th largest is
    found among those few only, else in the whole array. Either way the result is that of
    ``np.partition`` on the whole array; the sample only makes it cheaper (the dark
    channel of a 1080p image's working image, 230k values: 0.23–0.30 ms instead of
    1.26–1.39 ms).
    """
    size = values.size
    sample = values[:: max(1, size // 4096)]
    share = min(sample.size, 2 * -(-k * sample.size // size) + 1)
    bound = np.partition(sample, sample.size - share)[sample.size - share]
    above = values[values >= bound]
    pool = above if above.size >= k else values
    return float(np.partition(pool, pool.size - k)[pool.size - k])


def bright_mean_light(
    image: FloatArray, dark: FloatArray, top_fraction: float, bright_fraction: float
) -> FloatArray:
    """Return A as the mean colour of the brightest of He's candidates (float images).

    He's rule takes the single brightest (largest channel sum) of the pixels whose ``dark``
    value is among the ``top_fraction`` largest. One pixel is fragile: a white object among
    the candidates decides A, and which pixel wins depends on how the image was sampled (the
    same scene at another resolution gives another A). This rule averages the colours of the
    brightest ``bright_fraction`` of the candidates instead: with k = ⌊N · top_fraction⌋
    (at least 1) candidates, the pixels of channel sum at least the m-th largest,
    m = ⌊k · bright_fraction⌋ (at least 1); ties are included at both steps, so the
    result does not depend on the pixels' order. The mean is taken in float64; the result
    is in the image's dtype, each component at least :data:`MIN_ESTIMATED_LIGHT`.

    Parameters
    ----------
    image : (H, W, C) or (H, W) float ndarray
        The image, in [0, 1].
    dark : (H, W) float ndarray
        Its dark channel.
    top_fraction, bright_fraction : float
        In (0, 1]: the share of the pixels that are candidates, and the share of the
        candidates that are averaged.

    Returns
    -------
    (C,) float ndarray
        A.
    """
    img3 = as_channels(image)
    pixels = img3.reshape(-1, img3.shape[2])
    flat = np.ascontiguousarray(dark).reshape(-1)
    k = max(1, int(flat.size * top_fraction))
    # take() on the mask's indices: the same rows as pixels[mask], 7× faster for (N, 3)
    candidates = pixels.take(np.flatnonzero(flat >= flat.dtype.type(_kth_largest(flat, k))), 0)
    sums = candidates[:, 0].astype(np.float64)
    for c in range(1, candidates.shape[1]):
        sums += candidates[:, c]
    m = max(1, int(k * bright_fraction))
    brightest = candidates[sums >= _kth_largest(sums, m)]
    mean = brightest.mean(axis=0, dtype=np.float64)
    light: FloatArray = np.maximum(mean, MIN_ESTIMATED_LIGHT).astype(working_dtype(image.dtype))
    return light


def pixel_light(pixel: NDArray[Any], unit: float = 1.0) -> FloatArray:
    """Return A from one pixel's (C,) values: He's rule's last step.

    The value in the working dtype scaled as :func:`~dehaze._validate.as_float_image` scales
    (times ``unit``), each component at least :data:`MIN_ESTIMATED_LIGHT`. One function, so
    a tiled estimate (:mod:`dehaze.tiles`) gives the same bits as the whole-image one.
    """
    wdt = working_dtype(pixel.dtype)
    light: FloatArray = np.maximum(
        pixel.astype(wdt) * wdt.type(unit), wdt.type(MIN_ESTIMATED_LIGHT)
    )
    return light


def window_light(window: NDArray[Any], unit: float = 1.0) -> FloatArray:
    """Return A as the mean colour of an h×w×C window (the guarded rule's last step).

    Averaged in float64 over a C-contiguous copy (the same order for the same window
    wherever it was read from), times ``unit``, at least :data:`MIN_ESTIMATED_LIGHT`, in the
    working dtype.
    """
    flat = np.ascontiguousarray(window.reshape(-1, window.shape[-1]), dtype=np.float64)
    mean = flat.mean(axis=0) * unit
    light: FloatArray = np.maximum(mean, MIN_ESTIMATED_LIGHT).astype(working_dtype(window.dtype))
    return light


def atmospheric_light(
    image: ArrayLike,
    dark: ArrayLike | None = None,
    *,
    patch_radius: int = 7,
    top_fraction: float = 0.001,
) -> FloatArray:
    """Estimate the atmospheric light A by He's rule.

    Among the pixels whose dark-channel value is in the brightest ``top_fraction`` (0.1 %)
    of the image, the input pixel of highest intensity (R + G + B) is taken as A.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        uint8/uint16/float32/float64 image (float in [0, 1]).
    dark : (H, W) ndarray, optional
        The image's dark channel; computed with ``patch_radius`` when not given.
    patch_radius : int, optional
        Patch radius for the dark channel when ``dark`` is not given.
    top_fraction : float, optional
        Fraction in (0, 1] of the brightest dark-channel pixels to search (at least one).

    Returns
    -------
    (C,) ndarray
        A on the [0, 1] scale (C = 3 for RGB, 1 for gray), each component at least
        ``MIN_ESTIMATED_LIGHT`` (1e-3).

    Notes
    -----
    Selection, not a sort: the threshold is the k-th largest dark value (k = max(1,
    ⌊N · top_fraction⌋)) found by ``np.partition`` in O(N). Every pixel with a dark value at
    or above it is a candidate (ties included); among equal intensities the first pixel in
    row-major order wins. This makes the result independent of the selection algorithm.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import atmospheric_light
    >>> img = np.full((20, 20, 3), 0.2); img[5, 5] = (0.9, 0.8, 0.7)
    >>> atmospheric_light(img, patch_radius=0)
    array([0.9, 0.8, 0.7])
    """
    img = as_float_image(image)
    frac = check_real(top_fraction, "top_fraction", low=0.0, high=1.0, high_inclusive=True)
    if dark is None:
        dark_f = dark_channel_plane(img, check_radius(patch_radius, "patch_radius"))
    else:
        dark_f = check_float_map(dark, "dark", img.shape[:2])
    return he_light(img, dark_f, frac)


def quadtree_light(image: FloatArray, min_size: int, guard_radius: int) -> FloatArray:
    """Kim et al.'s quad-tree search on a validated float image (see the public version)."""
    img3 = as_channels(image)
    height, width, channels = img3.shape
    top, bottom, left, right = 0, height, 0, width
    # Kim et al.: score = mean − standard deviation over the block (all channels)
    while bottom - top >= 2 * min_size and right - left >= 2 * min_size:
        mid_r = (top + bottom) // 2
        mid_c = (left + right) // 2
        best_score = -np.inf
        best = (top, mid_r, left, mid_c)
        for r0, r1 in ((top, mid_r), (mid_r, bottom)):
            for c0, c1 in ((left, mid_c), (mid_c, right)):
                block = img3[r0:r1, c0:c1]
                score = float(block.mean(dtype=np.float64) - block.std(dtype=np.float64))
                if score > best_score:  # strict: the first block wins ties
                    best_score = score
                    best = (r0, r1, c0, c1)
        top, bottom, left, right = best
    block = np.ascontiguousarray(img3[top:bottom, left:right])
    if guard_radius > 0:
        # rank pixels by their eroded colour: a white object narrower than the guard
        # window is erased by the per-channel min filter and cannot be chosen
        ranked = np.stack(
            [
                min_filter_plane(np.ascontiguousarray(block[:, :, c]), guard_radius)
                for c in range(channels)
            ],
            axis=-1,
        )
    else:
        ranked = block
    dist = ((1.0 - ranked.astype(np.float64)) ** 2).sum(axis=2)
    bi, bj = np.unravel_index(int(np.argmin(dist)), dist.shape)
    if guard_radius > 0:
        # the window is clipped to the final block, whose pixels all scored as bright
        flat = int(bi) * block.shape[1] + int(bj)
        return window_light(guard_window(block, flat, guard_radius))
    return pixel_light(block[int(bi), int(bj)])


def guarded_he_light(
    image: FloatArray, dark: FloatArray, top_fraction: float, guard_radius: int, unit: float = 1.0
) -> FloatArray:
    """He's rule on a dark channel widened to the guard radius, averaged over the window.

    ``image`` holds validated pixels: float, or unsigned int with ``unit = 1 / dtype max``.
    """
    img3 = as_channels(image)
    if guard_radius == 0:
        return he_light(image, dark, top_fraction, unit)
    wide = min_filter_plane(dark, guard_radius)
    k = max(1, int(wide.size * top_fraction))
    index = brightest_index(wide, img3, k)  # He's rule, as dcp uses it
    return window_light(guard_window(img3, int(index), guard_radius), unit)


def guard_window(img3: NDArray[Any], flat_index: int, guard_radius: int) -> NDArray[Any]:
    """Return the (2g+1)² window (clipped to the image) around one pixel of an H×W×C image."""
    i, j = divmod(int(flat_index), img3.shape[1])
    g = guard_radius
    return img3[max(0, i - g) : i + g + 1, max(0, j - g) : j + g + 1]


def quadtree_atmospheric_light(
    image: ArrayLike, *, min_size: int = 16, guard_radius: int = 7
) -> FloatArray:
    """Atmospheric light by Kim et al.'s hierarchical (quad-tree) search.

    The image is split into four blocks; the block with the highest score (mean minus
    standard deviation of its values, all channels together) is split again, until a block
    would be narrower than ``min_size``. Within the last block the pixel closest to white,
    ``argmin ‖(1, 1, 1) − I(x)‖``, is chosen. Sky and haze are bright *and* flat, so they
    score high; a white object on a textured background does not.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        uint8/uint16/float32/float64 image (float in [0, 1]).
    min_size : int, optional
        Smallest block side ≥ 1: blocks are split only while both sides are at least
        ``2 · min_size``.
    guard_radius : int, optional
        g ≥ 0. With g > 0 pixels are ranked by their colour eroded over a (2g + 1)² window
        (per-channel min filter, window clipped to the block), so a white object smaller than
        the window is never chosen, and A is the mean colour of the (2g + 1)² window around
        the chosen pixel. g = 0 is Kim et al.'s rule unchanged.

    Returns
    -------
    (C,) ndarray
        A on the [0, 1] scale (C = 3 for RGB, 1 for gray); float64 for float64 input,
        float32 otherwise; every component at least 1e-3.

    References
    ----------
    .. [1] J.-H. Kim, W.-D. Jang, J.-Y. Sim and C.-S. Kim, "Optimized contrast enhancement
       for real-time image and video dehazing", J. Vis. Commun. Image Represent. 24(3),
       410–425, 2013, section 3.1.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import quadtree_atmospheric_light
    >>> rng = np.random.default_rng(0)
    >>> img = rng.random((128, 128, 3)) * 0.5
    >>> img[:40, 64:] = 0.9                     # a bright flat "sky" top right
    >>> img[100:103, 10:13] = 1.0               # a small white object
    >>> quadtree_atmospheric_light(img).round(2)
    array([0.9, 0.9, 0.9])
    """
    img = as_float_image(image)
    size = check_radius(min_size, "min_size", minimum=1)
    guard = check_radius(guard_radius, "guard_radius")
    return quadtree_light(img, size, guard)
