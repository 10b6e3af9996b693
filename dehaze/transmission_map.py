"""Transmission: the dark channel, raw t, the tolerance rule for bright regions, the sky measure.

Per-pixel and windowed stages (a method's ``apply`` phase), except :func:`sky_fraction`, a
whole-image statistic. Functions taking ``pixels`` work on validated pixels: C-contiguous
float in [0, 1], or unsigned integers with ``unit = 1 / dtype max``; the public functions
without that contract validate their inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from dehaze._lazy import lazy_module
from dehaze._parallel import run_bands
from dehaze._validate import (
    FloatArray,
    as_float_image,
    check_atmospheric_light,
    check_float_map,
    check_radius,
    check_real,
    check_t0,
    check_unit,
)
from dehaze.filters import min_filter_plane
from dehaze.guided import GRAY_WEIGHTS, to_gray

if TYPE_CHECKING:
    from dehaze._kernels import restore as _rk
else:
    _rk = lazy_module("dehaze._kernels.restore")  # Numba is imported on first use

__all__ = [
    "apply_tolerance",
    "boundary_transmission",
    "clip_transmission",
    "dark_channel",
    "dark_channel_plane",
    "distance_to_light",
    "light_luma",
    "luma_sky_fraction",
    "raw_transmission",
    "sky_fraction",
    "tolerance_transmission",
    "transmission",
    "weaken_haze_removal",
]


def dark_channel_plane(
    image: FloatArray,
    radius: int,
    scale: FloatArray | None = None,
    unit: float = 1.0,
    affine: tuple[float, float] = (1.0, 0.0),
    step: int = 1,
) -> FloatArray:
    """Dark channel of validated pixels (float, or unsigned int with ``unit``).

    Of ``image · unit · scale`` per channel when ``scale`` is given; ``affine = (m, a)``
    gives m · dark + a in the same pass. ``step`` > 1: only at every step-th row and
    column (the full-size values there; see :func:`dehaze.filters.min_filter_plane`).
    """
    if scale is None and unit == 1.0:
        return min_filter_plane(image, radius, affine=affine, step=step)
    channels = 1 if image.ndim == 2 else image.shape[2]
    factors = np.ones(channels) if scale is None else np.asarray(scale, dtype=np.float64)
    # rounded to the working dtype once: for scale None, the factor as_float_image uses
    return min_filter_plane(image, radius, factors * unit, affine, step)


def dark_channel(image: ArrayLike, patch_radius: int = 7) -> FloatArray:
    """Compute the dark channel: min over colour channels, then over a square patch.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        RGB or gray image, uint8/uint16/float32/float64 (float in [0, 1]).
    patch_radius : int, optional
        Patch radius r ≥ 0; the patch is (2r + 1)² (r = 7 gives He's 15 × 15).

    Returns
    -------
    (H, W) ndarray
        Dark channel on the [0, 1] scale; float64 for float64 input, float32 otherwise.

    Notes
    -----
    The patch is clipped to the image (padding with +inf), as in the paper. Cost per pixel
    does not depend on the patch size (van Herk / Gil–Werman min filter).

    References
    ----------
    .. [1] K. He, J. Sun and X. Tang, "Single image haze removal using dark channel
       prior", CVPR 2009; IEEE TPAMI 33(12), 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import dark_channel
    >>> img = np.zeros((4, 4, 3), dtype=np.uint8); img[..., 0] = 255
    >>> float(dark_channel(img, 1).max())
    0.0
    """
    img = as_float_image(image)
    return dark_channel_plane(img, check_radius(patch_radius, "patch_radius"))


def raw_transmission(
    image: FloatArray,
    light: FloatArray,
    omega: float,
    radius: int,
    unit: float = 1.0,
    step: int = 1,
) -> FloatArray:
    """1 − ω · dark(I / A) of validated pixels (float, or unsigned int with ``unit``).

    ``step`` > 1: only at every step-th row and column (what the fast guided filter reads).
    """
    scale = 1.0 / light.astype(np.float64)
    return dark_channel_plane(image, radius, scale, unit, (-omega, 1.0), step)


def transmission(
    image: ArrayLike,
    atmospheric_light: ArrayLike,
    *,
    omega: float = 0.95,
    patch_radius: int = 7,
) -> FloatArray:
    """Coarse transmission t̃ = 1 − ω · dark(I / A), before refinement.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        uint8/uint16/float32/float64 image (float in [0, 1]).
    atmospheric_light : float or (C,) array_like
        A on the [0, 1] scale, every component in (0, 1].
    omega : float, optional
        Haze kept for aerial perspective, ω in (0, 1] (0.95 in the paper).
    patch_radius : int, optional
        Patch radius r ≥ 0 of the dark channel.

    Returns
    -------
    (H, W) ndarray
        t̃ (may be below 0 where I exceeds A in every channel of a patch); float64 for
        float64 input, float32 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import transmission
    >>> img = np.full((8, 8, 3), 0.5)
    >>> float(transmission(img, 1.0, omega=1.0)[0, 0])
    0.5
    """
    img = as_float_image(image)
    channels = 1 if img.ndim == 2 else img.shape[2]
    light = check_atmospheric_light(atmospheric_light, channels, img.dtype)
    w = check_real(omega, "omega", low=0.0, high=1.0, high_inclusive=True)
    return raw_transmission(img, light, w, check_radius(patch_radius, "patch_radius"))


def distance_to_light(
    image: FloatArray, light: FloatArray, gray: FloatArray | None = None
) -> FloatArray:
    """``|Y(I) − Y(A)|`` with Y the Rec. 601 luma (the gray distance of the tolerance rule).

    ``image`` is a validated float image (H×W or H×W×3), ``light`` its A.

    ``gray``, when given, is the image's luma already computed (it is not modified).
    """
    if image.ndim == 2:
        dist: FloatArray = np.abs(image - light[0])
        return dist
    luma_a = float(np.dot(np.asarray(GRAY_WEIGHTS), light.astype(np.float64)))
    luma = to_gray(image) if gray is None else gray
    out: FloatArray = np.abs(luma - luma.dtype.type(luma_a))
    return out


def apply_tolerance(
    t: FloatArray, distance: FloatArray, tolerance: float, t0: float, amount: float = 1.0
) -> FloatArray:
    """Apply the K-tolerance rule and the haze ``amount`` to validated same-shape float planes.

    ``min(max(K / distance, 1) · max(t, t0), 1)``, then t ← 1 − amount · (1 − t); see
    :func:`tolerance_transmission`.
    """
    out = np.empty_like(t)
    run_bands(
        lambda i0, i1: _rk.tolerance_rule(t, distance, tolerance, t0, amount, out, i0, i1),
        t.shape[0],
    )
    return out


def tolerance_transmission(
    transmission: ArrayLike,
    image: ArrayLike,
    atmospheric_light: ArrayLike,
    tolerance: float,
    *,
    t0: float = 0.1,
) -> FloatArray:
    """Raise the transmission where the image is close to A (the K-tolerance rule).

    ``t'(x) = min(max(K / |I(x) − A|, 1) · max(t(x), t0), 1)``, with ``|I − A|`` the absolute
    difference of the luma (Rec. 601) of the pixel and of A. Pixels farther than K from A
    keep max(t, t0); closer pixels (sky, dense haze, bright objects that violate the
    dark-channel prior) get a transmission raised in proportion, up to 1 at I = A, so
    (I − A)/t no longer amplifies their small differences from A into blown-out colour.

    Parameters
    ----------
    transmission : (H, W) ndarray
        Transmission t, finite.
    image : (H, W, 3) or (H, W) ndarray
        The hazy image (uint8/uint16/float32/float64, float in [0, 1]).
    atmospheric_light : float or (C,) array_like
        A on the [0, 1] scale, components in (0, 1].
    tolerance : float
        K in [0, 1]; 0 leaves max(t, t0) unchanged.
    t0 : float, optional
        Lower bound on t in [0.001, 1) applied before scaling.

    Returns
    -------
    (H, W) ndarray
        t' in [t0, 1]; float64 if ``transmission`` or ``image`` is float64, else float32.

    References
    ----------
    .. [1] J. Jiang, T. Hou and M. Qi, "Improved algorithm on image haze removal using
       dark channel prior" (in Chinese), Journal of Circuits and Systems 16(2), 7–12, 2011:
       the tolerance K on ``|I − A|`` for bright regions.
    .. [2] K. He, J. Sun and X. Tang, "Single image haze removal using dark channel
       prior", IEEE TPAMI 33(12), 2011 (the prior and its failure on bright regions).

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import tolerance_transmission
    >>> img = np.array([[[0.9, 0.9, 0.9], [0.5, 0.5, 0.5]]])
    >>> tolerance_transmission(np.full((1, 2), 0.2), img, 1.0, 0.2)
    array([[0.4, 0.2]])
    """
    img = as_float_image(image)
    t = check_float_map(transmission, "transmission", img.shape[:2])
    channels = 1 if img.ndim == 2 else img.shape[2]
    light = check_atmospheric_light(atmospheric_light, channels, img.dtype)
    k = check_unit(tolerance, "tolerance")
    lo = check_t0(t0)
    dtype = np.result_type(img.dtype, t.dtype)
    dist = np.ascontiguousarray(distance_to_light(img, light), dtype=dtype)
    return apply_tolerance(np.ascontiguousarray(t, dtype=dtype), dist, k, lo)


def luma_sky_fraction(
    gray: FloatArray, luma_of_light: float, radius: int, max_std: float, max_distance: float
) -> float:
    """Fraction of the top third of ``gray`` that is flat and within ``max_distance`` of A."""
    rows = max(1, gray.shape[0] // 3)
    # the windows of the top ``rows`` rows reach ``radius`` rows further down, no more
    band = np.ascontiguousarray(gray[: min(gray.shape[0], rows + radius)])
    r = min(radius, max(band.shape))
    counts: dict[int, int] = {}

    def count(j0: int, j1: int) -> None:
        var = max_std * max_std
        counts[j0] = _rk.sky_count(band, rows, r, var, luma_of_light, max_distance, j0, j1)

    run_bands(count, band.shape[1])
    return float(sum(counts.values())) / float(rows * band.shape[1])


def light_luma(light: FloatArray) -> float:
    """Rec. 601 luma of an atmospheric light (its only component for gray images)."""
    if light.shape[0] == 1:
        return float(light[0])
    return float(np.dot(np.asarray(GRAY_WEIGHTS), light.astype(np.float64)))


def sky_fraction(
    image: ArrayLike,
    atmospheric_light: ArrayLike,
    *,
    radius: int = 7,
    max_std: float = 0.02,
    max_distance: float = 0.2,
) -> float:
    """Fraction of the top third of the image that looks like sky: flat and close to A.

    A pixel of the top ⌊H / 3⌋ rows (at least one) counts when the standard deviation of the
    luma over the (2r + 1)² window around it is below ``max_std`` and its luma is within
    ``max_distance`` of the luma of A. Luma is Rec. 601 (Y = 0.299 R + 0.587 G + 0.114 B);
    the window is clipped to the image and the moments are divided by the number of
    in-image pixels (the border rule of :func:`dehaze.box_filter`), in float64.

    Sky, overcast horizons and fog banks are bright, close to A and flat; these are the
    regions where the dark-channel prior fails and the K-tolerance rule must be strong.
    :class:`RobustDCP` uses this statistic to choose K per image.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        uint8/uint16/float32/float64 image (float in [0, 1]).
    atmospheric_light : float or (C,) array_like
        A on the [0, 1] scale, components in (0, 1].
    radius : int, optional
        Window radius r ≥ 0 of the local standard deviation.
    max_std : float, optional
        Largest local luma standard deviation of a flat pixel, > 0.
    max_distance : float, optional
        Largest ``|Y(I) − Y(A)|`` of a sky pixel, > 0.

    Returns
    -------
    float
        The fraction in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import sky_fraction
    >>> img = np.random.default_rng(0).random((90, 60, 3)) * 0.4
    >>> img[:17] = 0.9       # flat rows 0-14 (windows of radius 2): half of the top third
    >>> sky_fraction(img, 0.9, radius=2)
    0.5
    """
    img = as_float_image(image)
    channels = 1 if img.ndim == 2 else img.shape[2]
    light = check_atmospheric_light(atmospheric_light, channels, img.dtype)
    r = check_radius(radius, "radius")
    std = check_real(max_std, "max_std", low=0.0)
    dist = check_real(max_distance, "max_distance", low=0.0)
    return luma_sky_fraction(to_gray(img), light_luma(light), r, std, dist)


def boundary_transmission(image: FloatArray, light: FloatArray) -> FloatArray:
    """Return the smallest t keeping J = (I − A) / t + A ≤ 1 in every channel (Meng's box).

    ``max_c (I_c − A_c) / (1 − A_c)``, clipped to [0, 1] (0 where I ≤ A in every channel):
    a pixel brighter than A (the sun, a white wall) is recovered with at least this t, so it
    is not blown out. The upper side of the radiance box of Meng et al.; ``1 − A_c`` is taken
    at least 1e-3. ``image`` is a validated float image (H×W or H×W×C), ``light`` its A.
    (:class:`dehaze.ClearHaze` computes the same bound inside its working-scale kernel,
    :func:`dehaze._kernels.clear.transmission_terms`; this is its reference.)

    References
    ----------
    .. [1] G. Meng, Y. Wang, J. Duan, S. Xiang and C. Pan, "Efficient image dehazing with
       boundary constraint and contextual regularization", ICCV 2013.
    """
    dtype = image.dtype
    a = np.asarray(light, dtype=dtype)
    room = np.maximum(dtype.type(1.0) - a, dtype.type(1e-3))
    if image.ndim == 2:
        bound = (image - a[0]) / room[0]
    else:  # channel by channel: a reduction over a short last axis is slow in NumPy
        bound = (image[:, :, 0] - a[0]) / room[0]
        for c in range(1, image.shape[2]):
            np.maximum(bound, (image[:, :, c] - a[c]) / room[c], out=bound)
    clipped: FloatArray = np.clip(bound, dtype.type(0.0), dtype.type(1.0), out=bound)
    return clipped


def clip_transmission(t: FloatArray, t0: float) -> FloatArray:
    """Clip a copy of ``t`` to [t0, 1]: the transmission a method returns.

    The refinement can leave t below 0 or above 1 (the guided filter is not bounded by its
    input's range); the recovery divides by max(t, t0), and a returned map is read as a
    physical transmission, so it is reported within [t0, 1].
    """
    clipped: FloatArray = np.clip(t, t.dtype.type(t0), t.dtype.type(1.0))
    return clipped


def weaken_haze_removal(
    t: FloatArray,
    distance: FloatArray | None,
    tolerance: float | None,
    t0: float,
    amount: float,
) -> FloatArray:
    """Protect pixels close to A and keep part of the haze: the tolerance rule, else ``amount``.

    With a ``tolerance`` K, :func:`apply_tolerance` (``distance`` from
    :func:`distance_to_light` is then required); without one, t ← 1 − amount · (1 − t)
    when ``amount`` < 1, else ``t`` unchanged. Validated same-shape float planes.
    """
    if tolerance is not None:
        if distance is None:
            raise ValueError("the tolerance rule needs the distance to A")
        return apply_tolerance(t, distance, tolerance, t0, amount)
    if amount < 1.0:
        weakened: FloatArray = (1.0 - amount * (1.0 - t)).astype(t.dtype, copy=False)
        return weakened
    return t
