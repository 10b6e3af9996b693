"""Time of the restoration methods against the plain DCP, same run, same images.

Run with ``.venv/bin/pytest bench/bench_restore.py``. Sizes 620 × 460 (SOTS) and
1920 × 1080; uint8 input as a photo would be. Each method is called once before timing
(JIT warm-up). At the end the ratios method / plain DCP per size are printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import dehaze
from dehaze import ColorAttenuationPrior, RobustDCP
from dehaze._sample import synthetic_hazy

SIZES = {"620x460": (460, 620), "1920x1080": (1080, 1920)}
METHODS: dict[str, Callable[[np.ndarray], Any]] = {
    "plain_dcp": dehaze.DarkChannelPrior(),
    "robust_dcp": RobustDCP(),
    "robust_dcp_fixed_k": RobustDCP(sky_tolerance=None),
    "robust_dcp_quadtree": RobustDCP(light="quadtree"),
    "cap": ColorAttenuationPrior(),
}
_TIMES: dict[tuple[str, str], float] = {}


def _image(height: int, width: int) -> np.ndarray:
    import cv2

    hazy, _, _ = synthetic_hazy()
    return np.ascontiguousarray(cv2.resize(hazy, (width, height), interpolation=cv2.INTER_LINEAR))


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    for size in SIZES:
        plain = _TIMES.get((size, "plain_dcp"))
        if plain is None:
            continue
        for name in METHODS:
            if (size, name) in _TIMES:
                print(f"\n{size} {name}: {_TIMES[(size, name)] / plain:.2f}× plain DCP")


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(METHODS))
def test_time(benchmark: Any, size: str, name: str) -> None:
    image = _image(*SIZES[size])
    method = METHODS[name]
    method(image)  # warm up
    benchmark.group = size
    result = benchmark.pedantic(method, args=(image,), rounds=9, iterations=1, warmup_rounds=1)
    assert result.image.shape == image.shape
    _TIMES[(size, name)] = benchmark.stats.stats.median
