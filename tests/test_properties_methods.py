"""Hypothesis properties of recovery, the atmospheric light, each method and the metrics.

Images have at least 128 rows, so that :func:`dehaze._parallel.run_bands` (bands of at least
64 rows) really splits them on two threads; every result on two threads must equal the
one-thread result bit for bit for uint8, uint16 and float32 images (float32 window sums are
exact, :mod:`dehaze._kernels.boxfilter`), and to 1e-12 for float64 (its running sums restart
at each band's first column; the library promises 1e-10 there). Method parameters are
drawn from their whole documented ranges. Few examples per property (the suite stays
fast); no deadline (JIT compilation).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import dehaze
from dehaze import metrics

from reference import atmospheric_light_ref, dark_channel_ref, to_float64

PROPERTY = settings(deadline=None, max_examples=15)

DTYPES = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64])
TALL = st.integers(128, 160)  # two bands of ≥ 64 rows
NARROW = st.integers(1, 40)
UNIT = st.floats(0.0, 1.0)
OPEN_UNIT = st.floats(0.01, 0.99)
GRAY_OR_RGB = st.sampled_from([None, 3])


@st.composite
def images(draw, channels=GRAY_OR_RGB, width=NARROW, dtype=DTYPES):
    """Tall images of any supported dtype: smooth random fields, constants or noise."""
    dt = np.dtype(draw(dtype))
    h, w = draw(TALL), draw(width)
    c = draw(channels)
    shape = (h, w) if c is None else (h, w, c)
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["noise", "smooth", "constant", "two-level"]))
    rng = np.random.default_rng(seed)
    if kind == "noise":
        values = rng.random(shape)
    elif kind == "smooth":
        ramp = np.linspace(0, 1, h)[:, None] * np.linspace(0.5, 1, w)[None, :]
        values = ramp if c is None else ramp[..., None] * rng.uniform(0.3, 1.0, c)
        values = values + 0.05 * rng.random(shape)
    elif kind == "constant":
        values = np.full(shape, draw(UNIT))
    else:
        values = np.where(rng.random(shape) < 0.5, draw(UNIT), draw(UNIT))
    values = np.clip(values, 0.0, 1.0)
    if dt.kind == "u":
        return np.rint(values * np.iinfo(dt).max).astype(dt)
    return values.astype(dt)


def both_thread_counts(call):
    with dehaze.num_threads(1):
        one = call()
    with dehaze.num_threads(2):
        two = call()
    return one, two


def assert_same_result(one: dehaze.DehazeResult, two: dehaze.DehazeResult) -> None:
    for field in ("image", "transmission", "atmospheric_light", "dark_channel", "depth"):
        a, b = getattr(one, field), getattr(two, field)
        assert (a is None) == (b is None), field
        if a is None:
            continue
        if one.image.dtype == np.float64:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=field)
        else:
            np.testing.assert_array_equal(a, b, err_msg=field)


def assert_result_invariants(image: np.ndarray, result: dehaze.DehazeResult) -> None:
    assert result.image.dtype == image.dtype and result.image.shape == image.shape
    if image.dtype.kind == "f":
        assert np.all(np.isfinite(result.image))
        assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert result.transmission is not None and result.depth is not None
    for field in (result.transmission, result.depth):
        assert field.shape == image.shape[:2] and np.all(np.isfinite(field))
    assert np.all(result.depth >= 0)
    light = result.atmospheric_light
    assert light is not None and light.shape == (1 if image.ndim == 2 else 3,)
    assert np.all((light >= 1e-3) & (light <= 1.0))


# --- recovery -----------------------------------------------------------------------------


@PROPERTY
@given(
    st.integers(0, 2**32 - 1),
    TALL,
    NARROW,
    st.sampled_from([1, 3]),
    st.floats(0.01, 0.9),
    arrays(np.float64, 3, elements=st.floats(0.05, 1.0)),
)
def test_recover_inverts_the_haze_model(seed, h, w, channels, t0, light):
    # I = J t + A (1 − t) with t ≥ t0 and J in [0, 1]: recovery gives J back
    rng = np.random.default_rng(seed)
    clear = rng.random((h, w, channels))
    t = rng.uniform(t0, 1.0, (h, w))
    a = light[:channels]
    hazy = clear * t[..., None] + a * (1.0 - t[..., None])
    if channels == 1:
        clear, hazy = clear[..., 0], hazy[..., 0]
    one, two = both_thread_counts(lambda: dehaze.recover(hazy, t, a, t0=t0))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, clear, atol=1e-12 / t0, rtol=0)


@PROPERTY
@given(images(), st.floats(-0.5, 1.5), st.floats(0.01, 0.99), st.booleans())
def test_recover_range_and_identity_at_t_one(image, t_value, t0, clip):
    light = np.full(1 if image.ndim == 2 else 3, 0.8)
    t = np.full(image.shape[:2], t_value)
    out = dehaze.recover(image, t, light, t0=t0, clip=clip)
    assert out.dtype == image.dtype and out.shape == image.shape
    img = to_float64(image)
    want = (img - 0.8) / max(t_value, t0) + 0.8
    if clip or image.dtype.kind == "u":
        want = np.clip(want, 0.0, 1.0)
    got = to_float64(out)
    atol = 1e-12 if image.dtype == np.float64 else 1e-5 / t0
    if image.dtype.kind == "u":
        atol += 0.5 / np.iinfo(image.dtype).max
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    # t = 1 (no haze): J = I, exactly for integer pixels
    same = dehaze.recover(image, np.ones(image.shape[:2]), light, t0=t0, clip=clip)
    if image.dtype.kind == "u":
        np.testing.assert_array_equal(same, image)
    else:
        np.testing.assert_allclose(same, image, atol=1e-6 if image.dtype == np.float32 else 1e-15)


# --- atmospheric light ---------------------------------------------------------------------


@PROPERTY
@given(images(), st.integers(0, 20), st.floats(1e-4, 1.0))
def test_atmospheric_light_is_he_rule(image, radius, fraction):
    with dehaze.num_threads(2):
        light = dehaze.atmospheric_light(image, patch_radius=radius, top_fraction=fraction)
    dark = dark_channel_ref(image, radius)
    want = atmospheric_light_ref(image, dark, fraction)
    np.testing.assert_allclose(light, want, rtol=1e-6, atol=0)
    # A is one of the image's pixels (or the 1e-3 floor)
    pixels = to_float64(image).reshape(-1, light.shape[0])
    match = np.all(np.abs(pixels - light) <= 1e-6, axis=1) | np.any(light <= 1e-3)
    assert match.any()


# --- the methods ----------------------------------------------------------------------------


@st.composite
def dcp_params(draw):
    return {
        "omega": draw(st.floats(0.05, 1.0)),
        "t0": draw(OPEN_UNIT),
        "patch_radius": draw(st.integers(0, 30)),
        "guided_radius": draw(st.integers(0, 100)),
        "eps": draw(st.floats(1e-5, 1.0)),
        "guide": draw(st.sampled_from(["gray", "color"])),
        "subsample": draw(st.integers(1, 4)),
        "atmospheric_light": draw(st.none() | st.floats(0.05, 1.0)),
        "top_fraction": draw(st.floats(1e-4, 1.0)),
    }


@PROPERTY
@given(images(), dcp_params())
def test_dark_channel_prior_all_parameters(image, params):
    method = dehaze.DarkChannelPrior(**params)
    one, two = both_thread_counts(lambda: method(image))
    assert_same_result(one, two)
    assert_result_invariants(image, one)
    if params["atmospheric_light"] is not None:
        np.testing.assert_allclose(one.atmospheric_light, params["atmospheric_light"], rtol=1e-7)


@st.composite
def robust_params(draw):
    low = draw(st.floats(0.0, 0.9))
    return {
        "omega": draw(st.floats(0.05, 1.0)),
        "t0": draw(OPEN_UNIT),
        "patch_radius": draw(st.integers(0, 30)),
        "guided_radius": draw(st.integers(0, 100)),
        "eps": draw(st.floats(1e-5, 1.0)),
        "light": draw(st.sampled_from(["he", "quadtree"])),
        "guard_radius": draw(st.integers(0, 10)),
        "tolerance": draw(st.none() | UNIT),
        "sky_tolerance": draw(st.none() | UNIT),
        "sky_range": (low, draw(st.floats(low + 0.05, 1.0))),
        "amount": draw(UNIT),
        "top_fraction": draw(st.floats(1e-4, 1.0)),
        "subsample": draw(st.integers(1, 4)),
    }


@PROPERTY
@given(images(width=st.integers(1, 140)), robust_params())
def test_robust_dcp_all_parameters(image, params):
    # up to 140 columns: the sky measure is banded over columns
    method = dehaze.RobustDCP(**params)
    one, two = both_thread_counts(lambda: method(image))
    assert_same_result(one, two)
    assert_result_invariants(image, one)
    if params["tolerance"] is not None:
        # the tolerance rule keeps t in [t0, 1], and the amount moves it towards 1 only
        t0 = one.transmission.dtype.type(params["t0"])  # t0 in the working dtype
        assert np.all(one.transmission >= t0 * (1 - 1e-6))
        assert np.all(one.transmission <= 1.0)


@PROPERTY
@given(images(), robust_params())
def test_robust_dcp_amount_zero_is_identity(image, params):
    result = dehaze.RobustDCP(**(params | {"amount": 0.0}))(image)
    if image.dtype.kind == "u":
        np.testing.assert_array_equal(result.image, image)
    else:
        np.testing.assert_allclose(result.image, image, atol=1e-6, rtol=0)


@st.composite
def cap_params(draw):
    return {
        "beta": draw(st.floats(0.05, 5.0)),
        "t0": draw(OPEN_UNIT),
        "patch_radius": draw(st.integers(0, 20)),
        "guided_radius": draw(st.integers(0, 60)),
        "eps": draw(st.floats(1e-5, 1.0)),
        "guide": draw(st.sampled_from(["gray", "color"])),
        "tolerance": draw(st.none() | UNIT),
        "amount": draw(UNIT),
    }


@PROPERTY
@given(images(), cap_params())
def test_cap_all_parameters(image, params):
    method = dehaze.ColorAttenuationPrior(**params)
    one, two = both_thread_counts(lambda: method(image))
    assert_same_result(one, two)
    assert_result_invariants(image, one)
    t0 = one.transmission.dtype.type(params["t0"])  # t0 in the working dtype
    assert np.all(one.transmission >= t0) and np.all(one.transmission <= 1.0)
    amount_zero = dehaze.ColorAttenuationPrior(**(params | {"amount": 0.0}))(image).image
    if image.dtype.kind == "u":
        np.testing.assert_array_equal(amount_zero, image)
    else:
        np.testing.assert_allclose(amount_zero, image, atol=1e-6, rtol=0)


# --- metrics ---------------------------------------------------------------------------------


@PROPERTY
@given(images(channels=st.just(3), width=st.integers(7, 40)), st.integers(0, 2**32 - 1))
def test_metric_identities_and_symmetry(reference, seed):
    rng = np.random.default_rng(seed)
    other = np.clip(to_float64(reference) + rng.normal(0, 0.1, reference.shape), 0, 1)
    assert metrics.psnr(reference, reference) == math.inf
    assert metrics.psnr(reference, other) == metrics.psnr(other, reference)
    assert metrics.ssim(reference, reference) == 1.0
    assert metrics.ssim(reference, other) <= 1.0
    assert metrics.ssim(reference, other) == metrics.ssim(other, reference)
    assert metrics.ciede2000(reference, reference) == 0.0
    d = metrics.ciede2000(reference, other)
    assert d >= 0.0 and math.isclose(d, metrics.ciede2000(other, reference), rel_tol=1e-9)
    # PSNR is 10 log10(1 / MSE) on the [0, 1] scale, whatever the dtype
    mse = np.mean((to_float64(reference) - other) ** 2)
    if mse > 0:
        assert math.isclose(metrics.psnr(reference, other), 10 * math.log10(1 / mse), rel_tol=1e-12)
    scores = metrics.evaluate(reference, other)
    assert scores.psnr == metrics.psnr(reference, other)
    assert math.isclose(scores.ssim, metrics.ssim(reference, other), abs_tol=1e-9)
    assert math.isclose(scores.ciede2000, d, rel_tol=1e-9)


@PROPERTY
@given(images(channels=st.just(3), width=st.integers(7, 40)), st.floats(0.01, 0.3))
def test_psnr_of_a_uniform_shift(reference, delta):
    img = to_float64(reference) * (1 - delta)  # keep reference + delta inside [0, 1]
    shifted = img + delta
    assert math.isclose(metrics.psnr(img, shifted), -20 * math.log10(delta), rel_tol=1e-9)
