"""A built-in hazy sample: a scikit-image photo hazed synthetically with a depth ramp."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def synthetic_hazy(
    *, beta: float = 1.2, light: tuple[float, float, float] = (0.85, 0.87, 0.9)
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float64]]:
    """Make a hazy image from ``skimage.data.astronaut()`` with the haze model.

    A vertical depth ramp d (0 at the bottom, 1 at the top, plus a gentle horizontal
    slope) gives t = exp(−β d); the hazy image is I = J t + A (1 − t).

    Returns
    -------
    hazy, clear : (512, 512, 3) uint8 ndarray
        The hazy image and the clear original.
    transmission : (512, 512) float64 ndarray
        The true transmission used.
    """
    from skimage import data

    clear: NDArray[Any] = data.astronaut()
    height, width = clear.shape[:2]
    rows = np.linspace(1.0, 0.0, height)[:, np.newaxis]
    cols = np.linspace(0.0, 0.3, width)[np.newaxis, :]
    depth = rows * 0.8 + cols
    t = np.exp(-beta * depth)
    j = clear.astype(np.float64) / 255.0
    a = np.asarray(light, dtype=np.float64)
    hazy = j * t[:, :, np.newaxis] + a * (1.0 - t[:, :, np.newaxis])
    hazy_u8 = np.rint(np.clip(hazy, 0.0, 1.0) * 255.0).astype(np.uint8)
    return hazy_u8, clear.astype(np.uint8), t
