"""Input checks and the dtype rule, in one place.

Every public function converts its inputs through these helpers, so kernels only ever see
C-contiguous float32/float64 arrays that are finite and of the documented shape.

The dtype rule (after scikit-image's ``_supported_float_type``):

* float64 input is processed in float64; float32 in float32;
* uint8 and uint16 input is scaled to [0, 1] and processed in float32 (24 mantissa bits
  hold every uint16 value exactly);
* results are returned in the caller's dtype by :func:`restore_dtype`, integer outputs
  rounded and clipped to the dtype's range.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

FloatArray = NDArray[np.floating[Any]]

#: dtypes accepted for images, in the order they are listed in error messages.
SUPPORTED_DTYPES: tuple[np.dtype[Any], ...] = (
    np.dtype(np.uint8),
    np.dtype(np.uint16),
    np.dtype(np.float32),
    np.dtype(np.float64),
)
_SUPPORTED_NAMES = ", ".join(d.name for d in SUPPORTED_DTYPES)


def working_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """Return the float dtype used to process images of ``dtype``.

    float64 stays float64; float32, uint8 and uint16 are processed in float32.
    """
    dt = np.dtype(dtype)
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


#: Unsigned type of each float size, and the bits of 1.0 read as it (see check_image).
_UNIT_BITS: dict[int, np.dtype[Any]] = {4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}
_ONE_BITS = {
    size: int(np.array(1.0, dtype=f"f{size}").view(bits)) for size, bits in _UNIT_BITS.items()
}


def _surely_unit(arr: np.ndarray) -> bool:
    """Whether every value of a float32/float64 array is in [+0, 1], in one integer pass.

    Read as unsigned integers, the values in [+0, 1] are exactly the bit patterns up to
    1.0's; NaN, ±inf, negatives and values above 1 all have larger ones, and so has −0.0
    (the sign bit alone). False therefore means "look again" (−0.0 is a valid value), not
    "invalid". Half the time of a min and a max over the image.
    """
    size = arr.dtype.itemsize
    return bool(arr.view(_UNIT_BITS[size]).max() <= _ONE_BITS[size])


def check_values(arr: np.ndarray, name: str = "image") -> None:
    """Raise ValueError unless every value of a float ``arr`` is finite and in [0, 1].

    Integer arrays pass. One integer pass (:func:`_surely_unit`) decides for a valid image;
    only a suspect one is read again, for the message.
    """
    if arr.dtype.kind != "f" or _surely_unit(arr):
        return
    lo = float(np.min(arr))
    hi = float(np.max(arr))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf; only finite values are accepted")
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} is a float image with values in [{lo!r}, {hi!r}]; float images "
            f"must lie in [0, 1] (scale it, e.g. {name} / 255, or clip it yourself)"
        )


def check_image(
    image: ArrayLike, name: str = "image", *, allow_gray: bool = True, values: bool = True
) -> np.ndarray:
    """Check an image's type, shape and values; return it as an ndarray (no copy).

    Accepted: H×W×3 RGB (and H×W gray if ``allow_gray``) arrays of uint8, uint16, float32
    or float64 with H, W ≥ 1; float images must be finite and within [0, 1].

    With ``values=False`` the values are not read: the caller checks them itself, in a
    pass over the image it makes anyway, and calls :func:`check_values` (which raises the
    same errors) if it finds one outside [0, 1] (ClearHaze's block means).

    Raises
    ------
    TypeError
        If ``image`` is not array-like of a supported dtype.
    ValueError
        If the shape, channel count or values are not accepted.
    """
    if isinstance(image, np.ndarray):
        arr = image
    else:
        try:
            arr = np.asarray(image)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise TypeError(f"{name} must be a NumPy array, got {type(image).__name__}") from exc
    if not arr.dtype.isnative and arr.dtype.newbyteorder("=") in SUPPORTED_DTYPES:
        raise TypeError(
            f"{name} has dtype {arr.dtype.str} (non-native byte order); {arr.dtype.name} is "
            f"accepted in the machine's byte order only: convert with "
            f"{name}.astype({name}.dtype.newbyteorder('='))"
        )
    if arr.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{name} has dtype {arr.dtype}; accepted dtypes are {_SUPPORTED_NAMES} "
            f"(convert with skimage.util.img_as_float32 or .astype)"
        )
    shapes = "H×W×3 (RGB) or H×W (gray)" if allow_gray else "H×W×3 (RGB)"
    if arr.ndim == 3:
        channels = arr.shape[2]
        if channels == 4:
            raise ValueError(
                f"{name} has 4 channels (RGBA?); accepted shapes are {shapes}. "
                f"Drop the alpha channel first, e.g. {name}[..., :3]"
            )
        if channels != 3:
            raise ValueError(f"{name} has {channels} channels; accepted shapes are {shapes}")
    elif arr.ndim == 2:
        if not allow_gray:
            raise ValueError(f"{name} is 2-D (gray); accepted shapes are {shapes}")
    else:
        raise ValueError(
            f"{name} has ndim={arr.ndim} (shape {arr.shape}); accepted shapes are {shapes}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); height and width must be ≥ 1")
    if values:
        check_values(arr, name)
    return arr


def as_float_image(image: ArrayLike, name: str = "image", *, allow_gray: bool = True) -> FloatArray:
    """Validate ``image`` and return a C-contiguous float copy (or view) in [0, 1].

    Integer images are scaled by their dtype's maximum; the float dtype follows
    :func:`working_dtype`. The input is never modified: a new array is returned whenever a
    conversion is needed, and the caller must not write into the result (it may be the
    input itself when that is already C-contiguous float).
    """
    arr = check_image(image, name, allow_gray=allow_gray)
    wdt = working_dtype(arr.dtype)
    if arr.dtype.kind == "u":
        scale = wdt.type(1.0 / np.iinfo(arr.dtype).max)
        out = np.multiply(arr, scale, dtype=wdt)
        return np.ascontiguousarray(out)
    return np.ascontiguousarray(arr, dtype=wdt)


def as_pixels(
    image: ArrayLike, name: str = "image", *, allow_gray: bool = True, values: bool = True
) -> tuple[np.ndarray, float]:
    """Validate ``image``; return C-contiguous pixels and the factor that maps them to [0, 1].

    Unsigned-integer images keep their dtype (factor ``1 / dtype max``): kernels that
    accept them scale while they read, which saves the float copy of the whole image (a
    uint8 image is a quarter of its float32 copy). Float images are returned as
    :func:`as_float_image` returns them, with factor 1. The caller must not write into
    the result. ``values`` as for :func:`check_image`.
    """
    arr = check_image(image, name, allow_gray=allow_gray, values=values)
    if arr.dtype.kind == "u":
        return np.ascontiguousarray(arr), 1.0 / float(np.iinfo(arr.dtype).max)
    return np.ascontiguousarray(arr, dtype=working_dtype(arr.dtype)), 1.0


def as_channels(image: FloatArray) -> FloatArray:
    """View an H×W image as H×W×1 (an H×W×C image is returned unchanged)."""
    return image if image.ndim == 3 else image[:, :, np.newaxis]


def restore_dtype(image: FloatArray, dtype: DTypeLike) -> np.ndarray:
    """Convert a float image in [0, 1] back to ``dtype``.

    Integer dtypes are rounded to nearest after scaling and clipped to the dtype's range
    (values of a dehazed image outside [0, 1] cannot be stored in an integer image);
    float dtypes are cast.
    """
    dt = np.dtype(dtype)
    if dt.kind == "u":
        info = np.iinfo(dt)
        scaled = np.clip(image, 0.0, 1.0) * float(info.max)
        as_int: np.ndarray = np.rint(scaled).astype(dt)
        return as_int
    as_float: np.ndarray = np.asarray(image, dtype=dt)
    return as_float


def check_radius(value: Any, name: str, *, minimum: int = 0) -> int:
    """Return ``value`` as an int if it is an integer ≥ ``minimum``; otherwise raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer ≥ {minimum}, got {value!r} ({type(value).__name__})"
        )
    ivalue = int(value)
    if ivalue < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {ivalue}")
    return ivalue


