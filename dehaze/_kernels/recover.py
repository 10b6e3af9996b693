"""Scene radiance recovery J = (I − A) / max(t, t0) + A in one pass."""

from __future__ import annotations

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array


@jit
def recover_radiance(
    image: Array,
    transmission: Array,
    light: Array,
    unit: float,
    t0: float,
    clip: bool,
    out_scale: float,
    out: np.ndarray,
    i0: int,
    i1: int,
) -> None:
    """Recover rows [i0, i1) of an image given as H × (W·C) (channels interleaved).

    ``image`` holds pixels ``image · unit``: unsigned-integer with ``unit = 1 / dtype
    max``, or float with ``unit = 1``. ``transmission`` is H×W and ``light`` has C values.

    J is clipped to [0, 1] when ``clip``. With ``out_scale > 0`` (integer outputs) J is
    stored as ``rint(J · out_scale)``, i.e. converted to the caller's integer dtype in the
    same pass; ``out_scale = 0`` stores J as it is (float outputs).

    Each row is processed as one flat run of W·C samples, with 1 / max(t, t0) spread to
    the C samples of its pixel and A repeated along the row beforehand: the main loop then
    has no channel index and vectorises (3.5× the per-pixel channel loop on RGB uint8 at
    3840×2160, measured).
    """
    width = transmission.shape[1]
    n = image.shape[1]
    channels = n // width
    T = type(transmission[0, 0])  # keep float32 math float32: bare literals are float64
    one, t_min, u = T(1.0), T(t0), T(unit)
    lo = T(0.0) if clip else T(-np.inf)
    hi = one if clip else T(np.inf)
    scale = T(out_scale)
    light_row = np.empty(n, dtype=transmission.dtype)
    for j in range(width):
        for c in range(channels):
            light_row[j * channels + c] = light[c]
    inv_row = np.empty(n, dtype=transmission.dtype)
    for i in range(i0, i1):
        if channels == 3:
            for j in range(width):
                inv_t = one / max(transmission[i, j], t_min)
                inv_row[3 * j] = inv_t
                inv_row[3 * j + 1] = inv_t
                inv_row[3 * j + 2] = inv_t
        else:
            for j in range(width):
                inv_t = one / max(transmission[i, j], t_min)
                for c in range(channels):
                    inv_row[j * channels + c] = inv_t
        # min/max, not if/else: real transmission maps are noisy, and data-dependent
        # branches cost ~5× in mispredictions (measured on a random t at 3840×2160)
        if out_scale > 0.0:
            for k in range(n):
                a = light_row[k]
                v = min(max((T(image[i, k]) * u - a) * inv_row[k] + a, lo), hi)
                out[i, k] = np.rint(v * scale)
        else:
            for k in range(n):
                a = light_row[k]
                out[i, k] = min(max((T(image[i, k]) * u - a) * inv_row[k] + a, lo), hi)
