"""min_filter and box_filter against scipy / cumsum references."""

from __future__ import annotations

import numpy as np
import pytest

from dehaze import box_filter, min_filter
from dehaze._kernels.boxfilter import row_window_sums

from helpers import DTYPES, RADII, SHAPES, layouts, random_image
from reference import box_mean_ref, min_filter_ref


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radius", RADII)
def test_min_filter_matches_scipy(rng, dtype, shape, radius):
    a = random_image(rng, shape, dtype)
    out = min_filter(a, radius)
    assert out.dtype == a.dtype and out.shape == a.shape
    np.testing.assert_array_equal(out, min_filter_ref(a, radius).astype(a.dtype))


@pytest.mark.parametrize("radius", (0, 2, 25))
@pytest.mark.parametrize("k", range(1, 12))
def test_min_filter_all_block_alignments(rng, radius, k):
    # widths around multiples of the block length 2r+1 exercise every padding case
    shape = (3, k * (2 * radius + 1) // 3 + k)
    a = rng.random(shape)
    np.testing.assert_array_equal(min_filter(a, radius), min_filter_ref(a, radius))
    np.testing.assert_array_equal(min_filter(a.T, radius), min_filter_ref(a.T, radius))


@pytest.mark.parametrize("layout", ("C", "F", "strided", "readonly"))
def test_min_filter_layouts(rng, layout):
    a = random_image(rng, (17, 23, 3), np.float32)
    view = layouts(a)[layout]
    expected = np.stack([min_filter_ref(a[..., c], 2) for c in range(3)], axis=-1)
    np.testing.assert_array_equal(min_filter(view, 2), expected.astype(np.float32))


def test_min_filter_does_not_modify_input(rng):
    a = rng.random((9, 9))
    before = a.copy()
    min_filter(a, 3)
    np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radius", RADII)
def test_box_filter_matches_cumsum(rng, dtype, shape, radius):
    a = random_image(rng, shape, dtype)
    out = box_filter(a, radius)
    expected = box_mean_ref(a.astype(np.float64), radius)
    assert out.shape == a.shape
    assert out.dtype == (np.float64 if dtype == np.float64 else np.float32)
    scale = max(1.0, float(np.abs(expected).max()))
    atol = (1e-12 if dtype == np.float64 else 1e-6) * scale
    np.testing.assert_allclose(out, expected, rtol=0, atol=atol)


@pytest.mark.parametrize("n_q", (1, 2, 3, 4, 5, 13))
@pytest.mark.parametrize("width", (1, 2, 7, 40, 161, 300))
@pytest.mark.parametrize("radius", (0, 1, 3, 80, 400))
def test_row_window_sums_kernel_on_column_bands(rng, n_q, width, radius):
    """The running row sums (grouped in fours and pairs, split at the borders) against
    plain clipped slice sums, for every quantity count the filters use and for bands."""
    colsum = rng.uniform(-1.0, 1.0, (n_q, width))
    expected = np.array(
        [
            [colsum[q, max(0, j - radius) : j + radius + 1].sum() for j in range(width)]
            for q in range(n_q)
        ]
    )
    for j0, j1 in ((0, width), (0, width // 2), (width // 2, width), (width // 3, 2 * width // 3)):
        out = np.full((n_q, width), np.nan)
        row_window_sums(colsum, radius, j0, j1, out)
        np.testing.assert_allclose(out[:, j0:j1], expected[:, j0:j1], rtol=1e-12, atol=1e-12)
        assert np.isnan(out[:, :j0]).all() and np.isnan(out[:, j1:]).all()  # nothing outside


@pytest.mark.parametrize("layout", ("C", "F", "strided", "readonly"))
def test_box_filter_layouts_and_channels(rng, layout):
    a = rng.random((19, 11, 3))
    out = box_filter(layouts(a)[layout], 4)
    expected = np.stack([box_mean_ref(a[..., c], 4) for c in range(3)], axis=-1)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_box_filter_is_accurate_on_large_offsets():
    # float64 running sums: a large constant offset must not destroy the variance signal
    rng = np.random.default_rng(1)
    a = (1000.0 + rng.random((300, 200))).astype(np.float32)
    expected = box_mean_ref(a.astype(np.float64), 20)
    np.testing.assert_allclose(box_filter(a, 20), expected, rtol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"radius": -1}, ValueError, "radius must be an integer ≥ 0"),
        ({"radius": 1.5}, TypeError, "radius must be an integer"),
        ({"radius": True}, TypeError, "radius must be an integer"),
    ],
)
@pytest.mark.parametrize("func", (min_filter, box_filter))
def test_filters_reject_bad_radius(func, kwargs, error, match):
    with pytest.raises(error, match=match):
        func(np.zeros((3, 3)), **kwargs)


@pytest.mark.parametrize("func", (min_filter, box_filter))
def test_filters_reject_bad_arrays(func):
    with pytest.raises(ValueError, match="NaN or inf"):
        func(np.array([[0.0, np.nan]]), 1)
    with pytest.raises(ValueError, match="empty"):
        func(np.zeros((0, 3)), 1)
    with pytest.raises(ValueError, match="H×W or H×W×C"):
        func(np.zeros(5), 1)
    with pytest.raises(TypeError, match="accepted dtypes"):
        func(np.zeros((3, 3), dtype=np.int32), 1)


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 1, 3), (1, 7, 3), (9, 10, 3), (17, 23, 1)])
@pytest.mark.parametrize("step", (2, 3, 5))
@pytest.mark.parametrize("radius", (0, 2, 40))
def test_min_filter_plane_coarse_grid_equals_the_full_filter_there(shape, step, radius):
    # the row pass stores every step-th column only: the values there are the full filter's
    from dehaze.filters import min_filter_plane

    rng = np.random.default_rng(sum(shape) + 7 * step + radius)
    image = rng.random(shape, dtype=np.float32)
    scale = np.array([1.0, 0.9, 1.2][: shape[2]], dtype=np.float32)
    full = min_filter_plane(image, radius, scale, (-0.95, 1.0))
    coarse = min_filter_plane(image, radius, scale, (-0.95, 1.0), step=step)
    np.testing.assert_array_equal(coarse, full[::step, ::step])


def test_box_filter_refuses_values_whose_window_sums_overflow():
    # finite float64 values whose window sum overflows gave inf/NaN; now an error naming
    # the bound, and the largest accepted values give finite means
    big = np.array([[1e308, 1e308, 1.0]])
    with pytest.raises(ValueError, match="at radius 1 a window sums 3 of them"):
        box_filter(big, 1)
    assert np.isfinite(box_filter(big, 0)).all()  # one value per window
    edge = np.full((40, 50), np.finfo(np.float64).max / 9 * 0.999)  # the bound at r = 1
    out = box_filter(edge, 1)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, edge, rtol=1e-12)
    with pytest.raises(ValueError, match="NaN or inf"):
        box_filter(np.array([[0.5, np.nan]]), 1)
