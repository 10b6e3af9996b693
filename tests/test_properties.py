"""Hypothesis properties of the kernels and the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import dehaze

from helpers import dcp_dehaze, unit_edge_values
from reference import box_mean_ref, min_filter_ref

DTYPE = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64])
SIDE = st.integers(1, 24)
GRAY_OR_RGB = st.sampled_from([None, 3])


@st.composite
def images(draw, channels=GRAY_OR_RGB):
    dtype = np.dtype(draw(DTYPE))
    h, w = draw(SIDE), draw(SIDE)
    c = draw(channels)
    shape = (h, w) if c is None else (h, w, c)
    if dtype.kind == "u":
        elements = st.integers(0, int(np.iinfo(dtype).max))
    else:
        elements = st.floats(0.0, 1.0, width=dtype.itemsize * 8)
    return draw(arrays(dtype, shape, elements=elements))


settings.register_profile("dehaze", deadline=None, max_examples=60)
settings.load_profile("dehaze")


@given(images(), st.integers(0, 30), st.integers(0, 30))
def test_pipeline_output_range_dtype_finite(image, patch_radius, guided_radius):
    result = dcp_dehaze(image, patch_radius=patch_radius, guided_radius=guided_radius)
    assert result.image.dtype == image.dtype and result.image.shape == image.shape
    if image.dtype.kind == "f":
        assert np.all(np.isfinite(result.image))
        assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    for value in (result.transmission, result.dark_channel, result.depth):
        assert np.all(np.isfinite(value))
    assert np.all(result.depth >= 0)
    assert np.all((result.atmospheric_light > 0) & (result.atmospheric_light <= 1))


@given(images(channels=st.just(3)), st.floats(0.0, 1.0), st.integers(0, 10))
def test_adding_haze_never_lowers_the_dark_channel(clear, t, radius):
    # with white atmospheric light, I = J t + (1 - t) ≥ J in every channel,
    # so the dark channel of the hazy image is at least that of the clear one
    j = clear.astype(np.float64)
    if clear.dtype.kind == "u":
        j /= np.iinfo(clear.dtype).max
    hazy = np.clip(j * t + (1.0 - t), 0.0, 1.0)
    assert np.all(dehaze.dark_channel(hazy, radius) >= dehaze.dark_channel(j, radius) - 1e-12)


@given(images(), st.floats(-5.0, 5.0), st.integers(0, 40), st.sampled_from([1e-6, 1e-3, 0.1]))
def test_guided_filter_of_constant_is_constant(guide, value, radius, eps):
    src = np.full(guide.shape[:2], value)
    out = dehaze.guided_filter(guide, src, radius, eps)
    np.testing.assert_allclose(out, value, atol=1e-6 * max(1.0, abs(value)))


@given(arrays(np.float64, st.tuples(SIDE, SIDE), elements=st.floats(-1e6, 1e6)), st.integers(0, 40))
def test_min_filter_matches_scipy_on_any_finite_values(a, radius):
    np.testing.assert_array_equal(dehaze.min_filter(a, radius), min_filter_ref(a, radius))


@given(arrays(np.float64, st.tuples(SIDE, SIDE), elements=st.floats(-1e3, 1e3)), st.integers(0, 40))
def test_box_filter_is_the_clipped_window_mean(a, radius):
    # within min and max alone would pass for the identity: compare with the mean itself
    out = dehaze.box_filter(a, radius)
    np.testing.assert_allclose(out, box_mean_ref(a, radius), rtol=0, atol=1e-9)
    assert np.all(out >= a.min() - 1e-9) and np.all(out <= a.max() + 1e-9)


@given(
    st.sampled_from([np.float32, np.float64]).flatmap(
        lambda dtype: arrays(
            dtype,
            st.tuples(st.integers(1, 6), st.integers(1, 6), st.just(3)),
            # any float at all: NaN, ±inf, ±0, subnormals, values just outside [0, 1]
            elements=st.floats(width=np.dtype(dtype).itemsize * 8, allow_nan=True)
            | st.sampled_from([-0.0, 0.0, 1.0, -1e-30, 1.0 + 1e-6]),
        )
    ),
    st.booleans(),
)
def test_float_images_are_accepted_exactly_when_finite_and_in_unit_range(image, strided):
    # check_image's one-pass bit test must give the plain answer on every float, -0.0 too
    arr = image[:, ::2] if strided else image
    valid = bool(np.all(np.isfinite(arr)) and np.all(arr >= 0.0) and np.all(arr <= 1.0))
    try:
        dehaze._validate.check_image(arr)
    except ValueError as exc:
        assert not valid, exc
        assert ("NaN or inf" in str(exc)) == (not np.all(np.isfinite(arr)))
    else:
        assert valid


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_at_the_edges_of_the_unit_range(dtype):
    # the neighbours of 0 and 1 on either side, and the special values
    valid_values, invalid_values = unit_edge_values(dtype)
    cases = [(v, True) for v in valid_values] + [(v, False) for v in invalid_values]
    for value, valid in cases:
        image = np.full((2, 3, 3), 0.5, dtype)
        image[1, 2, 1] = value
        if valid:
            dehaze._validate.check_image(image)
        else:
            with pytest.raises(ValueError):
                dehaze._validate.check_image(image)
