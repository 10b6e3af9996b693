"""The dark-channel-prior steps and pipeline against the float64 reference."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

import dehaze
from dehaze import DarkChannelPrior, Dehazer, DehazeResult

from helpers import DTYPES, dcp_dehaze, layouts, random_image
from reference import (
    assert_rounded_equal,
    atmospheric_light_ref,
    dark_channel_ref,
    dehaze_ref,
    recover_ref,
    to_float64,
    transmission_ref,
)


def hazy_scene(rng: np.random.Generator, shape=(46, 62), dtype=np.float64) -> np.ndarray:
    """A clear random scene pushed through the haze model with a depth ramp."""
    h, w = shape
    clear = rng.random((h, w, 3)) * 0.8
    depth = np.linspace(0.2, 2.0, h)[:, None] * np.ones((1, w))
    t = np.exp(-depth)[..., None]
    hazy = clear * t + np.array([0.9, 0.92, 0.95]) * (1 - t)
    if np.dtype(dtype).kind == "u":
        return np.rint(hazy * np.iinfo(dtype).max).astype(dtype)
    return hazy.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ((1, 1), (5, 9), (31, 20)))
@pytest.mark.parametrize("radius", (0, 2, 40))
def test_dark_channel(rng, dtype, shape, radius):
    img = random_image(rng, (*shape, 3), dtype)
    out = dehaze.dark_channel(img, radius)
    np.testing.assert_allclose(out, dark_channel_ref(img, radius), atol=1e-7, rtol=0)
    gray = img[..., 0]
    np.testing.assert_allclose(
        dehaze.dark_channel(gray, radius), dark_channel_ref(gray, radius), atol=1e-7, rtol=0
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fraction", (0.001, 0.05, 1.0))
def test_atmospheric_light(rng, dtype, fraction):
    img = random_image(rng, (40, 50, 3), dtype)
    dark = dark_channel_ref(img, 3)
    expected = atmospheric_light_ref(img, dark, fraction)
    out = dehaze.atmospheric_light(img, dark, top_fraction=fraction)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(
        dehaze.atmospheric_light(img, patch_radius=3, top_fraction=fraction), expected, rtol=1e-6
    )


def test_atmospheric_light_ties_are_resolved_like_the_reference():
    img = np.full((10, 10, 3), 0.5)
    img[2, 3] = (0.75, 0.75, 0.75)
    img[7, 1] = (1.0, 0.625, 0.625)  # same sum as img[2, 3]: the first in row-major order wins
    dark = np.ones((10, 10))  # every pixel is a candidate
    np.testing.assert_array_equal(dehaze.atmospheric_light(img, dark), [0.75, 0.75, 0.75])
    np.testing.assert_array_equal(atmospheric_light_ref(img, dark, 0.001), [0.75, 0.75, 0.75])


@pytest.mark.parametrize("threads", (1, 2, 3))
def test_atmospheric_light_across_row_bands_matches_the_reference(rng, threads):
    # tall enough for one band per thread; uint8 values make many dark-value ties at the
    # threshold, and two equally bright candidates sit in different bands
    img = random_image(rng, (400, 60, 3), np.uint8)
    img[350, 5] = (255, 200, 200)
    img[20, 7] = (200, 255, 200)  # same sum, earlier in row-major order: this one wins
    dark = np.zeros((400, 60))
    dark[20, 7] = dark[350, 5] = 1.0
    dark[100:300] = 1.0
    img[100:300] = np.minimum(img[100:300], 100)
    with dehaze.num_threads(threads):
        got = dehaze.atmospheric_light(img, dark, top_fraction=0.01)
        np.testing.assert_allclose(got, atmospheric_light_ref(img, dark, 0.01), rtol=1e-6)
        np.testing.assert_allclose(got, np.array([200, 255, 200]) / 255, rtol=1e-6)
        for fraction in (0.001, 0.05, 0.5):
            np.testing.assert_allclose(
                dehaze.atmospheric_light(img, patch_radius=2, top_fraction=fraction),
                atmospheric_light_ref(img, dark_channel_ref(img, 2), fraction),
                rtol=1e-6,
            )


@pytest.mark.parametrize(
    "kind", ["out_of_range", "one_bin", "constant", "two_levels", "float32_noise"]
)
@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("kept", (1 << 16, 0))
def test_atmospheric_light_selection_on_hard_dark_maps(rng, kind, threads, kept, monkeypatch):
    # kept = 0: the boundary bin's positions are never stored, so its brightest candidate
    # comes from the third pass (what large bins use)
    monkeypatch.setattr(dehaze.atmosphere, "MAX_KEPT_POSITIONS", kept)
    # the histogram bins [0, 1]: values outside it, values that all share one bin, and
    # many exact ties must still give the reference's k-th largest threshold and pixel
    img = random_image(rng, (300, 41, 3), np.float64)
    dark = {
        "out_of_range": lambda: rng.uniform(-3.0, 5.0, (300, 41)),
        "one_bin": lambda: 0.5 + 1e-7 * rng.random((300, 41)),
        "constant": lambda: np.full((300, 41), 0.25),
        "two_levels": lambda: np.where(rng.random((300, 41)) < 0.3, 0.75, 0.125),
        "float32_noise": lambda: rng.random((300, 41)).astype(np.float32),
    }[kind]()
    with dehaze.num_threads(threads):
        for fraction in (1e-9, 0.001, 0.05, 0.3, 1.0):
            np.testing.assert_array_equal(
                dehaze.atmospheric_light(img, dark, top_fraction=fraction),
                atmospheric_light_ref(img, dark.astype(np.float64), fraction),
                err_msg=f"{kind} {fraction}",
            )


def test_atmospheric_light_of_black_image_is_bounded():
    light = dehaze.atmospheric_light(np.zeros((8, 8, 3), np.uint8))
    np.testing.assert_allclose(light, [1e-3] * 3, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transmission(rng, dtype):
    img = random_image(rng, (30, 40, 3), dtype)
    light = np.array([0.9, 0.8, 0.95])
    out = dehaze.transmission(img, light, omega=0.9, patch_radius=4)
    atol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(out, transmission_ref(img, light, 0.9, 4), atol=atol, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(12, 13, 3), (1, 1, 3), (150, 70, 3), (150, 71), (9, 4, 3)])
@pytest.mark.parametrize("threads", [1, 2])
def test_recover(rng, dtype, shape, threads):
    img = random_image(rng, shape, dtype)
    t = rng.random(shape[:2]) * 1.2 - 0.1  # values below t0, below 0 and above 1
    light = np.array([0.8, 0.9, 0.7]) if len(shape) == 3 else 0.85
    expected = recover_ref(img, t, np.atleast_1d(light), 0.15)
    for name, view in layouts(img).items():
        with dehaze.num_threads(threads):
            out = dehaze.recover(view, t, light, t0=0.15)
        assert out.dtype == img.dtype and out.shape == img.shape, name
        if np.dtype(dtype).kind == "u":
            # rint(J · max) exactly; float32 J is within 1e-6 (|J| ≤ 1/t0 before clipping)
            assert_rounded_equal(out, expected, 1e-6)
        else:
            atol = 1e-12 if dtype == np.float64 else 1e-6
            np.testing.assert_allclose(out, expected, atol=atol, err_msg=name)


def test_recover_without_clip_keeps_out_of_range_values():
    img = np.full((2, 2, 3), 0.9)
    out = dehaze.recover(img, np.full((2, 2), 0.1), 0.2, clip=False)
    np.testing.assert_allclose(out, (0.9 - 0.2) / 0.1 + 0.2)


@pytest.mark.parametrize("guide", ("gray", "color"))
@pytest.mark.parametrize("subsample", (1, 3))
def test_pipeline_matches_plain_reference(rng, guide, subsample):
    hazy = hazy_scene(rng)
    kwargs = {"guided_radius": 12, "eps": 1e-3, "guide": guide, "subsample": subsample}
    result = dcp_dehaze(hazy, **kwargs)
    expected = dehaze_ref(hazy, **kwargs)
    for field in ("image", "transmission", "atmospheric_light", "dark_channel", "depth"):
        np.testing.assert_allclose(
            getattr(result, field), expected[field], atol=1e-5, rtol=0, err_msg=field
        )


def test_dehaze_is_the_default_method_with_its_defaults():
    signature = inspect.signature(dehaze.dehaze)
    defaults = dataclasses.asdict(dehaze.ClearHaze())
    skip = ("image", "outputs")
    assert {k: p.default for k, p in signature.parameters.items() if k not in skip} == defaults
    hazy = np.full((40, 60, 3), 0.7)
    hazy[10:30, 20:40] = (0.3, 0.4, 0.5)
    np.testing.assert_array_equal(dehaze.dehaze(hazy).image, dehaze.ClearHaze()(hazy).image)


def test_reference_defaults_equal_the_method_defaults():
    signature = inspect.signature(dehaze_ref)
    defaults = dataclasses.asdict(DarkChannelPrior())
    del defaults["atmospheric_light"]
    assert {k: p.default for k, p in signature.parameters.items() if k != "image"} == defaults


def test_paper_parameters():
    method = DarkChannelPrior.paper(guide="color")
    assert (method.omega, method.t0, method.patch_radius) == (0.95, 0.1, 7)
    assert (method.guided_radius, method.eps, method.top_fraction) == (60, 1e-4, 0.001)
    assert method.guide == "color"
    with pytest.raises(ValueError, match="t0 must be in"):
        DarkChannelPrior.paper(t0=2.0)


@pytest.mark.parametrize("paper", (False, True))
def test_pipeline_default_parameters_match_reference(rng, paper):
    hazy = hazy_scene(rng, (70, 90))
    method = DarkChannelPrior.paper() if paper else DarkChannelPrior()
    result = method(hazy)
    params = dataclasses.asdict(method)
    del params["atmospheric_light"]
    expected = dehaze_ref(hazy, **params)
    np.testing.assert_allclose(result.image, expected["image"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.transmission, expected["transmission"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gray", (False, True))
def test_pipeline_keeps_dtype_and_shape(rng, dtype, gray):
    hazy = hazy_scene(rng, (33, 41), dtype)
    if gray:
        hazy = np.ascontiguousarray(hazy[..., 1])
    result = dcp_dehaze(hazy, guided_radius=8)
    assert isinstance(result, DehazeResult)
    assert result.image.dtype == hazy.dtype and result.image.shape == hazy.shape
    working = np.float64 if dtype == np.float64 else np.float32
    for field in ("transmission", "dark_channel", "depth"):
        value = getattr(result, field)
        assert value.shape == hazy.shape[:2] and value.dtype == working
        assert np.all(np.isfinite(value))
    assert result.atmospheric_light.shape == ((1,) if gray else (3,))
    expected = dehaze_ref(to_float64(hazy), guided_radius=8)
    if np.dtype(dtype).kind == "u":
        # the float32 pipeline is within 2e-4 of the float64 reference (as below)
        assert_rounded_equal(result.image, expected["image"], 2e-4)
    else:
        atol = 1e-5 if dtype == np.float64 else 2e-4
        np.testing.assert_allclose(result.image, expected["image"], atol=atol)


@pytest.mark.parametrize("dtype", (np.uint8, np.uint16))
@pytest.mark.parametrize("guide", ("gray", "color", "plane"))
def test_integer_pixels_read_directly_match_the_float_path(rng, dtype, guide):
    # integer images are scaled inside the kernels; the result must be the float32
    # pipeline's on the same pixels scaled to [0, 1]
    hazy = hazy_scene(rng, (70, 90), dtype)
    if guide == "plane":
        hazy = np.ascontiguousarray(hazy[..., 0])
    as_float = np.multiply(hazy, np.float32(1 / np.iinfo(dtype).max), dtype=np.float32)
    kwargs = {"guided_radius": 9, "guide": "gray" if guide == "plane" else guide}
    got, want = dcp_dehaze(hazy, **kwargs), dcp_dehaze(as_float, **kwargs)
    np.testing.assert_array_equal(got.dark_channel, want.dark_channel)
    np.testing.assert_array_equal(got.atmospheric_light, want.atmospheric_light)
    np.testing.assert_allclose(got.transmission, want.transmission, atol=2e-6, rtol=0)
    np.testing.assert_allclose(got.depth, want.depth, atol=1e-5, rtol=0)
    # rint(J · max) of the float path's J, up to the transmissions' float32 difference
    assert_rounded_equal(got.image, want.image.astype(np.float64), 2e-5)


@pytest.mark.parametrize("layout", ("C", "F", "strided", "readonly"))
def test_pipeline_layouts(rng, layout):
    hazy = hazy_scene(rng, (30, 44), np.uint8)
    expected = dcp_dehaze(hazy, guided_radius=6).image
    view = layouts(hazy)[layout]
    before = view.copy()
    np.testing.assert_array_equal(dcp_dehaze(view, guided_radius=6).image, expected)
    np.testing.assert_array_equal(view, before)


def test_dehazing_improves_a_synthetic_scene(rng):
    h, w = 80, 100
    clear = rng.random((h, w, 3)) * 0.6 + 0.05
    t_true = np.exp(-np.linspace(0.3, 1.5, h))[:, None] * np.ones((1, w))
    light = np.array([0.92, 0.92, 0.92])
    hazy = clear * t_true[..., None] + light * (1 - t_true[..., None])
    result = dcp_dehaze(hazy, guided_radius=20, atmospheric_light=tuple(light))
    err_hazy = np.abs(hazy - clear).mean()
    err_out = np.abs(result.image - clear).mean()
    assert err_out < 0.5 * err_hazy


def test_user_atmospheric_light_is_used(rng):
    hazy = hazy_scene(rng)
    result = dcp_dehaze(hazy, atmospheric_light=0.8, guided_radius=5)
    np.testing.assert_array_equal(result.atmospheric_light, [0.8, 0.8, 0.8])
    per_channel = dcp_dehaze(hazy, atmospheric_light=(0.7, 0.8, 0.9), guided_radius=5)
    np.testing.assert_allclose(per_channel.atmospheric_light, [0.7, 0.8, 0.9])


def test_method_object_is_reusable_and_a_dehazer(rng):
    method = DarkChannelPrior(guided_radius=10, omega=0.9)
    assert isinstance(method, Dehazer)
    hazy = hazy_scene(rng)
    np.testing.assert_array_equal(
        method(hazy).image, dcp_dehaze(hazy, guided_radius=10, omega=0.9).image
    )
    assert hash(method) == hash(DarkChannelPrior(guided_radius=10, omega=0.9))
    with pytest.raises(AttributeError):
        method.omega = 0.5  # type: ignore[misc]


def test_radius_larger_than_image_is_valid(rng):
    hazy = hazy_scene(rng, (6, 4))
    result = dcp_dehaze(hazy, patch_radius=50, guided_radius=1000)
    assert np.all(np.isfinite(result.image))
    expected = dehaze_ref(hazy, patch_radius=50, guided_radius=1000)
    np.testing.assert_allclose(result.image, expected["image"], atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"omega": 0.0}, ValueError, r"omega must be in \(0, 1\]"),
        ({"omega": 1.5}, ValueError, r"omega must be in \(0, 1\]"),
        ({"omega": "high"}, TypeError, "omega must be a real number"),
        ({"t0": 0.0}, ValueError, r"t0 must be in \(0, 1\)"),
        ({"t0": 1.0}, ValueError, r"t0 must be in \(0, 1\)"),
        ({"patch_radius": -1}, ValueError, "patch_radius must be an integer ≥ 0"),
        ({"patch_radius": 2.0}, TypeError, "patch_radius must be an integer"),
        ({"guided_radius": -3}, ValueError, "guided_radius must be an integer ≥ 0"),
        ({"eps": 0}, ValueError, r"eps must be in \[1e-12, inf\)"),
        ({"guide": "rgb"}, ValueError, "guide must be one of 'gray', 'color'"),
        ({"subsample": 0}, ValueError, "subsample must be an integer ≥ 1"),
        ({"atmospheric_light": 0.0}, ValueError, r"atmospheric_light values must be in \(0, 1\]"),
        ({"atmospheric_light": 255}, ValueError, "divide by the dtype's maximum"),
        ({"atmospheric_light": (0.9, 0.9)}, ValueError, r"shape \(3,\)"),
        ({"top_fraction": 0.0}, ValueError, r"top_fraction must be in \(0, 1\]"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        dcp_dehaze(np.full((8, 8, 3), 0.5), **kwargs)


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.full((4, 4, 3), np.nan), ValueError, "NaN or inf"),
        (np.full((4, 4, 3), np.inf, np.float32), ValueError, "NaN or inf"),
        (np.zeros((0, 4, 3)), ValueError, "empty"),
        (np.zeros((4, 4, 4)), ValueError, r"RGBA\?.*image\[\.\.\., :3\]"),
        (np.zeros((4, 4, 2)), ValueError, "2 channels"),
        (np.zeros(4), ValueError, "ndim=1"),
        (np.zeros((2, 4, 4, 3)), ValueError, "ndim=4"),
        (np.zeros((4, 4, 3), np.int16), TypeError, "accepted dtypes are uint8, uint16"),
        (np.zeros((4, 4, 3), np.float16), TypeError, "accepted dtypes"),
        (np.full((4, 4, 3), 2.0), ValueError, r"must lie in \[0, 1\]"),
        (np.full((4, 4, 3), -0.1), ValueError, r"must lie in \[0, 1\]"),
        # the value just above 1 is printed in full (".9g" showed it as 1)
        (np.full((4, 4, 3), np.nextafter(1.0, 2.0)), ValueError, r"in \[1\.0000000000000002, "),
        (
            np.full((4, 4, 3), np.nextafter(np.float32(1), np.float32(2))),
            ValueError,
            r"1\.0000001192092896\]",
        ),
        # a big-endian uint16/float is refused for its byte order, with the conversion
        (
            np.full((4, 4, 3), 1000, ">u2"),
            TypeError,
            r">u2 \(non-native byte order\).*"
            r"image\.astype\(image\.dtype\.newbyteorder\('='\)\)",
        ),
        (np.full((4, 4, 3), 0.5, ">f4"), TypeError, r">f4 \(non-native byte order\); float32"),
        (np.full((4, 4, 3), 0.5, ">f8"), TypeError, "non-native byte order"),
    ],
)
def test_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        dcp_dehaze(image)


def test_recover_rejects_mismatched_transmission():
    with pytest.raises(ValueError, match="transmission must have shape"):
        dehaze.recover(np.zeros((4, 4, 3)), np.ones((4, 5)), 0.9)
    with pytest.raises(ValueError, match="transmission contains NaN"):
        dehaze.recover(np.zeros((4, 4, 3)), np.full((4, 4), np.nan), 0.9)
    with pytest.raises(TypeError, match="clip must be True or False"):
        dehaze.recover(np.zeros((4, 4, 3)), np.ones((4, 4)), 0.9, clip="yes")  # type: ignore[arg-type]
