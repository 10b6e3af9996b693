"""Scene radiance recovery J = (I − A) / max(t, t0) + A, fused into one pass."""

from __future__ import annotations

import numpy as np  # noqa: F401

from dehaze._jit import jit
from dehaze._kernels import Array


@jit
def recover_radiance(
    image: Array, transmission: Array, light: Array, t0: float, clip: bool, out: Array
) -> None:
    """Recover every channel of an H×W×C image; clip J to [0, 1] when ``clip``."""
    height, width, channels = image.shape
    for i in range(height):
        for j in range(width):
            t = transmission[i, j]
            if t < t0:
                t = t0
            inv_t = 1.0 / t
            for c in range(channels):
                a = light[c]
                v = (image[i, j, c] - a) * inv_t + a
                if clip:
                    if v < 0.0:
                        v = 0.0
                    elif v > 1.0:
                        v = 1.0
                out[i, j, c] = v
