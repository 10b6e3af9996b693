"""ClearHaze: the float64 reference, the rules' intent, resolution and the two phases."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

import dehaze
from dehaze import ClearHaze, ClearScene
from dehaze.atmosphere import _kth_largest, bright_mean_light, he_light
from dehaze.clear import MAX_DETAIL_SIGMA, MAX_SNR_MARGIN
from dehaze.io import imread
from dehaze.metrics import psnr

from helpers import unit_edge_values
from reference import (
    assert_rounded_equal,
    block_mean_ref,
    bright_mean_light_ref,
    clear_haze_ref,
    clear_recover_ref,
    to_float64,
    transmission_terms_ref,
)


def hazy_scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    clear = 0.4 + 0.3 * np.sin(9 * x + 6 * y + np.array([0, 1, 2])) + 0.15 * rng.random((h, w, 3))
    t = np.exp(-1.8 * (1 - y))
    return np.clip(clear, 0, 1) * t + 0.85 * (1 - t)


@pytest.mark.parametrize(
    ("shape", "working_size", "params"),
    [
        ((60, 80), 400, {}),  # smaller than the working size: k = 1, radii scaled down
        ((120, 160), 60, {}),  # k = 2
        ((90, 90), 30, {"reach_radius": 0, "signal_radius": 2}),  # k = 3, no reach
        ((64, 96), 64, {"t0": 0.1, "omega": 0.8, "snr_margin": 1.0, "sky_tolerance": 0.4}),
        ((125, 163), 60, {}),  # k = 2, last blocks cut by the edge (1 row, 1 column)
        ((97, 101), 32, {"reach_radius": 3}),  # k = 3, last blocks of 1 and 2 pixels
        ((120, 160), 30, {"radii_size": 60}),  # k = 4, the windows of working size 60
        ((90, 120), 90, {"radii_size": 45}),  # k = 1, windows twice working size 90's
    ],
)
def test_matches_the_float64_reference(rng, shape, working_size, params):
    image = hazy_scene(rng, *shape)
    method = ClearHaze(working_size=working_size, precision="float64", **params)
    result = method(image)
    expected = clear_haze_ref(image, working_size=working_size, **params)
    assert method.estimate(image).factor == expected["factor"]
    np.testing.assert_allclose(result.atmospheric_light, expected["atmospheric_light"], atol=1e-8)
    np.testing.assert_allclose(result.image, expected["image"], atol=1e-8, rtol=0)
    np.testing.assert_allclose(result.transmission, expected["transmission"], atol=1e-8, rtol=0)
    np.testing.assert_allclose(result.depth, expected["depth"], atol=1e-8, rtol=0)
    assert result.transmission.dtype == result.depth.dtype == np.float64
    # the default precision computes the same float64 image in float32: float64 out, the
    # maps in float32, within float32 rounding of the reference (measured: below 7e-7)
    single = ClearHaze(working_size=working_size, **params)(image)
    assert single.image.dtype == np.float64
    assert single.transmission.dtype == single.depth.dtype == np.float32
    for name in ("image", "transmission", "depth"):  # depth: error × 1/t ≤ 1/t0
        np.testing.assert_allclose(getattr(single, name), expected[name], atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("working_size", [60, 400])  # k = 2, and k = 1 (the image itself)
def test_precision_sets_the_working_dtype_for_every_input(rng, dtype, working_size):
    image = hazy_scene(rng, 120, 160)
    if dtype == np.uint8:
        image = np.rint(image * 255)
    image = image.astype(dtype)
    for precision in ("float32", "float64"):
        method = ClearHaze(working_size=working_size, precision=precision)
        work = method.working_image(image, method.working_factor(image.shape))
        assert work.dtype == np.dtype(precision)
        result = method(image)
        assert result.image.dtype == dtype
        assert result.transmission.dtype == result.depth.dtype == np.dtype(precision)
    expected = clear_haze_ref(image, working_size=working_size)
    # float64 arithmetic is the reference's; only the rounding to the output dtype differs
    precise = ClearHaze(working_size=working_size, precision="float64")(image)
    np.testing.assert_allclose(precise.transmission, expected["transmission"], atol=1e-8, rtol=0)
    if dtype == np.uint8:
        assert_rounded_equal(precise.image, expected["image"], atol=1e-8)
    else:
        atol = 1e-8 if dtype == np.float64 else float(np.finfo(np.float32).eps)
        np.testing.assert_allclose(precise.image, expected["image"], atol=atol, rtol=0)


def test_precision_is_checked_and_planes_must_match_it(rng):
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'float64'"):
        ClearHaze(precision="float16")
    image = hazy_scene(rng, 40, 50)
    single, double = ClearHaze(), ClearHaze(precision="float64")
    scene = single.estimate(image)
    planes = single.working_planes(single.working_image(image, scene.factor), scene)
    with pytest.raises(ValueError, match="planes are float32 but this ClearHaze works in float64"):
        double.apply_planes(image, planes)


@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize("working_size", [80, 30])  # k = 1 (planes copied), k = 3 (upsampled)
def test_uint8_and_gray_follow_the_reference(rng, gray, working_size):
    image = np.rint(hazy_scene(rng, 80, 100) * 255).astype(np.uint8)
    if gray:
        image = np.rint(image @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    result = ClearHaze(working_size=working_size)(image)
    expected = clear_haze_ref(image, working_size=working_size)
    assert result.image.dtype == np.uint8 and result.image.shape == image.shape
    # float32 inside: within 2e-4 of the reference, then rounded to the nearest level
    assert_rounded_equal(result.image, expected["image"], atol=2e-4)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize(
    ("shape", "working_size"),
    [((80, 100), 80), ((97, 101), 32)],  # k = 1 (planes copied); k = 3, edge blocks cut
)
def test_full_size_pass_matches_its_reference(rng, dtype, gray, shape, working_size):
    # the full-size pass alone (dehaze._kernels.clear.recover_detail, run by apply_planes)
    # against the float64 reference of that step, fed the library's own working planes
    image01 = hazy_scene(rng, *shape)
    if gray:
        image01 = image01 @ np.array([0.299, 0.587, 0.114])
    if np.dtype(dtype).kind == "u":
        image = np.rint(image01 * np.iinfo(dtype).max).astype(dtype)
    else:
        image = image01.astype(dtype)
    method = ClearHaze(working_size=working_size)
    scene = method.estimate(image)
    planes = method.working_planes(method.working_image(image, scene.factor), scene)
    result = method.apply_planes(image, planes)
    expected = clear_recover_ref(image, planes.planes, planes.light, planes.factor, method.t0)
    assert result.image.dtype == image.dtype and result.image.shape == image.shape
    # float32 arithmetic on float32 planes: within 2e-5 of the float64 step (gain ≤ 1/t0)
    if np.dtype(dtype).kind == "u":
        assert_rounded_equal(result.image, expected["image"], atol=2e-5)
    else:
        np.testing.assert_allclose(result.image, expected["image"], atol=2e-5, rtol=0)
    np.testing.assert_allclose(result.transmission, expected["transmission"], atol=2e-5, rtol=0)
    np.testing.assert_allclose(result.depth, expected["depth"], atol=2e-5, rtol=0)


def test_flat_region_at_the_airlight_is_not_amplified_but_texture_is(rng):
    # left: sky, flat and close to A, with sensor noise; right: dense haze over texture
    h, w = 96, 192
    a = 0.85
    sky = a + rng.normal(0, 0.004, (h, w // 2))
    texture = 0.2 + 0.6 * (rng.random((h // 8, w // 16)) > 0.5)
    texture = np.kron(texture, np.ones((8, 8)))
    dense = texture * 0.25 + a * 0.75 + rng.normal(0, 0.004, (h, w // 2))
    image = np.clip(np.concatenate([sky, dense], axis=1), 0, 1)
    image = np.repeat(image[:, :, np.newaxis], 3, axis=2)
    out = ClearHaze(working_size=96)(image).image
    plain = dehaze.DarkChannelPrior(patch_radius=4, guided_radius=16)(image).image
    inner = (slice(20, -20), slice(20, w // 2 - 20))
    sky_noise_in = image[inner].std()
    assert out[inner].std() < 2.0 * sky_noise_in  # not amplified into blotches
    assert plain[inner].std() > 3.0 * sky_noise_in  # which is what plain DCP does there
    right = (slice(20, -20), slice(w // 2 + 20, -20))
    assert out[right].std() > 2.5 * image[right].std()  # the hidden texture is recovered


def test_a_pixel_brighter_than_the_airlight_is_not_blown_out():
    image = np.full((64, 64, 3), 0.8)
    image[::8] = 0.3  # some structure, so the prior acts
    image[30:34, 30:34] = (1.0, 0.95, 0.9)  # a sun brighter than A
    result = ClearHaze(working_size=64)(image)
    sun = result.image[31, 31]
    assert np.all(sun < 1.0)  # the box keeps J below white in every channel


def test_the_same_scene_at_twice_the_pixels_gives_the_same_result(rng):
    image = hazy_scene(rng, 200, 260)
    method = ClearHaze(working_size=200)
    small = method(image).image
    big_input = cv2.resize(image, (520, 400), interpolation=cv2.INTER_NEAREST)
    big = method(big_input).image
    back = cv2.resize(big, (260, 200), interpolation=cv2.INTER_AREA)
    assert method.estimate(big_input).factor == 2
    assert psnr(small, np.clip(back, 0, 1)) > 40.0


def test_scene_blend_keeps_the_block_factor():
    old = ClearScene(np.array([0.8, 0.8, 0.8]), 2, 1.0, 0.01)
    new = ClearScene(np.array([0.9, 0.7, 0.8]), 2, 1.0, 0.03)
    mixed = new.blend(old, 0.5)
    assert mixed.factor == 2 and isinstance(mixed.factor, int)
    assert mixed.noise_sigma == pytest.approx(0.02)
    np.testing.assert_allclose(mixed.atmospheric_light, [0.85, 0.75, 0.8])


@pytest.mark.parametrize(
    ("dtype", "factor", "shape"),
    [
        (np.uint8, 3, (7, 11, 3)),  # sums in uint16
        (np.uint8, 257, (300, 520, 3)),  # 257 · 255 = 65535: the largest uint16 sum
        (np.uint8, 258, (300, 270)),  # one more row: uint32, gray
        (np.uint16, 3, (10, 8, 3)),  # uint32
        (np.uint16, 5, (11, 13)),  # gray (the generic loop)
        (np.float32, 4, (9, 10, 3)),
        (np.float64, 2, (5, 7)),
    ],
)
@pytest.mark.parametrize("fill", ["max", "random"])
def test_block_means_are_exact_at_the_largest_sums(rng, dtype, factor, shape, fill):
    # every pixel at the dtype's maximum is the case where a too-narrow column sum wraps
    if np.dtype(dtype).kind == "u":
        top = np.iinfo(dtype).max
        image = np.full(shape, top, dtype) if fill == "max" else rng.integers(0, top, shape)
        image = image.astype(dtype)
    else:
        image = np.ones(shape, dtype) if fill == "max" else rng.random(shape).astype(dtype)
    got = ClearHaze().working_image(image, factor)
    expected = block_mean_ref(to_float64(image), factor)
    np.testing.assert_allclose(got, expected, rtol=2e-7, atol=0)
    if fill == "max":
        assert np.all(got == 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "working_size"),
    [
        ((24, 30, 3), 400),  # k = 1: the working image is the image, checked on its own
        ((66, 81, 3), 16),  # k = 4, blocks cut by both edges
        ((50, 47), 16),  # k = 3, gray (the generic loop)
    ],
)
def test_float_values_are_checked_in_the_block_means_pass(dtype, shape, working_size):
    # ClearHaze reads a float image's values while it sums the blocks (no separate pass):
    # every entry point refuses what check_image refuses, with its message, wherever the
    # value lies (first row of a block row, a later row, the last cut block), and -0.0
    # and the neighbours of 0 and 1 inside the range pass
    valid, invalid = unit_edge_values(dtype)
    h, w = shape[:2]
    positions = [(0, 0), (5, 7), (h - 1, w - 1), (h - 2, 1)]
    method = ClearHaze(working_size=working_size)
    good = np.full(shape, 0.5, dtype)
    scene = method.estimate(good)
    calls = {
        "call": lambda im: method(im, outputs=()),
        "estimate": method.estimate,
        "apply": lambda im: method.apply(im, scene, outputs=()),
    }
    for value, ok in [(v, True) for v in valid] + [(v, False) for v in invalid]:
        for y, x in positions:
            image = good.copy()
            image[(y, x, 1) if len(shape) == 3 else (y, x)] = value
            if ok:
                for call in calls.values():
                    call(image)
                continue
            with pytest.raises(ValueError) as expected:
                dehaze._validate.check_image(image)
            for name, call in calls.items():
                with pytest.raises(ValueError) as got:
                    call(image)
                assert str(got.value) == str(expected.value), (name, value, (y, x))


@pytest.mark.parametrize("size", [1, 2, 17, 4096, 50_000])
@pytest.mark.parametrize("levels", [None, 3, 200])  # continuous values, or many ties
def test_kth_largest_is_the_partition(rng, size, levels):
    values = rng.random(size) if levels is None else rng.integers(0, levels, size) / levels
    values = values.astype(np.float32)
    for k in {1, 2, max(1, size // 20), size // 2 or 1, size}:
        assert _kth_largest(values, k) == np.partition(values, size - k)[size - k]


def test_kth_largest_when_the_sample_overstates_the_largest_values(rng):
    # the large values sit exactly where the strided sample looks (every 4th of 16384), so
    # the sample's bound lies above the 100th largest: the whole array must be searched
    values = rng.random(16384).astype(np.float32) * 0.5
    values[: 60 * 4 : 4] = 1.0 + rng.random(60).astype(np.float32)
    for k in (55, 100, 300):
        assert _kth_largest(values, k) == np.partition(values, values.size - k)[values.size - k]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize(("top", "bright"), [(0.05, 0.01), (0.5, 0.3), (1e-4, 0.5), (1.0, 1.0)])
def test_bright_mean_light_matches_its_reference(rng, dtype, gray, top, bright):
    image = (rng.integers(0, 40, (70, 90, 3)) / 40).astype(dtype)  # ties in dark and sums
    if gray:
        image = image[:, :, 1]
    dark = image if gray else image.min(axis=2)
    got = bright_mean_light(image, dark, top, bright)
    assert got.dtype == dtype and got.shape == (1 if gray else 3,)
    np.testing.assert_allclose(got, bright_mean_light_ref(image, dark, top, bright), rtol=1e-6)


def test_one_white_pixel_does_not_decide_the_airlight(rng):
    # haze of colour (0.8, 0.8, 0.85) over a dark scene, and one white pixel (a highlight)
    # in the haze, among the candidates: He's rule takes it, the mean of the brightest 1 %
    # of the candidates stays near the haze
    image = (0.2 + 0.05 * rng.random((200, 300, 3))).astype(np.float32)
    image[:60] = np.array([0.8, 0.8, 0.85]) + 0.02 * rng.random((60, 300, 3))
    image[30, 100] = 1.0
    dark = image.min(axis=2)
    assert np.all(he_light(image, dark, 0.05) == 1.0)
    light = bright_mean_light(image, dark, 0.05, 0.01)
    np.testing.assert_allclose(light, [0.82, 0.82, 0.87], atol=0.01)


def test_bad_parameters_and_scenes_are_refused(rng):
    with pytest.raises(ValueError, match="working_size"):
        ClearHaze(working_size=8)
    with pytest.raises(ValueError, match="sky_tolerance"):
        ClearHaze(sky_tolerance=0.0)
    with pytest.raises(TypeError, match="snr_margin"):
        ClearHaze(snr_margin="3")  # type: ignore[arg-type]
    # accepted, then the call died with OverflowError in (snr_margin · σ)²
    for margin in (1e200, 1.5e6):
        with pytest.raises(ValueError, match=r"snr_margin must be in \(0, 1e\+06\]"):
            ClearHaze(snr_margin=margin)
    # accepted, then OpenCV's kernel size (8 σ + 1, an int) overflowed: an assertion error
    for sigma in (1e30, 2e4):
        with pytest.raises(ValueError, match=r"detail_sigma must be in \(0, 10000\]"):
            ClearHaze(detail_sigma=sigma)
    with pytest.raises(ValueError, match="eps"):
        ClearHaze(eps=0.0)
    with pytest.raises(ValueError, match="bright_fraction"):
        ClearHaze(bright_fraction=0.0)
    with pytest.raises(ValueError, match="bright_fraction"):
        ClearHaze(bright_fraction=1.5)
    image = hazy_scene(rng, 40, 40)
    method = ClearHaze()
    with pytest.raises(TypeError, match="ClearScene"):
        method.apply(image, dehaze.LightScene(np.array([0.8, 0.8, 0.8])))
    with pytest.raises(ValueError, match="factor"):
        method.apply(image, ClearScene(np.array([0.8, 0.8, 0.8]), 0, 1.0, 0.01))


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_largest_snr_margin_and_detail_sigma_stay_finite_at_any_noise(rng, precision):
    # the largest accepted k with the largest noise level σ = 1: (k σ)² / S² must stay
    # finite in float32 (no overflow warning: warnings are errors in the tests)
    image = hazy_scene(rng, 40, 50).astype(np.float32)
    method = ClearHaze(
        snr_margin=MAX_SNR_MARGIN, detail_sigma=MAX_DETAIL_SIGMA, precision=precision
    )
    scene = method.estimate(image)
    noisy = dataclasses.replace(scene, noise_sigma=1.0)
    result = method.apply(image, noisy)
    for name in ("image", "transmission", "depth"):
        assert np.all(np.isfinite(getattr(result, name))), name


def test_radii_size_keeps_the_windows_whatever_the_working_size(rng):
    # radii given for a working short side of 400: at working size 200 every window is half
    # as many working pixels, the same part of the image (radii_size=None: the same number)
    image = hazy_scene(rng, 400, 520)
    default = ClearHaze()
    coarse = ClearHaze(working_size=200, radii_size=400)
    scene, coarse_scene = default.estimate(image), coarse.estimate(image)
    assert (scene.factor, coarse_scene.factor) == (1, 2)
    assert scene.extent == coarse_scene.extent * 2 == 1.0
    assert ClearHaze(working_size=200).estimate(image).extent == 1.0
    assert coarse.halo < 0.55 * default.halo  # in working pixels
    assert abs(coarse.halo_for(coarse_scene) - default.halo_for(scene)) <= 2 * 2
    assert default.radii_size is None  # the working size's: the same numbers as 400 here
    np.testing.assert_array_equal(ClearHaze(radii_size=400)(image).image, default(image).image)
    for bad in (15, 0, 2.5, "400"):
        with pytest.raises((ValueError, TypeError), match="radii_size"):
            ClearHaze(radii_size=bad)


@pytest.mark.data
def test_fast_setting_stays_close_to_the_default_on_a_real_photo(data_dir: Path):
    # --fast (working size 200, the default's windows): close to the default's image, where
    # working_size=200 alone (windows twice as large) is not (measured: 37.6 and 27.8 dB)
    photo = imread(data_dir / "real" / "foggy_house.jpg")
    full = ClearHaze()(photo, outputs=()).image
    fast = ClearHaze(working_size=200, radii_size=400)(photo, outputs=()).image
    larger_windows = ClearHaze(working_size=200)(photo, outputs=()).image
    assert psnr(full, fast) >= 35.0
    assert psnr(full, larger_windows) < 30.0


@pytest.mark.data
def test_real_photo_is_cleared_and_its_half_size_preview_agrees(data_dir: Path):
    from dehaze.metrics import fog_density

    photo = imread(data_dir / "real" / "foggy_house.jpg")
    method = ClearHaze()
    full = method(photo).image
    assert fog_density(full) <= 0.6 * fog_density(photo)
    half_input = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), cv2.INTER_AREA)
    half = method(half_input).image
    full_small = cv2.resize(full, (half.shape[1], half.shape[0]), interpolation=cv2.INTER_AREA)
    assert psnr(full_small, half) >= 35.0


def test_reference_defaults_equal_the_method_defaults():
    import dataclasses
    import inspect

    signature = inspect.signature(clear_haze_ref)
    defaults = dataclasses.asdict(ClearHaze())
    assert defaults.pop("precision") == "float32"  # the reference is float64 throughout
    assert {k: p.default for k, p in signature.parameters.items() if k != "image"} == defaults


def test_depth_puts_the_sky_far(rng):
    # a hazy scene whose top half is sky (close to A, flat) and bottom half near texture
    h, w = 120, 160
    image = np.empty((h, w, 3))
    image[: h // 2] = 0.88 + rng.normal(0, 0.003, (h // 2, w, 3))
    near = 0.2 + 0.5 * rng.random((h // 2 // 4, w // 4, 3))
    image[h // 2 :] = np.kron(near, np.ones((4, 4, 1))) * 0.8 + 0.88 * 0.2
    depth = ClearHaze(working_size=120)(np.clip(image, 0, 1)).depth
    assert depth is not None
    assert np.median(depth[: h // 3]) > 1.5 * np.median(depth[-h // 3 :])


@pytest.mark.parametrize("shape", [(2, 5), (7, 9), (64, 80), (101, 67)])
def test_noise_level_matches_its_reference(rng, shape):
    from dehaze.noise import noise_sigma

    from reference import noise_sigma_ref

    for scale in (0.0, 0.01, 0.05):
        plane = np.clip(0.5 + scale * rng.normal(size=shape) + 0.1 * rng.random(shape), 0, 1)
        assert noise_sigma(plane) == pytest.approx(noise_sigma_ref(plane), rel=1e-9)


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 3, 3), (40, 70, 3), (61, 37), (200, 90, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_working_scale_filters_equal_the_kernels(rng, shape, dtype):
    # ClearHaze's working-scale dark channel, raw transmission, max filter and luma go
    # through OpenCV (nothing to compile); they must equal the Numba kernels'.
    from dehaze import clear
    from dehaze.filters import min_filter_plane
    from dehaze.guided import to_gray
    from dehaze.transmission_map import dark_channel_plane

    image = rng.random(shape).astype(dtype)
    plane = np.ascontiguousarray(image[..., 0] if image.ndim == 3 else image)
    for radius in (0, 1, 4, 100):
        np.testing.assert_array_equal(
            clear._dark_channel(image, radius), dark_channel_plane(image, radius)
        )
        np.testing.assert_array_equal(
            clear._max_window(plane, radius),
            -min_filter_plane(np.ascontiguousarray(-plane), radius),
        )
    if image.ndim == 3:
        np.testing.assert_allclose(
            clear._luma(image), to_gray(image), atol=np.finfo(dtype).eps, rtol=0
        )


def test_a_call_leaves_earlier_results_and_planes_alone(rng):
    # __call__ and apply reuse their thread's working-planes buffer: nothing they return,
    # nor planes from working_planes, may share it
    method = ClearHaze(working_size=48)
    first = hazy_scene(rng, 60, 80)
    second = hazy_scene(rng, 60, 80)[::-1].copy()
    result = method(first)
    kept = {k: np.copy(getattr(result, k)) for k in ("image", "transmission", "depth")}
    scene = method.estimate(first)
    planes = method.working_planes(method.working_image(first, scene.factor), scene)
    kept_planes = planes.planes.copy()
    method(second)
    method.apply(second, method.estimate(second))
    for key, value in kept.items():
        np.testing.assert_array_equal(getattr(result, key), value)
    np.testing.assert_array_equal(planes.planes, kept_planes)
    np.testing.assert_array_equal(method(first).image, kept["image"])
    np.testing.assert_array_equal(method.apply_planes(first, planes).image, kept["image"])


def test_working_planes_in_the_scratch_buffer(rng):
    # reuse=True (dehaze_tiled) gives the same planes, in the buffer this thread's next
    # ClearHaze call overwrites; without it the planes are the caller's own
    method = ClearHaze(working_size=48)
    image = hazy_scene(rng, 60, 80)
    scene = method.estimate(image)
    work = method.working_image(image, scene.factor)
    own = method.working_planes(work, scene)
    shared = method.working_planes(work, scene, reuse=True)
    np.testing.assert_array_equal(shared.planes, own.planes)
    assert not np.shares_memory(shared.planes, own.planes)
    method(image[::-1].copy())
    assert not np.array_equal(shared.planes, own.planes)  # overwritten by the call between
    assert np.shares_memory(method.working_planes(work, scene, reuse=True).planes, shared.planes)


@pytest.mark.parametrize("kind", ["float64", "float32", "uint8", "gray"])
def test_two_threads_give_the_one_thread_result(rng, kind):
    # two threads overlap independent working-scale stages; banded kernels inside them
    # (float64 and gray luma, He's rule) must neither deadlock on the pool nor change bits
    image = hazy_scene(rng, 200, 260)
    if kind == "float32":
        image = image.astype(np.float32)
    elif kind == "uint8":
        image = np.rint(image * 255).astype(np.uint8)
    elif kind == "gray":
        image = np.ascontiguousarray(image[:, :, 1])
    method = ClearHaze(working_size=200)  # k = 1: 200 working rows, two bands per kernel
    with dehaze.num_threads(1):
        one = method(image)
    with dehaze.num_threads(2):
        two = method(image)
    np.testing.assert_array_equal(two.image, one.image)
    np.testing.assert_array_equal(two.transmission, one.transmission)


# --- the calling thread's scratch ------------------------------------------------------


def test_concurrent_callers_each_get_their_own_result(rng):
    # every caller's intermediate maps live in its own thread's scratch (the pool thread
    # that runs a call's second chain writes into the caller's): four user threads at once,
    # images of one shape and of others, give the results of one call after another
    from concurrent.futures import ThreadPoolExecutor

    method = ClearHaze(working_size=48)
    images = [hazy_scene(rng, 60, 80) for _ in range(4)] + [
        hazy_scene(rng, 50 + 5 * k, 70) for k in range(4)
    ]
    images.append(hazy_scene(rng, 60, 80)[:, :, 0].copy())  # gray
    with dehaze.num_threads(2):
        serial = [method(im).image for im in images]
        scenes = [method.estimate(im) for im in images]
        applied = [method.apply(im, sc).image for im, sc in zip(images, scenes, strict=True)]
        for _ in range(3):
            with ThreadPoolExecutor(max_workers=4) as users:
                parallel = list(users.map(lambda im: method(im).image, images))
                pairs = list(zip(images, scenes, strict=True))
                split = list(users.map(lambda pair: method.apply(*pair).image, pairs))
            for want, got in zip(serial, parallel, strict=True):
                np.testing.assert_array_equal(got, want)
            for want, got in zip(applied, split, strict=True):
                np.testing.assert_array_equal(got, want)


def test_scratch_stays_within_its_budget(rng, monkeypatch):
    # a thread keeps at most _WORKSPACE_BYTES of scratch; beyond it arrays are made afresh,
    # with the same result
    from dehaze import clear

    image = hazy_scene(rng, 90, 120)
    method = ClearHaze(working_size=90)
    want = method(image).image
    budget = 90 * 120 * 4 * 5  # five planes of the working image
    monkeypatch.setattr(clear, "_WORKSPACE_BYTES", budget)
    clear._release_scratch()
    np.testing.assert_array_equal(method(image).image, want)
    np.testing.assert_array_equal(method(image).image, want)
    kept = clear._workspace()._arrays
    assert 0 < sum(a.nbytes for a in kept.values()) <= budget


def test_noise_sigma_buffers_give_the_same_sigma(rng):
    from dehaze.noise import noise_sigma

    luma = (rng.random((67, 93)) * 0.5 + 0.2).astype(np.float32)
    buffers = (np.empty((67, 93)), np.empty((67, 93)))
    assert noise_sigma(luma, buffers=buffers) == noise_sigma(luma)
    with pytest.raises(ValueError, match="buffers"):
        noise_sigma(luma, buffers=(np.empty((67, 93)), np.empty((67, 92))))


@pytest.mark.parametrize("channels", [0, 3])  # 0: a gray (H×W) image, as three equal channels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transmission_terms_equal_numpy(rng, channels, dtype):
    # The working-scale physical t and distance-to-A weight, whose per-pixel terms one
    # kernel computes, against the library's raw and boundary transmissions and the float64
    # reference of the weight. It may divide by a reciprocal: a few ulps apart.
    from dehaze import clear
    from dehaze.transmission_map import boundary_transmission, raw_transmission

    shape = (23, 41) + ((channels,) if channels else ())
    image = rng.random(shape).astype(dtype)
    image.reshape(-1)[:4] = [0.0, 1.0, 0.5, 1.0]
    light = rng.random(max(channels, 1)) * 0.5 + 0.5
    light[0] = 1.0  # 1 − A below the 1e-3 floor of Meng's bound
    a = light.astype(dtype)
    atol = 4 * np.finfo(dtype).eps
    method = ClearHaze(omega=0.9, sky_tolerance=0.2)
    radii = method._radii(1.0)._replace(patch=3, signal=2)

    physical, far = method._physical_and_far(image, a, radii, clear._Scratch())
    raw = raw_transmission(image, light, 0.9, 3)
    want = np.clip(np.maximum(raw, boundary_transmission(image, a)), 0, 1)
    np.testing.assert_allclose(physical, want, atol=atol, rtol=0)
    _, _, want = transmission_terms_ref(image, clear._box_mean(image, 2), a, 0.2)
    np.testing.assert_allclose(far, want, atol=atol, rtol=0)


def test_guided_coefficients_scratch_gives_the_same_planes(rng):
    from dehaze.guided import guided_coefficients

    guide = rng.random((40, 50)).astype(np.float32)
    src = rng.random((40, 50)).astype(np.float32)
    want = guided_coefficients(guide, src, 6, 1e-3)
    ab = np.empty((2, 40, 50), np.float32)
    np.testing.assert_array_equal(guided_coefficients(guide, src, 6, 1e-3, scratch=ab), want)
    with pytest.raises(ValueError, match="scratch"):
        guided_coefficients(guide, src, 6, 1e-3, scratch=np.empty((2, 40, 50)))
