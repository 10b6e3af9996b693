"""Where a float64 image's extra time goes: its bytes, and the kernel zeroing a fresh output.

For 1920×1080 and 3840×2160, in one process: the default method (image only) on float32
and float64 input, medians of 25 calls, and the cost of writing an output of each dtype
afresh (``np.empty`` + fill: the pages are mapped and zeroed by the kernel on first touch)
against writing into one that is reused.

glibc serves blocks under its dynamic mmap threshold (32 MB at most) from the heap, so a
benchmark loop recycles a 1080p float32 output (25 MB) while a float64 one (50 MB) is
mapped and zeroed on every call. Run it a second time with the thresholds raised for both::

    MALLOC_MMAP_THRESHOLD_=2000000000 MALLOC_TRIM_THRESHOLD_=4000000000 \\
        python bench/float64_cost.py

to see the ratio that the bytes alone give. Usage: ``python bench/float64_cost.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import dehaze


def _median_ms(call: Callable[[], object], rounds: int = 25) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def measure(method: dehaze.ClearHaze, image: np.ndarray) -> str:
    """One line of figures for one uint8 test image (see the module's docstring)."""
    height, width = image.shape[:2]
    single = (image / 255).astype(np.float32)
    double = single.astype(np.float64)
    t32 = _median_ms(lambda: method(single, outputs=()))
    t64 = _median_ms(lambda: method(double, outputs=()))
    shape = (height, width * 3)
    fresh, reused = {}, {}
    for dtype in (np.float32, np.float64):
        kept = np.empty(shape, dtype)
        fresh[dtype] = _median_ms(lambda dtype=dtype: np.empty(shape, dtype).fill(1))
        reused[dtype] = _median_ms(lambda kept=kept: kept.fill(1))
    return (
        f"{width}x{height}: float32 {t32:.1f} ms, float64 {t64:.1f} ms ({t64 / t32:.2f}x); "
        f"writing a fresh output: float32 {fresh[np.float32]:.2f}, float64 "
        f"{fresh[np.float64]:.2f} ms; into a reused one: {reused[np.float32]:.2f}, "
        f"{reused[np.float64]:.2f} ms"
    )


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import hazy_image

    method = dehaze.ClearHaze()
    for height, width in ((1080, 1920), (2160, 3840)):
        print(measure(method, hazy_image(height, width)))


if __name__ == "__main__":
    main()
