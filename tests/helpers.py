"""Array factories shared by the tests: dtypes, shapes and memory layouts."""

from __future__ import annotations

import numpy as np

DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
SHAPES = ((1, 1), (1, 7), (7, 1), (5, 9), (13, 4), (33, 47))
RADII = (0, 1, 3, 60)


def unit_edge_values(dtype: type) -> tuple[list[float], list[float]]:
    """Float values at the edges of [0, 1]: (valid, invalid), the neighbours of 0 and 1 on
    either side and the special values (lists: -0.0 == 0.0 as a key)."""
    info = np.finfo(dtype)
    one_up, tiny = np.nextafter(dtype(1), dtype(2)), info.smallest_subnormal
    valid = [0.0, -0.0, 1.0, tiny, np.nextafter(dtype(1), dtype(0))]
    invalid = [one_up, -tiny, np.inf, -np.inf, np.nan, -np.nan, info.max]
    return valid, invalid


def random_image(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "u":
        return rng.integers(0, np.iinfo(dt).max, size=shape, endpoint=True).astype(dt)
    return rng.random(shape).astype(dt)


def layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    """The same values as C-ordered, F-ordered, strided and read-only arrays."""
    big = np.zeros((a.shape[0] * 2, a.shape[1] * 3) + a.shape[2:], dtype=a.dtype)
    big[::2, ::3] = a
    strided = big[::2, ::3]
    readonly = a.copy()
    readonly.setflags(write=False)
    return {
        "C": np.ascontiguousarray(a),
        "F": np.asfortranarray(a),
        "strided": strided,
        "readonly": readonly,
    }


def tolerance(dtype: type) -> float:
    """Absolute tolerance on [0, 1]-scaled results for a given input dtype."""
    return 1e-10 if np.dtype(dtype) == np.float64 else 2e-5


def dcp_dehaze(image, **params):  # type: ignore[no-untyped-def]
    """The dark-channel-prior pipeline (what dehaze.dehaze() ran before ClearHaze)."""
    import dehaze

    return dehaze.DarkChannelPrior(**params)(image)
