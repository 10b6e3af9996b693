"""'Same'-size multi-channel correlation for the network adapters, in a fixed order.

Every output value is ``bias + Σ_c Σ_ky Σ_kx w · x`` summed in that order, the loops over a
row's pixels innermost (vectorised, the same operation for every pixel). A value therefore
depends only on the padded input around it: a tile read with the network's receptive field
gives the whole image's values bit for bit, which ``cv2.filter2D`` does not promise (its
vector body and scalar tail sum differently, so a pixel's last bits depend on where the row
starts).
"""

from __future__ import annotations

from dehaze._jit import jit
from dehaze._kernels import Array


@jit
def correlate_planes(
    padded: Array, weight: Array, bias: Array, out: Array, i0: int, i1: int
) -> None:
    """Rows [i0, i1) of out[o] = bias[o] + Σ_c padded[c] ⋆ weight[o, c] ('valid' on padded).

    ``padded`` is (C_in, H + kh − 1, W + kw − 1), ``weight`` (C_out, C_in, kh, kw),
    ``out`` (C_out, H, W).
    """
    n_out, n_in, kh, kw = weight.shape
    width = out.shape[2]
    for o in range(n_out):
        for i in range(i0, i1):
            row = out[o, i]
            b = bias[o]
            for x in range(width):
                row[x] = b
            for c in range(n_in):
                for ky in range(kh):
                    src = padded[c, i + ky]
                    for kx in range(kw):
                        w = weight[o, c, ky, kx]
                        s = src[kx : kx + width]
                        for x in range(width):
                            row[x] += w * s[x]