def check_real(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = False,
) -> float:
    """Return ``value`` as a float if it is a real number in the stated interval; else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    fvalue = float(value)
    lo_b = "[" if low_inclusive else "("
    hi_b = "]" if high_inclusive else ")"
    lo_s = "-inf" if low is None else f"{low:g}"
    hi_s = "inf" if high is None else f"{high:g}"
    interval = f"{lo_b}{lo_s}, {hi_s}{hi_b}"
    ok = np.isfinite(fvalue)
    if ok and low is not None:
        ok = fvalue >= low if low_inclusive else fvalue > low
    if ok and high is not None:
        ok = fvalue <= high if high_inclusive else fvalue < high
    if not ok:
        raise ValueError(f"{name} must be in {interval}, got {fvalue!r}")
    return fvalue


#: Smallest ``t0`` (lower bound on the transmission) accepted anywhere: 1e-3, a gain of at
#: most 1000. ClearHaze (by default) and every uint8, uint16 and float32 image compute in
#: float32, and the recovery J = (I − A) / t + A amplifies the rounding of I − A (about
#: 3e-8 where I equals A: the kernels may fuse the multiply-add) by 1 / t. Near float32's
#: smallest normal number (1.2e-38, where 1 / t0 overflows and a flat area at A gave 0 / 0)
#: a flat uint8 area at A came out 255 instead of 178; at 1e-5 it was off by one level.
#: At 1e-3 the error is about 3e-5, a fiftieth of an 8-bit level, and every gain, image
#: and depth (−ln t0 ≤ 6.91) stays finite. Useful floors are far above it (He et al.: 0.1).
MIN_T0 = 1e-3


def check_t0(value: Any, name: str = "t0") -> float:
    """Return ``t0`` as a float if it is a real number in [:data:`MIN_T0`, 1); else raise.

    Raises
    ------
    TypeError
        For strings, bools and non-real values.
    ValueError
        For values outside (0, 1), or in (0, :data:`MIN_T0`).
    """
    t0 = check_real(value, name, low=0.0, high=1.0)
    if t0 < MIN_T0:
        raise ValueError(
            f"{name} must be in [{MIN_T0!r}, 1) (a gain of at most {1 / MIN_T0:g}: the "
            f"recovery runs in float32 for ClearHaze and for uint8, uint16 and float32 "
            f"images, and a smaller {name} amplifies its rounding past a grey level), "
            f"got {t0!r}"
        )
    return t0


def check_unit(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is a real number in [0, 1]; otherwise raise."""
    return check_real(value, name, low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise ValueError."""
    if not isinstance(value, str) or value not in choices:
        accepted = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {accepted}, got {value!r}")
    return value


def check_float_map(
    array: ArrayLike, name: str, shape: tuple[int, ...] | None = None
) -> FloatArray:
    """Validate a finite real 2-D map (e.g. a transmission) and return it as float.

    float32 stays float32; every other real dtype becomes float64. ``shape``, when given,
    is the required shape.
    """
    arr = np.asarray(array)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise TypeError(f"{name} must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H×W), got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} to match the image, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    wdt = np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)
    out: FloatArray = np.ascontiguousarray(arr, dtype=wdt)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or inf; only finite values are accepted")
    return out


def _real_values(value: Any, name: str) -> NDArray[np.float64]:
    """Return ``value`` (a real scalar or sequence of reals) as a float64 array.

    Strings, bools and bool arrays are refused with ``TypeError`` (``np.asarray`` would
    turn ``"0.9"`` into text and ``True`` into 1.0), also inside lists and tuples.
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, np.ndarray) and item.ndim == 0:
            item = item[()]
        if isinstance(item, np.ndarray):
            if item.dtype.kind not in "fiu":
                raise TypeError(f"{name} must hold real numbers, got dtype {item.dtype}")
        elif isinstance(item, (bool, np.bool_, str, bytes)) or not isinstance(item, numbers.Real):
            raise TypeError(
                f"{name} must be a real number or a sequence of real numbers, got "
                f"{item!r} ({type(item).__name__})"
            )
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real scalar or sequence, got {value!r}") from exc
    return arr


