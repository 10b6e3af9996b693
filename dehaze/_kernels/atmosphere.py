"""He's atmospheric-light rule in O(N): histogram selection, no sort of the image.

The rule is split into row-band kernels so that ``dehaze.dcp._brightest_index`` can run
each pass on all threads: a histogram of the dark channel over [lo, hi], the values of
the one bin that holds the k-th largest value, and the brightest candidate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dehaze._jit import jit
from dehaze._kernels import Array

#: Histogram bins of the first selection pass; only the boundary bin is partitioned.
N_BINS = 4096


@jit
def _bin(v: float, lo: float, scale: float) -> int:
    b = int((np.float64(v) - lo) * scale)
    return N_BINS - 1 if b >= N_BINS else b


@jit
def histogram(
    dark: Array, lo: float, scale: float, hist: NDArray[np.int64], i0: int, i1: int
) -> None:
    """Add rows [i0, i1) of ``dark`` to ``hist`` (N_BINS bins over [lo, lo + N_BINS/scale])."""
    width = dark.shape[1]
    for i in range(i0, i1):
        for j in range(width):
            hist[_bin(dark[i, j], lo, scale)] += 1


@jit
def collect_bin(
    dark: Array, lo: float, scale: float, target: int, values: Array, i0: int, i1: int
) -> None:
    """Store the values of rows [i0, i1) that fall in bin ``target``, in row-major order.

    ``values`` must have exactly as many elements as the band has in that bin.
    """
    width = dark.shape[1]
    m = 0
    for i in range(i0, i1):
        for j in range(width):
            v = dark[i, j]
            if _bin(v, lo, scale) == target:
                values[m] = v
                m += 1


@jit
def brightest_candidate(
    dark: Array, image: Array, threshold: float, best: Array, i0: int, i1: int
) -> None:
    """Among rows [i0, i1), the pixel with ``dark >= threshold`` of largest channel sum.

    ``best`` receives (channel sum, flat index); the first pixel in row-major order wins
    ties, and the index is −1 when the band has no candidate.
    """
    width, channels = dark.shape[1], image.shape[2]
    best_index = -1
    best_sum = -np.inf
    for i in range(i0, i1):
        for j in range(width):
            if dark[i, j] >= threshold:
                s = 0.0
                for c in range(channels):
                    s += np.float64(image[i, j, c])
                if s > best_sum:
                    best_sum = s
                    best_index = i * width + j
    best[0] = best_sum
    best[1] = best_index
