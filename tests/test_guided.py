"""Guided filter (gray, colour, fast) against the paper's formulas in float64."""

from __future__ import annotations

import numpy as np
import pytest

import dehaze
from dehaze import guided_filter

from helpers import DTYPES, SHAPES, layouts, random_image
from reference import fast_guided_ref, guided_color_ref, guided_gray_ref, to_float64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radius", (0, 1, 4, 60))
def test_gray_guide_matches_reference(rng, dtype, shape, radius):
    guide = random_image(rng, shape, dtype)
    src = rng.random(shape)
    out = guided_filter(guide, src, radius, 1e-3)
    expected = guided_gray_ref(to_float64(guide), src, radius, 1e-3)
    atol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, expected, rtol=0, atol=atol)
    assert out.dtype == np.float64  # src is float64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radius", (0, 1, 4, 60))
def test_color_guide_matches_reference(rng, dtype, shape, radius):
    guide = random_image(rng, (*shape, 3), dtype)
    src = rng.random(shape).astype(np.float32)
    out = guided_filter(guide, src, radius, 1e-2)
    expected = guided_color_ref(to_float64(guide), src.astype(np.float64), radius, 1e-2)
    assert out.dtype == (np.float64 if dtype == np.float64 else np.float32)
    atol = 1e-9 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out, expected, rtol=0, atol=atol)


@pytest.mark.parametrize("subsample", (2, 3, 4))
@pytest.mark.parametrize("color", (False, True))
@pytest.mark.parametrize("shape", ((40, 57), (9, 5), (3, 3), (150, 203)))
@pytest.mark.parametrize("dtype", (np.float64, np.float32))
def test_fast_guided_matches_reference(rng, subsample, color, shape, dtype):
    # (150, 203) has row and column bands on two threads
    guide = rng.random((*shape, 3) if color else shape).astype(dtype)
    src = rng.random(shape).astype(dtype)
    with dehaze.num_threads(2):
        out = guided_filter(guide, src, 8, 1e-2, subsample=subsample)
    assert out.dtype == dtype
    expected = fast_guided_ref(guide, src, 8, 1e-2, subsample)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9 if dtype == np.float64 else 2e-5)


def test_fast_guided_approximates_full_filter(rng):
    y, x = np.mgrid[0:120, 0:160]
    guide = ((x > 80) * 0.6 + 0.2 + 0.05 * rng.random((120, 160))).astype(np.float64)
    src = guide + 0.1 * rng.standard_normal((120, 160))
    full = guided_filter(guide, src, 16, 1e-2)
    fast = guided_filter(guide, src, 16, 1e-2, subsample=4)
    assert np.sqrt(np.mean((full - fast) ** 2)) < 0.02


@pytest.mark.parametrize("layout", ("C", "F", "strided", "readonly"))
def test_layouts(rng, layout):
    guide = rng.random((21, 18, 3))
    src = rng.random((21, 18))
    expected = guided_color_ref(guide, src, 3, 1e-2)
    out = guided_filter(layouts(guide)[layout], layouts(src)[layout], 3, 1e-2)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)


def test_multichannel_src_is_filtered_per_channel(rng):
    guide = rng.random((15, 16))
    src = rng.random((15, 16, 3))
    out = guided_filter(guide, src, 2, 1e-3)
    for c in range(3):
        np.testing.assert_allclose(
            out[..., c], guided_gray_ref(guide, src[..., c], 2, 1e-3), atol=1e-10
        )


def test_edge_is_preserved(rng):
    # a step edge in the guide keeps a sharp step in the output (unlike a box blur)
    guide = np.zeros((50, 50))
    guide[:, 25:] = 1.0
    src = guide + 0.05 * rng.standard_normal((50, 50))
    out = guided_filter(guide, src, 8, 1e-3)
    assert out[:, 27:].mean() - out[:, :23].mean() > 0.95


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eps": 0.0}, ValueError, r"eps must be in \[1e-12, inf\)"),
        ({"eps": -1.0}, ValueError, "eps must be in"),
        ({"eps": float("nan")}, ValueError, "eps must be in"),
        ({"radius": -2}, ValueError, "radius must be an integer ≥ 0"),
        ({"subsample": 0}, ValueError, "subsample must be an integer ≥ 1"),
        ({"subsample": 1.5}, TypeError, "subsample must be an integer"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    args = {"radius": 2, "eps": 1e-3, **kwargs}
    sub = args.pop("subsample", 1)
    with pytest.raises(error, match=match):
        guided_filter(np.zeros((8, 8)), np.zeros((8, 8)), subsample=sub, **args)


def test_bad_shapes():
    with pytest.raises(ValueError, match="src must have shape"):
        guided_filter(np.zeros((8, 8)), np.zeros((8, 9)), 2, 1e-3)
    with pytest.raises(ValueError, match="src contains NaN"):
        guided_filter(np.zeros((8, 8)), np.full((8, 8), np.inf), 2, 1e-3)
    with pytest.raises(ValueError, match="4 channels"):
        guided_filter(np.zeros((8, 8, 4)), np.zeros((8, 8)), 2, 1e-3)
    # an H×W×0 src used to fail inside max() with "arg is an empty sequence"
    with pytest.raises(ValueError, match=r"src has 0 channels.*H×W or H×W×C with C ≥ 1"):
        guided_filter(np.ones((5, 6)), np.zeros((5, 6, 0)), 1, 1e-3)


@pytest.mark.parametrize("threads", (1, 2, 3))
@pytest.mark.parametrize("radius", (0, 3, 40, 149, 400))
@pytest.mark.parametrize("shape", ((150, 300), (300, 140), (2, 260)))
def test_column_bands_match_the_reference(rng, threads, radius, shape):
    # wide enough for one column band per thread, radii beyond a band and the image
    import dehaze

    guide = rng.random(shape)
    src = rng.random(shape) * 0.8 + 0.1
    r = min(radius, max(shape))
    color = np.dstack([guide, src, guide * src])
    with dehaze.num_threads(threads):
        got = guided_filter(guide, src, radius, 1e-3)
        got_color = guided_filter(color, src, radius, 1e-3) if threads == 2 else None
    np.testing.assert_allclose(got, guided_gray_ref(guide, src, r, 1e-3), atol=1e-10, rtol=0)
    if got_color is not None:  # the colour reference is slow: one band count is enough
        expected_color = guided_color_ref(color, src, r, 1e-3)
        np.testing.assert_allclose(got_color, expected_color, atol=1e-8, rtol=0)


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ((1, 1), (7, 5), (150, 90)))
def test_luma_matches_rec601(rng, threads, dtype, shape):
    # the gray guide: integer pixels are weighted with the 1 / max factor folded in
    import dehaze
    from dehaze._validate import as_pixels
    from dehaze.guided import to_gray

    image = random_image(rng, (*shape, 3), dtype)
    pixels, unit = as_pixels(image)
    with dehaze.num_threads(threads):
        got = to_gray(pixels, unit)
    expected = to_float64(image) @ np.array([0.299, 0.587, 0.114])
    assert got.dtype == (np.float64 if dtype == np.float64 else np.float32)
    atol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0)


