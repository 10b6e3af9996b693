"""The whole pipeline (gray guide, default parameters) beside two references, same run.

* ``reference``: tests/reference.py's plain float64 NumPy/SciPy implementation (the one the
  tests check dehaze against to 1e-5);
* ``opencv``: bench/opencv_reference.py, an idiomatic float32 OpenCV implementation.
"""

from __future__ import annotations

import pytest

import dehaze

from conftest import run
from opencv_reference import dehaze_opencv
from reference import dehaze_ref


@pytest.mark.parametrize(
    "impl", ("dehaze", "dehaze-1-thread", "dehaze-fast", "reference", "opencv")
)
def test_pipeline(benchmark, image, size, impl):
    benchmark.group = f"pipeline {size}"
    if impl == "dehaze":
        func = lambda: dehaze.DarkChannelPrior()(image)  # noqa: E731
    elif impl == "dehaze-1-thread":

        def func():
            with dehaze.num_threads(1):
                return dehaze.DarkChannelPrior()(image)
    elif impl == "dehaze-fast":
        func = lambda: dehaze.DarkChannelPrior(subsample=4)(image)  # noqa: E731
    elif impl == "reference":
        func = lambda: dehaze_ref(image)  # noqa: E731
    else:
        func = lambda: dehaze_opencv(image)  # noqa: E731
    run(benchmark, func, slow=impl in ("reference", "opencv"))


@pytest.mark.parametrize("subsample", (1, 4))
def test_subsample_image_only(benchmark, image, size, subsample):
    # issue 14: subsample=4 at least 1.8x faster than subsample=1, as the command line runs
    # them (`--fast` without --save-*: the image only). With every plane asked for (the
    # "pipeline" group above) both also compute the full-size dark channel and depth.
    benchmark.group = f"DCP subsample, image only {size}"
    method = dehaze.DarkChannelPrior(subsample=subsample)
    run(benchmark, lambda: method(image, outputs=()))


@pytest.mark.parametrize("dtype", ("uint8", "float32", "float64"))
def test_pipeline_input_dtypes(benchmark, image, size, dtype):
    # issue 14: float64 input at most 1.3x the float32 time (same run)
    benchmark.group = f"pipeline dtype {size}"
    data = image if dtype == "uint8" else (image / 255.0).astype(dtype)
    method = dehaze.DarkChannelPrior()
    run(benchmark, lambda: method(data, outputs=()))


@pytest.mark.parametrize("guide", ("gray", "color"))
def test_pipeline_guides(benchmark, image, size, guide):
    benchmark.group = f"pipeline guide {size}"
    run(benchmark, lambda: dehaze.DarkChannelPrior(guide=guide)(image))
