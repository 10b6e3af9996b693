"""He's atmospheric-light rule in O(N): histogram selection, no sort of the image."""

from __future__ import annotations

import numpy as np

from dehaze._jit import jit
from dehaze._kernels import Array

#: Histogram bins of the first selection pass; only the boundary bin is partitioned.
N_BINS = 4096


@jit
def brightest_of_darkest_top(dark: Array, image: Array, k: int) -> int:
    """Flat index of the pixel A is taken from.

    Candidates are the pixels whose dark value is at least the k-th largest dark value
    (ties included); among them the one with the largest channel sum wins, the first in
    row-major order on ties. The k-th largest value is found by a histogram over
    [min, max] followed by ``np.partition`` of the boundary bin only.
    """
    height, width = dark.shape
    channels = image.shape[2]
    lo = dark[0, 0]
    hi = dark[0, 0]
    for i in range(height):
        for j in range(width):
            v = dark[i, j]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    threshold = hi
    if hi > lo and k > 1:
        scale = N_BINS / (np.float64(hi) - np.float64(lo))
        hist = np.zeros(N_BINS, dtype=np.int64)
        for i in range(height):
            for j in range(width):
                b = int((np.float64(dark[i, j]) - lo) * scale)
                if b >= N_BINS:
                    b = N_BINS - 1
                hist[b] += 1
        above = 0
        b_k = N_BINS - 1
        while above + hist[b_k] < k:
            above += hist[b_k]
            b_k -= 1
        values = np.empty(hist[b_k], dtype=dark.dtype)
        m = 0
        for i in range(height):
            for j in range(width):
                v = dark[i, j]
                b = int((np.float64(v) - lo) * scale)
                if b >= N_BINS:
                    b = N_BINS - 1
                if b == b_k:
                    values[m] = v
                    m += 1
        rank = m - (k - above)  # ascending position of the k-th largest
        threshold = np.partition(values, rank)[rank]
    best = -1
    best_sum = -np.inf
    for i in range(height):
        for j in range(width):
            if dark[i, j] >= threshold:
                s = 0.0
                for c in range(channels):
                    s += np.float64(image[i, j, c])
                if s > best_sum:
                    best_sum = s
                    best = i * width + j
    return best
