"""Pieces shared by the network adapters: weight validation, image in/out, npz tagging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._validate import FloatArray, as_float_image, restore_dtype

#: Version of the neutral ``.npz`` layout written by ``save_npz``.
NPZ_FORMAT_VERSION = 1

#: Rec. 601 luma weights used to return a gray result for a gray input.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def checked_weight(value: Any, name: str, shape: tuple[int, ...]) -> FloatArray:
    """Return ``value`` as a read-only float32/float64 array of exactly ``shape``.

    float16 is widened to float32 (exactly); other dtypes raise ``TypeError``; a wrong
    shape or non-finite values raise ``ValueError``.
    """
    arr = np.asarray(value)
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"weight {name} must be float32 or float64, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"weight {name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"weight {name} contains NaN or inf")
    out = np.array(arr, order="C", copy=True)
    out.setflags(write=False)
    return out


def weights_repr(name: str, arrays: Mapping[str, NDArray[Any]]) -> str:
    """Short summary of a weight set: parameter count, dtypes and kernel shapes.

    ``repr`` of a network must not print thousands of numbers; biases are counted but not
    listed (their shape follows from the kernel's).
    """
    count = sum(int(a.size) for a in arrays.values())
    dtypes = "/".join(sorted({str(a.dtype) for a in arrays.values()}))
    kernels = ", ".join(
        f"{k.removesuffix('_weight')} {tuple(a.shape)}"
        for k, a in arrays.items()
        if k.endswith("_weight")
    )
    return f"{name}({count} parameters, {dtypes}; {kernels})"


def check_keys(found: Mapping[str, Any], expected: tuple[str, ...], source: str) -> None:
    """Raise ``ValueError`` unless ``found`` has exactly the ``expected`` keys."""
    missing = [k for k in expected if k not in found]
    extra = sorted(k for k in found if k not in expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise ValueError(f"{source}: {'; '.join(parts)} (expected exactly {list(expected)})")


def npz_arrays(network: str, weights: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Return the arrays of a neutral ``.npz``: the weights, a network tag and a version."""
    arrays: dict[str, NDArray[Any]] = {
        "network": np.array(network),
        "format_version": np.array(NPZ_FORMAT_VERSION),
    }
    arrays.update(weights)
    return arrays


def npz_weights(arrays: Mapping[str, NDArray[Any]], network: str) -> dict[str, NDArray[Any]]:
    """Check the tag and version of a neutral ``.npz`` and return its weight arrays."""
    tag = arrays.get("network")
    if tag is None or tag.dtype.kind != "U" or tag.ndim != 0:
        raise ValueError(f"not a dehaze weight archive (no 'network' tag); expected {network}")
    if str(tag) != network:
        raise ValueError(f"the archive holds {str(tag)!r} weights, not {network!r}")
    version = arrays.get("format_version")
    if version is None or version.ndim != 0 or int(version) != NPZ_FORMAT_VERSION:
        raise ValueError(
            f"unsupported weight archive version {None if version is None else version.item()}"
            f"; this dehaze reads version {NPZ_FORMAT_VERSION}"
        )
    return {k: v for k, v in arrays.items() if k not in ("network", "format_version")}


def prepare_rgb(image: ArrayLike) -> tuple[FloatArray, np.dtype[Any], bool]:
    """Validate an image and return it as float (H, W, 3), its dtype and whether it was gray.

    A gray H×W image is replicated to three channels (the networks are RGB).
    """
    arr = np.asarray(image)
    img = as_float_image(arr)
    gray = img.ndim == 2
    if gray:
        img = np.ascontiguousarray(np.repeat(img[:, :, np.newaxis], 3, axis=2))
    return img, arr.dtype, gray


def finish_image(rgb: FloatArray, dtype: np.dtype[Any], gray: bool) -> NDArray[Any]:
    """Clip a float RGB result to [0, 1], reduce to luma for gray input, restore ``dtype``."""
    out = np.clip(rgb, 0.0, 1.0)
    if gray:
        out = np.clip(out @ np.asarray(LUMA_WEIGHTS, dtype=out.dtype), 0.0, 1.0)
    return restore_dtype(out, dtype)


def to_planes(image: FloatArray) -> FloatArray:
    """(H, W, C) → C-contiguous (C, H, W)."""
    return np.ascontiguousarray(np.moveaxis(image, 2, 0))


def from_planes(planes: FloatArray) -> FloatArray:
    """(C, H, W) → C-contiguous (H, W, C)."""
    return np.ascontiguousarray(np.moveaxis(planes, 0, 2))
