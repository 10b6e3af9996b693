"""Scene radiance recovery J = (I − A) / max(t, t0) + A and depth, one pass each."""

from __future__ import annotations

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array


@jit
def recover_radiance(
    image: Array,
    transmission: Array,
    light: Array,
    t0: float,
    clip: bool,
    out_scale: float,
    out: np.ndarray,
) -> None:
    """Recover every channel of an H×W×C image into ``out``.

    J is clipped to [0, 1] when ``clip``. With ``out_scale > 0`` (integer outputs) J is
    stored as ``rint(J · out_scale)``, i.e. converted to the caller's integer dtype in the
    same pass; ``out_scale = 0`` stores J as it is (float outputs).
    """
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
                if out_scale > 0.0:
                    out[i, j, c] = np.rint(v * out_scale)
                else:
                    out[i, j, c] = v


@jit
def depth_from_transmission(transmission: Array, t0: float, beta: float, out: Array) -> None:
    """Out = −ln(clip(t, t0, 1)) / β (never −0.0)."""
    height, width = transmission.shape
    inv_beta = 1.0 / beta
    for i in range(height):
        for j in range(width):
            t = transmission[i, j]
            if t >= 1.0:
                out[i, j] = 0.0  # explicit: fastmath's nsz could turn −ln(1) into −0.0
            else:
                if t < t0:
                    t = t0
                out[i, j] = -np.log(t) * inv_beta
