"""He's atmospheric-light rule in O(N): histogram selection, no sort of the image.

The rule is split into two row-band kernels so that ``dehaze.dcp._brightest_index`` can
run each pass on all threads: a histogram of the dark channel, then one pass that keeps
the brightest pixel above the bin holding the k-th largest value and collects the values
and positions of that boundary bin (only it is partitioned).

Bins split [0, 1] (the dark channel of a [0, 1] image) into ``N_BINS`` equal parts;
values outside are counted in the first or last bin. Binning is monotonic, so the
selection is exact for any values; out-of-range values only make the boundary bin larger.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dehaze._jit import jit
from dehaze._kernels import Array

#: Histogram bins of the first selection pass; only the boundary bin is partitioned.
N_BINS = 4096

#: Interleaved copies of the histogram: a dark channel is piecewise constant (it is a min
#: filter's output), so neighbours fall in the same bin, and one histogram would make
#: every increment wait for the previous one (measured 2.3× slower at 3840×2160).
N_COPIES = 4


@jit
def _bin(v: float) -> int:
    T = type(v)
    return min(max(int(v * T(N_BINS)), 0), N_BINS - 1)


@jit
def histogram(dark: Array, hist: NDArray[np.int64], i0: int, i1: int) -> None:
    """Add rows [i0, i1) of ``dark`` to ``hist`` (N_COPIES × N_BINS; sum the copies)."""
    width = dark.shape[1]
    for i in range(i0, i1):
        j = 0
        while j + 4 <= width:
            hist[0, _bin(dark[i, j])] += 1
            hist[1, _bin(dark[i, j + 1])] += 1
            hist[2, _bin(dark[i, j + 2])] += 1
            hist[3, _bin(dark[i, j + 3])] += 1
            j += 4
        while j < width:
            hist[0, _bin(dark[i, j])] += 1
            j += 1


@jit
def split_at_bin(
    dark: Array,
    image: Array,
    target: int,
    values: Array,
    index: NDArray[np.int64],
    best: Array,
    i0: int,
    i1: int,
) -> None:
    """One pass over rows [i0, i1) around the boundary bin ``target``.

    Pixels in a bin above ``target`` are all candidates: ``best`` receives the (channel
    sum, flat index) of the brightest, the first in row-major order on ties, index −1 if
    there is none. Pixels in bin ``target`` are stored in row-major order, their dark
    values in ``values`` and flat indices in ``index`` (both sized exactly to the band's
    count in that bin).
    """
    width, channels = dark.shape[1], image.shape[2]
    best_index = -1
    best_sum = -np.inf
    m = 0
    for i in range(i0, i1):
        for j in range(width):
            b = _bin(dark[i, j])
            if b > target:
                s = 0.0
                for c in range(channels):
                    s += np.float64(image[i, j, c])
                if s > best_sum:
                    best_sum = s
                    best_index = i * width + j
            elif b == target:
                values[m] = dark[i, j]
                index[m] = i * width + j
                m += 1
    best[0] = best_sum
    best[1] = best_index
