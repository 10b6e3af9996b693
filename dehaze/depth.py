"""Relative depth from transmission, and a colour-mapped view for saving."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._lazy import lazy_module
from dehaze._parallel import run_bands
from dehaze._validate import FloatArray, check_choice, check_float_map, check_real, check_t0

if TYPE_CHECKING:
    import cv2

    from dehaze._kernels import depth as _dk
else:
    cv2 = lazy_module("cv2")  # OpenCV too (dehaze/_lazy.py)
    _dk = lazy_module("dehaze._kernels.depth")  # Numba is imported on first use

__all__ = ["colorize_depth", "depth_map", "depth_plane"]

#: Smallest β :func:`depth_map` accepts. The largest depth is −ln(t0) / β, and t0 is at
#: least :data:`dehaze._validate.MIN_T0` (1e-3), so −ln(t0) ≤ 6.91: with β ≥ 1e-36 every
#: depth is at most 6.9e36, finite in float32 (max 3.4e38, so rounding cannot push it
#: over) and in float64. A smaller β overflows
#: 1 / β or the depth to inf (and t = 1 gives 0 · inf = NaN).
MIN_BETA = 1e-36

#: Colour maps of :func:`colorize_depth`: name -> OpenCV's colour-map constant (looked up
#: when used, so that importing this module does not import OpenCV); "" for plain gray.
COLORMAPS: dict[str, str] = {
    "turbo": "COLORMAP_TURBO",
    "inferno": "COLORMAP_INFERNO",
    "magma": "COLORMAP_MAGMA",
    "viridis": "COLORMAP_VIRIDIS",
    "jet": "COLORMAP_JET",
    "gray": "",
}


def depth_map(transmission: ArrayLike, *, beta: float = 1.0, t0: float = 0.1) -> FloatArray:
    """Relative scene depth d = −ln(t) / β from a transmission map.

    The haze model gives t(x) = exp(−β d(x)); β (the scattering coefficient) is unknown
    from one image, so d is a *relative* depth: correct up to the factor 1/β.

    Parameters
    ----------
    transmission : (H, W) ndarray
        Transmission map, finite real values.
    beta : float, optional
        Scattering coefficient β ≥ 1e-36 (:data:`MIN_BETA`, so that the largest depth
        −ln(t0)/β is finite in float32; default 1: depth in units of 1/β).
    t0 : float, optional
        Lower bound on t in [0.001, 1), as in the recovery step. t is taken in [t0, 1] before
        the logarithm (t > 1 would mean negative depth, t ≤ 0 infinite depth), so depth
        lies in [0, −ln(t0)/β].

    Returns
    -------
    ndarray
        Depth, same shape; float32 for float32 input, float64 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import depth_map
    >>> depth_map(np.array([[1.0, np.exp(-1.0)]]))
    array([[0., 1.]])
    """
    b = check_real(beta, "beta", low=0.0)
    lo = check_t0(t0)
    if b < MIN_BETA:
        raise ValueError(
            f"beta must be at least {MIN_BETA:g} (the largest depth, -ln(t0)/beta = "
            f"{-np.log(lo):.4g}/beta, must be finite in float32), got {b!r}"
        )
    return depth_plane(check_float_map(transmission, "transmission"), b, lo)


def depth_plane(t: FloatArray, beta: float, t0: float) -> FloatArray:
    """−ln(clip(t, t0, 1)) / β of a validated float map (unchecked; see :func:`depth_map`).

    ln(1 / t) rather than −ln(t), so that t = 1 gives +0.0, not −0.0. The logarithm is
    OpenCV's (``cv2.log``, SIMD, within 2 ulp of NumPy's, about 4× faster than
    ``np.log`` here; Numba has no vectorised log without Intel's SVML); 1 / clip is one
    JIT pass. Both run on row bands in parallel.
    """
    depth = np.empty(t.shape, dtype=t.dtype)  # C order: row bands are contiguous for cv2

    def band(i0: int, i1: int) -> None:
        _dk.inverse_clipped(t, t0, depth, i0, i1)
        d = depth[i0:i1]
        cv2.log(d, d)
        if beta != 1.0:
            np.multiply(d, d.dtype.type(1.0 / beta), out=d)

    run_bands(band, t.shape[0])
    return depth


def colorize_depth(
    depth: ArrayLike, *, colormap: str = "turbo", vmax: float | None = None
) -> NDArray[np.uint8]:
    """Map a depth image to an RGB uint8 picture for saving or display.

    Parameters
    ----------
    depth : (H, W) ndarray
        Non-negative depth (e.g. from :func:`depth_map`).
    colormap : {"turbo", "inferno", "magma", "viridis", "jet", "gray"}, optional
        OpenCV colour map; "gray" gives a gray picture in three channels.
    vmax : float, optional
        Depth mapped to the top of the colour map (default: the map's maximum; a constant
        map shows as the bottom colour).

    Returns
    -------
    (H, W, 3) uint8 ndarray
        RGB picture, near = low end of the map.
    """
    name = check_choice(colormap, "colormap", tuple(COLORMAPS))
    d = check_float_map(depth, "depth")
    if np.any(d < 0):
        raise ValueError("depth must be non-negative")
    top = float(d.max()) if vmax is None else check_real(vmax, "vmax", low=0.0)
    levels: NDArray[np.uint8] = np.zeros(d.shape, dtype=np.uint8)
    if top > 0.0:
        # in float64, a band of rows at a time (a 50 MP map would need 400 MB per copy)
        rows = max(1, (1 << 20) // max(1, d.shape[1]))
        for i in range(0, d.shape[0], rows):
            scaled = np.clip(d[i : i + rows].astype(np.float64) / top, 0.0, 1.0)
            levels[i : i + rows] = np.rint(scaled * 255.0)
    if not COLORMAPS[name]:
        gray: NDArray[np.uint8] = np.repeat(levels[:, :, np.newaxis], 3, axis=2)
        return gray
    bgr = cv2.applyColorMap(levels, getattr(cv2, COLORMAPS[name]))
    rgb: NDArray[np.uint8] = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    return rgb