@pytest.mark.parametrize("step", (2, 3, 4))
def test_coarse_grid_dark_channel_and_guided_src(rng, step):
    # the fast mode computes the raw transmission only on the coarse grid: exactly the
    # full-size values there, and the guided filter's output is unchanged
    from dehaze.guided import guided_filter_plane
    from dehaze.transmission_map import dark_channel_plane, raw_transmission

    px = rng.integers(0, 256, (53, 71, 3), dtype=np.uint8)
    unit = 1 / 255
    full = dark_channel_plane(px, 4, unit=unit)
    np.testing.assert_array_equal(
        dark_channel_plane(px, 4, unit=unit, step=step), full[::step, ::step]
    )
    light = np.array([0.9, 0.85, 0.8], dtype=np.float32)
    raw = raw_transmission(px, light, 0.95, 4, unit)
    coarse = raw_transmission(px, light, 0.95, 4, unit, step)
    np.testing.assert_array_equal(coarse, raw[::step, ::step])
    guide = (px.astype(np.float32) * np.float32(unit)).mean(axis=2, keepdims=True)
    want = guided_filter_plane(guide, raw, 10, 1e-3, step)
    got = guided_filter_plane(guide, coarse, 10, 1e-3, step, coarse_src=True)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="coarse src"):
        guided_filter_plane(guide, raw, 10, 1e-3, step, coarse_src=True)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("shape", ((1, 1), (7, 5), (3, 40), (41, 2), (33, 47)))
@pytest.mark.parametrize("radius", (0, 1, 4, 60))
def test_guided_coefficients_match_the_papers_formula(rng, dtype, shape, radius):
    # the working-scale coefficients ClearHaze upsamples: box means of a and b (clipped
    # windows), so mean(a) · I + mean(b) is the guided filter's output
    from dehaze.guided import guided_coefficients

    from reference import box_mean_ref

    guide = rng.random(shape).astype(dtype)
    src = rng.random(shape).astype(dtype)
    eps = 1e-3
    coefficients = guided_coefficients(guide, src, radius, eps)
    g, p = guide.astype(np.float64), src.astype(np.float64)
    mean_i, mean_p = box_mean_ref(g, radius), box_mean_ref(p, radius)
    var_i = box_mean_ref(g * g, radius) - mean_i**2
    a = (box_mean_ref(g * p, radius) - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    assert coefficients.dtype == dtype and coefficients.shape == (2, *shape)
    # float32: a and b are stored in float32 between the two box means
    atol = 1e-9 if dtype == np.float64 else 2e-5 * max(1.0, float(np.abs(a).max()))
    np.testing.assert_allclose(coefficients[0], box_mean_ref(a, radius), rtol=0, atol=atol)
    np.testing.assert_allclose(coefficients[1], box_mean_ref(b, radius), rtol=0, atol=atol)
    out = np.empty_like(coefficients)
    assert guided_coefficients(guide, src, radius, eps, out) is out
    np.testing.assert_array_equal(out, coefficients)


def test_guided_coefficients_reject_a_wrong_out():
    from dehaze.guided import guided_coefficients

    plane = np.zeros((4, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="out must be a C-contiguous float32"):
        guided_coefficients(plane, plane, 2, 1e-3, np.empty((2, 4, 5), dtype=np.float64))
    with pytest.raises(ValueError, match=r"of shape \(2, 4, 5\)"):
        guided_coefficients(plane, plane, 2, 1e-3, np.empty((2, 5, 4), dtype=np.float32))
