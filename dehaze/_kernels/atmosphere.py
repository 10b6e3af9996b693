"""He's atmospheric-light rule in O(N): histogram selection, no sort of the image.

The rule is split into row-band kernels so that ``dehaze.dcp._brightest_index`` can run
each pass on all threads: a histogram of the dark channel, then one pass that keeps the
brightest pixel above the bin holding the k-th largest value and collects the values (and,
when there are few, the positions) of that boundary bin: only it is partitioned. When the
boundary bin holds many pixels (flat sky, a black or blank frame), a third pass finds the
brightest of its candidates instead of storing their positions.

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
def histogram(dark: Array, hist: NDArray[np.int64], extent: Array, i0: int, i1: int) -> None:
    """Add rows [i0, i1) of ``dark`` to ``hist`` (N_COPIES × N_BINS; sum the copies).

    ``extent`` receives the smallest and largest value of the rows (a constant map, such
    as a black frame's, needs no further pass to find its threshold).
    """
    width = dark.shape[1]
    low = np.inf
    high = -np.inf
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
        for j in range(width):
            v = np.float64(dark[i, j])
            low = min(low, v)
            high = max(high, v)
    extent[0] = low
    extent[1] = high


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

    Pixels in a bin above ``target`` are all candidates: ``best[0:2]`` receives the
    (channel sum, flat index) of the brightest, the first in row-major order on ties,
    index −1 if there is none. Pixels in bin ``target`` have their dark values stored in
    ``values`` (sized exactly to the band's count in that bin), in row-major order, and
    their flat indices in ``index`` unless it is empty; ``best[2:4]`` receives the
    smallest and largest of those values.

    Raises ``IndexError`` instead of writing past ``values`` or ``index`` when the rows
    hold more boundary-bin pixels than they were sized for (a caller that counted them
    over other bands: see :func:`dehaze._parallel.band_plan`).
    """
    width, channels = dark.shape[1], image.shape[2]
    keep_index = index.size > 0
    best_index = -1
    best_sum = -np.inf
    low = np.inf
    high = -np.inf
    m = 0
    for i in range(i0, i1):
        for j in range(width):
            v = dark[i, j]
            b = _bin(v)
            if b > target:
                s = 0.0
                for c in range(channels):
                    s += np.float64(image[i, j, c])
                if s > best_sum:
                    best_sum = s
                    best_index = i * width + j
            elif b == target:
                if m >= values.size or (keep_index and m >= index.size):
                    raise IndexError("split_at_bin: more boundary-bin pixels than buffer space")
                values[m] = v
                if keep_index:
                    index[m] = i * width + j
                m += 1
                low = min(low, np.float64(v))
                high = max(high, np.float64(v))
    best[0] = best_sum
    best[1] = best_index
    best[2] = low
    best[3] = high


@jit
def brightest_in_bin(
    dark: Array, image: Array, target: int, threshold: float, best: Array, i0: int, i1: int
) -> None:
    """Find, among rows [i0, i1), the brightest pixel of bin ``target`` with ``dark >= threshold``.

    ``target = N_BINS`` means any bin. ``best`` receives (channel sum, flat index), the
    first in row-major order on ties, index −1 if there is none.
    """
    width, channels = dark.shape[1], image.shape[2]
    best_index = -1
    best_sum = -np.inf
    for i in range(i0, i1):
        for j in range(width):
            v = dark[i, j]
            if v >= threshold and (target == N_BINS or _bin(v) == target):
                s = 0.0
                for c in range(channels):
                    s += np.float64(image[i, j, c])
                if s > best_sum:
                    best_sum = s
                    best_index = i * width + j
    best[0] = best_sum
    best[1] = best_index
