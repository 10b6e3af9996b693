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
    """Recover every channel of an H×W×C image (pixels ``image · unit``) into ``out``.

    ``image`` may be unsigned-integer with ``unit = 1 / dtype max``; float images pass 1.

    J is clipped to [0, 1] when ``clip``. With ``out_scale > 0`` (integer outputs) J is
    stored as ``rint(J · out_scale)``, i.e. converted to the caller's integer dtype in the
    same pass; ``out_scale = 0`` stores J as it is (float outputs).
    """
    width, channels = image.shape[1], image.shape[2]
    T = type(transmission[0, 0])  # keep float32 math float32: bare literals are float64
    zero, one, t_min, u = T(0.0), T(1.0), T(t0), T(unit)
    lo = zero if clip else T(-np.inf)
    hi = one if clip else T(np.inf)
    scale = T(out_scale)
    # min/max, not if/else: real transmission maps are noisy, and data-dependent branches
    # cost ~5× in mispredictions (measured on a random t at 3840×2160)
    for i in range(i0, i1):
        for j in range(width):
            inv_t = one / max(transmission[i, j], t_min)
            for c in range(channels):
                a = light[c]
                v = min(max((T(image[i, j, c]) * u - a) * inv_t + a, lo), hi)
                if out_scale > 0.0:
                    out[i, j, c] = np.rint(v * scale)
                else:
                    out[i, j, c] = v
