"""The metric protocol's scorer beside scikit-image computing the same numbers, same run.

``dehaze.metrics.Scorer`` computes SSIM with scikit-image's formula (7×7 uniform window,
channel_axis=-1, data_range=1) on OpenCV box filters, and CIEDE2000 with a fused Numba kernel;
``reference`` is scikit-image's ``structural_similarity`` and ``deltaE_ciede2000`` on the same
pair (the tests check the values agree to 1e-10).
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from dehaze.metrics import Scorer, ciede2000, ssim

from conftest import hazy_image, run

SIZE = "620x460"


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    clear = hazy_image(460, 620, seed=1)
    out = hazy_image(460, 620, seed=2)
    return clear, out


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_ssim(benchmark, pair, impl):
    benchmark.group = f"ssim {SIZE}"
    clear, out = pair
    if impl == "dehaze":
        func = lambda: ssim(clear, out)  # noqa: E731
    else:
        a, b = clear / 255.0, out / 255.0
        func = lambda: structural_similarity(a, b, channel_axis=-1, data_range=1.0)  # noqa: E731
    run(benchmark, func)


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_ciede2000(benchmark, pair, impl):
    benchmark.group = f"ciede2000 {SIZE}"
    clear, out = pair
    if impl == "dehaze":
        func = lambda: ciede2000(clear, out)  # noqa: E731
    else:
        func = lambda: float(  # noqa: E731
            deltaE_ciede2000(rgb2lab(clear / 255.0), rgb2lab(out / 255.0)).mean()
        )
    run(benchmark, func)


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_scorer_all_metrics(benchmark, pair, impl):
    benchmark.group = f"scorer psnr+ssim+ciede2000 {SIZE}"
    clear, out = pair
    if impl == "dehaze":
        scorer = Scorer(clear)
        func = lambda: scorer(out)  # noqa: E731
    else:
        a, b = clear / 255.0, out / 255.0

        def func() -> tuple[float, float, float]:
            mse = float(np.mean((a - b) ** 2))
            return (
                10 * np.log10(1 / mse),
                structural_similarity(a, b, channel_axis=-1, data_range=1.0),
                float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean()),
            )

    run(benchmark, func)