def check_atmospheric_light(value: ArrayLike, channels: int, dtype: DTypeLike) -> FloatArray:
    """Validate a user-given atmospheric light for an image with ``channels`` channels.

    Accepted: a real scalar (the same value for every channel) or a sequence of length
    ``channels``, every value in (0, 1] on the float scale of the image (for integer
    images, a fraction of the dtype's maximum). The values are checked *after* the cast
    to ``dtype``'s working dtype: each must be at least that dtype's smallest normal
    number (``1.2e-38`` for float32, ``2.2e-308`` for float64), so that it is not 0
    there and ``image / light`` stays finite. Strings and bools are refused.

    Raises
    ------
    TypeError
        For strings, bools, or values that are not real numbers.
    ValueError
        For a wrong length, non-finite values, or values outside the accepted range.
    """
    name = "atmospheric_light"
    arr = _real_values(value, name)
    if arr.ndim == 0:
        arr = np.full(channels, float(arr))
    if arr.shape != (channels,):
        raise ValueError(
            f"{name} must be a scalar or have shape ({channels},) for a "
            f"{channels}-channel image, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0) or np.any(arr > 1.0):
        raise ValueError(
            f"{name} values must be in (0, 1] on the image's float scale (for integer images "
            f"divide by the dtype's maximum, e.g. 230/255), got {arr.tolist()}"
        )
    wdt = working_dtype(dtype)
    cast = arr.astype(wdt)
    tiny = float(np.finfo(wdt).tiny)
    if np.any(cast < tiny):
        raise ValueError(
            f"{name} values must be at least {tiny:.3g} (the smallest normal {wdt.name}; "
            f"images of this dtype are processed in {wdt.name}, where smaller values "
            f"become 0 or make image / {name} overflow), got {arr.tolist()}"
        )
    return cast


#: Smallest regularisation ε :func:`dehaze.guided_filter` accepts. Box statistics are
#: accumulated in float64 with running sums whose round-off reaches ~1e-14 on large
#: images; far below that, ε no longer regularises the solve (a flat window's 3×3 system
#: becomes singular, det = ε³ underflows below ~1e-103) and outputs degenerate.
MIN_EPS = 1e-12


def check_buffer(
    array: NDArray[Any], name: str, shape: tuple[int, ...], dtype: DTypeLike
) -> NDArray[Any]:
    """Check that an output or scratch array is C-contiguous of this shape and dtype.

    Returns it; raises ValueError naming ``name``, the shape and dtype wanted and given.
    """
    want = np.dtype(dtype)
    if array.shape != tuple(shape) or array.dtype != want or not array.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a C-contiguous {want} array of shape {tuple(shape)}, got "
            f"{array.dtype} {array.shape}"
        )
    return array


def buffer_or_new(
    array: NDArray[Any] | None, name: str, shape: tuple[int, ...], dtype: DTypeLike
) -> NDArray[Any]:
    """Return ``array`` checked by :func:`check_buffer`, or a new (uninitialised) one if None."""
    if array is None:
        return np.empty(shape, dtype=dtype)
    return check_buffer(array, name, shape, dtype)


def check_eps(value: Any, name: str = "eps") -> float:
    """Return the guided filter's ``eps`` as a float if it is a real number ≥ :data:`MIN_EPS`.

    Raises
    ------
    TypeError
        For strings, bools and non-real values.
    ValueError
        For values below :data:`MIN_EPS` or non-finite values.
    """
    return check_real(value, name, low=MIN_EPS, low_inclusive=True)
