"""FADE fog density beside its slow per-patch reference (tests/test_fog.py), in one run.

The model values do not change the work, so the synthetic model of the tests is used and
the benchmark needs no shared data. ``max_side=None`` times the image at its own size;
the ``protocol`` rows time the default (shrink to 640 px on the long side first), which is
what scoring a folder of photos costs.

Run: ``python -m pytest bench/bench_fog.py -p no:cacheprovider --benchmark-only
--benchmark-json=fog.json`` then ``python bench/report.py fog.json``. Measured on the
2-CPU development machine under a load of ~6 (medians): 620x460 152.6 ms against the
reference's 2660 ms (17x); the 640 px protocol costs 88-131 ms per image up to 4K.
"""

from __future__ import annotations

import pytest
from test_fog import ref_fade, synthetic_model

from dehaze.fog import fog_density

from conftest import run

MODEL = synthetic_model()


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_fog_density(benchmark, image, size, impl):
    if impl == "reference" and size != "620x460":
        pytest.skip("the per-patch reference takes tens of seconds per call above 620x460")
    benchmark.group = f"fog_density (FADE) {size}, max_side=None"
    func = {
        "dehaze": lambda: fog_density(image, model=MODEL, max_side=None),
        "reference": lambda: ref_fade(image, MODEL),
    }[impl]
    run(benchmark, func, slow=impl == "reference" or size == "3840x2160")


def test_fog_density_protocol(benchmark, image, size):
    benchmark.group = f"fog_density (FADE) {size}, max_side=640"
    run(benchmark, lambda: fog_density(image, model=MODEL))
