"""The colour attenuation prior against a slow float64 reference (skimage HSV, SciPy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.color import rgb2hsv

from dehaze import Dehazer, DehazeResult
from dehaze._kernels import restore as _rk
from dehaze.cap import CAP_COEFFICIENTS, MAX_BETA, ColorAttenuationPrior, cap_depth

from helpers import DTYPES, layouts, random_image
from reference import cap_ref


def cap_depth_ref(image: np.ndarray, radius: int) -> np.ndarray:
    """d = θ0 + θ1 v + θ2 s with skimage's HSV, then a min filter clipped to the image."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        v, s = img, np.zeros_like(img)
    else:
        hsv = rgb2hsv(img)
        v, s = hsv[..., 2], hsv[..., 1]
    d = CAP_COEFFICIENTS[0] + CAP_COEFFICIENTS[1] * v + CAP_COEFFICIENTS[2] * s
    return ndimage.minimum_filter(d, size=2 * radius + 1, mode="constant", cval=np.inf)


def test_published_coefficients():
    # Zhu, Mai & Shao, TIP 2015, section IV-B
    assert CAP_COEFFICIENTS == (0.121779, 0.959710, -0.780245)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (5, 9), (31, 17)])
def test_cap_depth_kernel(rng, dtype, shape):
    image = rng.random(shape + (3,)).astype(dtype)
    image[0, 0] = 0.0  # v = 0: saturation defined as 0
    out = np.empty(shape, dtype=dtype)
    _rk.cap_depth(image, *CAP_COEFFICIENTS, out, 0, shape[0])
    atol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(out, cap_depth_ref(image, 0), atol=atol, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("radius", [0, 1, 7, 40])
def test_cap_depth_matches_reference(rng, dtype, radius):
    image = random_image(rng, (23, 35, 3), dtype)
    scale = np.iinfo(dtype).max if image.dtype.kind == "u" else 1
    want = cap_depth_ref(image.astype(np.float64) / scale, radius)
    got = cap_depth(image, radius)
    assert got.dtype == (np.float64 if dtype == np.float64 else np.float32)
    atol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)


def test_cap_depth_gray_and_layouts(rng):
    gray = rng.random((12, 14))
    np.testing.assert_allclose(cap_depth(gray, 2), cap_depth_ref(gray, 2), atol=1e-12)
    rgb = rng.random((12, 14, 3))
    want = cap_depth(rgb, 1)
    for name, view in layouts(rgb).items():
        np.testing.assert_array_equal(cap_depth(view, 1), want, name)


def test_cap_depth_orders_haze(rng):
    """Whiter (brighter, less saturated) means deeper under the prior."""
    clear = np.array([[[0.8, 0.2, 0.1]]])
    hazy = 0.5 * clear + 0.5 * 0.9
    assert cap_depth(hazy, 0)[0, 0] > cap_depth(clear, 0)[0, 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cap_method_contract(rng, dtype):
    image = random_image(rng, (40, 52, 3), dtype)
    method = ColorAttenuationPrior(guided_radius=8)
    assert isinstance(method, Dehazer)
    result = method(image)
    assert isinstance(result, DehazeResult)
    assert result.image.dtype == image.dtype and result.image.shape == image.shape
    assert result.transmission is not None and result.depth is not None
    assert np.all(result.transmission >= np.float32(0.1) - 1e-7)
    assert np.all(result.transmission <= 1.0)
    assert np.all(result.depth >= 0) and np.all(np.isfinite(result.depth))
    assert result.dark_channel is None


def test_cap_transmission_is_exp_of_refined_depth(rng):
    # the depth and t from the float64 reference (tests/reference.py), not from the
    # method's own output fields
    image = rng.random((30, 40, 3)) * 0.5 + 0.3
    result = ColorAttenuationPrior(beta=0.8, guided_radius=6)(image)
    want = cap_ref(image, beta=0.8, guided_radius=6)
    np.testing.assert_allclose(result.depth, want["depth"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(result.transmission, want["transmission"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(want["transmission"], np.clip(np.exp(-0.8 * want["depth"]), 0.1, 1))


def test_cap_amount_zero_is_identity_and_colour_guide(rng):
    image = random_image(rng, (24, 30, 3), np.uint8)
    np.testing.assert_array_equal(ColorAttenuationPrior(amount=0.0)(image).image, image)
    hazy = rng.random((24, 30, 3)) * 0.4 + 0.5
    gray = ColorAttenuationPrior(guided_radius=5)(hazy).image
    color = ColorAttenuationPrior(guided_radius=5, guide="color")(hazy).image
    assert gray.shape == color.shape and not np.array_equal(gray, color)
    assert ColorAttenuationPrior(guided_radius=5)(rng.random((20, 21))).image.shape == (20, 21)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"beta": 0.0}, ValueError, "beta"),
        # exp(−β d) is computed in float32: β must stay finite there, and β d too
        ({"beta": 1.01e30}, ValueError, r"beta must be in \(0, 1e\+30\]"),
        ({"beta": 1e39}, ValueError, r"beta must be in \(0, 1e\+30\]"),
        ({"beta": 1e300}, ValueError, r"beta must be in \(0, 1e\+30\]"),
        ({"guide": "rgb"}, ValueError, "guide"),
        ({"patch_radius": -1}, ValueError, "patch_radius"),
        ({"tolerance": 2.0}, ValueError, "tolerance"),
        ({"amount": "full"}, TypeError, "amount"),
    ],
)
def test_cap_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ColorAttenuationPrior(**kwargs)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("beta", [1e3, 1e12, MAX_BETA])
@pytest.mark.parametrize(
    "settings", [{"amount": 0.0}, {"amount": 0.5}, {"tolerance": 0.2, "amount": 0.0}, {}]
)
def test_cap_large_beta_is_finite_and_warns_nothing(rng, dtype, beta, settings):
    # saturated colours have a negative CAP depth: exp(−β d) overflowed to inf there (a
    # RuntimeWarning, an error in the tests), and amount 0 then gave 1 − 0 · (1 − inf) = NaN
    image = rng.random((24, 30, 3))
    image[:8] = [0.0, 0.0, 1.0]
    image[8:12] = 0.0
    image = (image * 255).astype(dtype) if dtype == np.uint8 else image.astype(dtype)
    result = ColorAttenuationPrior(beta=beta, guided_radius=3, **settings)(image)
    for name in ("image", "transmission", "depth"):
        assert np.all(np.isfinite(getattr(result, name))), name
    if settings.get("amount") == 0.0 and "tolerance" not in settings:
        # amount 0 removes no haze: J = (I − A) · 1 + A, within rounding
        np.testing.assert_allclose(result.image, image, rtol=0, atol=1e-6)


def test_cap_black_and_white_images_are_finite():
    for value in (0.0, 1.0):
        out = ColorAttenuationPrior(guided_radius=4)(np.full((16, 16, 3), value)).image
        assert np.all(np.isfinite(out))
