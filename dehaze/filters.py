"""Min and box filters whose cost does not depend on the window size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._lazy import lazy_module
from dehaze._parallel import run_bands
from dehaze._validate import SUPPORTED_DTYPES, FloatArray, check_radius, working_dtype

if TYPE_CHECKING:
    from dehaze._kernels import boxfilter as _box
    from dehaze._kernels import minfilter as _min
else:
    _box = lazy_module("dehaze._kernels.boxfilter")  # Numba is imported on first use
    _min = lazy_module("dehaze._kernels.minfilter")  # Numba is imported on first use

__all__ = ["box_filter", "min_filter"]


def _check_array(array: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(array)
    if arr.dtype not in SUPPORTED_DTYPES:
        accepted = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise TypeError(f"{name} has dtype {arr.dtype}; accepted dtypes are {accepted}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be H×W or H×W×C, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind == "f" and not np.isfinite(_largest_magnitude(arr)):
        raise ValueError(f"{name} contains NaN or inf; only finite values are accepted")
    return arr


def _largest_magnitude(arr: np.ndarray) -> float:
    """Return max |value| of a non-empty array, NaN if it holds a NaN (two reductions, no copy)."""
    return max(abs(float(arr.min())), abs(float(arr.max())))


def min_filter_plane(
    image: FloatArray,
    radius: int,
    scale: FloatArray | None = None,
    affine: tuple[float, float] = (1.0, 0.0),
    step: int = 1,
) -> FloatArray:
    """Min filter over a (2r+1)² window clipped to the array (internal, unchecked).

    ``image`` is a C-contiguous float H×W plane, or H×W×C, in which case the minimum over
    channels of ``image · scale`` (per channel; ones by default) is filtered: the dark
    channel of ``image / A`` with ``scale = 1 / A``. ``image`` may also hold unsigned-integer
    pixels with the 1 / dtype-max factor folded into ``scale``; the result is float in
    the working dtype. ``affine = (m, a)`` returns m · min + a instead, in the same pass.

    ``step`` > 1 returns only every step-th row and column from the first (the full-size
    filter's values there, exactly: the fast guided filter's coarse grid): the row pass
    runs on every row but stores every step-th column only, the column pass runs on those,
    ``step`` times cheaper.
    """
    img3 = image if image.ndim == 3 else image[:, :, np.newaxis]
    height, width, channels = img3.shape
    wdt = working_dtype(image.dtype)
    factors = (
        np.ones(channels, dtype=wdt) if scale is None else np.ascontiguousarray(scale, dtype=wdt)
    )
    rows = np.empty((height, -(-width // step)), dtype=wdt)  # every step-th column only
    r_x = min(radius, width - 1)
    run_bands(lambda i0, i1: _min.min_filter_rows(img3, factors, r_x, step, rows, i0, i1), height)
    out = np.empty_like(rows)
    r_y = min(radius, height - 1)
    mul, add = affine
    cols = rows.shape[1]
    run_bands(lambda j0, j1: _min.min_filter_cols(rows, r_y, mul, add, out, j0, j1), cols)
    return out if step == 1 else np.ascontiguousarray(out[::step])


def box_mean_planes(stack: FloatArray, radius: int) -> FloatArray:
    """Box mean of every plane of a C-contiguous float K×H×W stack (internal, unchecked)."""
    out = np.empty_like(stack)
    r = min(radius, max(stack.shape[1], stack.shape[2]))
    run_bands(lambda j0, j1: _box.box_mean_stack(stack, r, out, j0, j1), stack.shape[2])
    return out


def min_filter(array: ArrayLike, radius: int) -> NDArray[Any]:
    """Minimum over a (2·radius + 1)² square window, in O(1) per pixel.

    The van Herk / Gil–Werman algorithm is applied along rows, then columns, so the cost
    per pixel does not depend on ``radius``.

    Parameters
    ----------
    array : (H, W) or (H, W, C) ndarray
        uint8, uint16, float32 or float64, finite. A 3-D array is filtered per channel.
    radius : int
        Window radius r ≥ 0; the window is (2r + 1) × (2r + 1). A radius larger than the
        array is valid (the window then covers the whole array along that axis).

    Returns
    -------
    ndarray
        Same shape and dtype as ``array``.

    Notes
    -----
    Border rule: the window is clipped to the array, which equals padding with +inf (the
    rule of He et al.'s dark channel). ``scipy.ndimage.minimum_filter(array, size=2r+1,
    mode="constant", cval=np.inf)`` gives the same result.

    References
    ----------
    .. [1] M. van Herk, "A fast algorithm for local minimum and maximum filters on
       rectangular and octagonal kernels", Pattern Recognition Letters 13(7), 1992.
    .. [2] J. Gil and M. Werman, "Computing 2-D min, median, and max filters", IEEE TPAMI
       15(5), 1993.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import min_filter
    >>> a = np.array([[3, 1, 4], [1, 5, 9], [2, 6, 5]], dtype=np.uint8)
    >>> min_filter(a, 1)
    array([[1, 1, 1],
           [1, 1, 1],
           [1, 1, 5]], dtype=uint8)
    """
    arr = _check_array(array, "array")
    r = check_radius(radius, "radius")
    wdt = working_dtype(arr.dtype) if arr.dtype.kind == "f" else np.dtype(np.float32)
    if arr.ndim == 2:
        result = min_filter_plane(np.ascontiguousarray(arr, dtype=wdt), r)
    else:
        planes = np.ascontiguousarray(np.moveaxis(arr, -1, 0), dtype=wdt)
        result = np.stack([min_filter_plane(p, r) for p in planes], axis=-1)
    # uint8/uint16 values are exact in float32, so this cast back is exact
    return result.astype(arr.dtype, copy=False)


def box_filter(array: ArrayLike, radius: int) -> FloatArray:
    """Mean over a (2·radius + 1)² square window, in O(1) per pixel.

    Parameters
    ----------
    array : (H, W) or (H, W, C) ndarray
        uint8, uint16, float32 or float64, finite; values are used as they are (integers
        are not rescaled). A 3-D array is filtered per channel.
    radius : int
        Window radius r ≥ 0. A radius larger than the array is valid.

    Returns
    -------
    ndarray
        float64 for float64 input, float32 otherwise; same shape as ``array``.

    Notes
    -----
    Window sums are running sums accumulated in float64 (so E[I²] − E[I]² does not cancel
    badly in float32). Their rounding error is relative to the largest value the window
    has passed over, not to the values in it: next to a value 10¹⁶ times larger, small
    values are lost. Images and maps in [0, 1], or any few orders of magnitude, are
    unaffected. Border rule: the window is clipped to the array and the sum is
    divided by the number of in-array pixels, as in He et al.'s guided-filter code
    (``boxfilter(I, r) ./ boxfilter(ones(size(I)), r)``). This equals
    ``cv2.boxFilter(array, -1, (2r+1, 2r+1), normalize=False, borderType=cv2.BORDER_CONSTANT)``
    divided by the same filter applied to ones.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import box_filter
    >>> box_filter(np.arange(4.0).reshape(2, 2), 1)
    array([[1.5, 1.5],
           [1.5, 1.5]])
    """
    arr = _check_array(array, "array")
    r = check_radius(radius, "radius")
    if arr.dtype == np.float64:  # float32 and integer values cannot overflow float64 sums
        count = min(arr.shape[0], 2 * r + 1) * min(arr.shape[1], 2 * r + 1)
        limit = float(np.finfo(np.float64).max) / count
        largest = _largest_magnitude(arr)
        if largest > limit:
            raise ValueError(
                f"array has values up to {largest:.3g} in magnitude; at radius {r} a window "
                f"sums {count} of them in float64, so at most {limit:.3g} is accepted "
                "(scale the array)"
            )
    wdt = working_dtype(arr.dtype)
    if arr.ndim == 2:
        plane: FloatArray = box_mean_planes(np.ascontiguousarray(arr[np.newaxis], dtype=wdt), r)[0]
        return plane
    stack = np.ascontiguousarray(np.moveaxis(arr, -1, 0), dtype=wdt)
    result: FloatArray = np.ascontiguousarray(np.moveaxis(box_mean_planes(stack, r), 0, -1))
    return result
