"""Recovery of the scene radiance J = (I − A) / max(t, t0) + A (a per-pixel stage)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._lazy import lazy_module
from dehaze._parallel import run_bands
from dehaze._validate import (
    FloatArray,
    as_channels,
    as_pixels,
    check_atmospheric_light,
    check_float_map,
    check_t0,
    working_dtype,
)

if TYPE_CHECKING:
    from dehaze._kernels import recover as _rec
else:
    _rec = lazy_module("dehaze._kernels.recover")  # Numba is imported on first use

__all__ = ["recover", "recover_pixels"]


def recover_pixels(
    image: FloatArray,
    t: FloatArray,
    light: FloatArray,
    t0: float,
    clip: bool,
    out_dtype: np.dtype[Any],
    unit: float = 1.0,
) -> NDArray[Any]:
    """Recover J in ``out_dtype`` (integers: clipped, scaled and rounded in the same pass).

    ``image`` holds validated pixels: float, or unsigned int with ``unit = 1 / dtype max``.
    """
    img3 = as_channels(image)
    height, width, channels = img3.shape
    wdt = working_dtype(image.dtype)
    out = np.empty(img3.shape, dtype=out_dtype)
    out_scale = float(np.iinfo(out_dtype).max) if out_dtype.kind == "u" else 0.0
    t_c = np.ascontiguousarray(t, dtype=wdt)
    light_c = np.ascontiguousarray(light, dtype=wdt)
    do_clip = clip or out_scale > 0.0
    # rows as flat runs of W·C samples (a view for the C-contiguous pixels of the pipeline)
    flat = np.ascontiguousarray(img3).reshape(height, width * channels)
    out_flat = out.reshape(height, width * channels)
    run_bands(
        lambda i0, i1: _rec.recover_radiance(
            flat, t_c, light_c, unit, float(t0), do_clip, out_scale, out_flat, i0, i1
        ),
        height,
    )
    return out.reshape(image.shape)


def recover(
    image: ArrayLike,
    transmission: ArrayLike,
    atmospheric_light: ArrayLike,
    *,
    t0: float = 0.1,
    clip: bool = True,
) -> NDArray[Any]:
    """Recover the scene radiance J = (I − A) / max(t, t0) + A.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        The hazy image, uint8/uint16/float32/float64 (float in [0, 1]).
    transmission : (H, W) ndarray
        Transmission t, finite.
    atmospheric_light : float or (C,) array_like
        A on the [0, 1] scale, every component in (0, 1].
    t0 : float, optional
        Lower bound on t in [0.001, 1) (0.1 in the paper) so that noise is not amplified
        without bound. The lower end is :data:`dehaze._validate.MIN_T0`: below it the
        float32 rounding of I − A, amplified by 1 / t0, reaches a grey level.
    clip : bool, optional
        Clip J to [0, 1] (default). Integer outputs are always clipped to the dtype's
        range; ``clip=False`` keeps float outputs unclipped.

    Returns
    -------
    ndarray
        J with the input's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import recover
    >>> hazy = np.full((2, 2, 3), 0.6)
    >>> round(float(recover(hazy, np.full((2, 2), 0.5), 1.0)[0, 0, 0]), 6)
    0.2
    """
    arr = np.asarray(image)
    px, unit = as_pixels(arr)  # integer pixels are scaled as they are read (no float copy)
    t = check_float_map(transmission, "transmission", px.shape[:2])
    channels = 1 if px.ndim == 2 else px.shape[2]
    light = check_atmospheric_light(atmospheric_light, channels, working_dtype(px.dtype))
    lo = check_t0(t0)
    if not isinstance(clip, (bool, np.bool_)):
        raise TypeError(f"clip must be True or False, got {clip!r}")
    return recover_pixels(px, t, light, lo, bool(clip), arr.dtype, unit)
