"""Each kernel beside its slow reference (and OpenCV where it has one), same run."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import dehaze
from dehaze import sky_fraction
from dehaze._validate import as_float_image

from conftest import run
from reference import (
    atmospheric_light_ref,
    block_mean_ref,
    box_mean_ref,
    clear_recover_ref,
    dark_channel_ref,
    guided_color_ref,
    guided_gray_ref,
    min_filter_ref,
    recover_ref,
    to_float64,
    transmission_terms_ref,
)

IMPLS = ("dehaze", "reference", "opencv")


@pytest.fixture(scope="module")
def planes(image):
    img = as_float_image(image)
    gray = np.ascontiguousarray(img @ np.array([0.299, 0.587, 0.114], np.float32))
    return img, gray


@pytest.mark.parametrize("impl", IMPLS)
def test_min_filter(benchmark, planes, size, impl):
    benchmark.group = f"min_filter r=7 {size}"
    _, gray = planes
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15))
    func = {
        "dehaze": lambda: dehaze.min_filter(gray, 7),
        "reference": lambda: min_filter_ref(gray, 7),
        "opencv": lambda: cv2.erode(gray, kernel),
    }[impl]
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("radius", (7, 60))
@pytest.mark.parametrize("impl", ("dehaze", "opencv"))
def test_min_filter_window_independence(benchmark, planes, size, impl, radius):
    if size != "1920x1080":
        pytest.skip("one size suffices to show the cost against the window")
    benchmark.group = f"min_filter window {size} r={radius}"
    _, gray = planes
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    func = (
        (lambda: dehaze.min_filter(gray, radius))
        if impl == "dehaze"
        else (lambda: cv2.erode(gray, kernel))
    )
    run(benchmark, func)


@pytest.mark.parametrize("impl", IMPLS)
def test_box_filter(benchmark, planes, size, impl):
    benchmark.group = f"box_filter r=60 {size}"
    _, gray = planes
    func = {
        "dehaze": lambda: dehaze.box_filter(gray, 60),
        "reference": lambda: box_mean_ref(gray, 60),
        "opencv": lambda: (
            cv2.boxFilter(gray, -1, (121, 121), normalize=False, borderType=cv2.BORDER_CONSTANT)
            / cv2.boxFilter(
                np.ones_like(gray), -1, (121, 121), normalize=False, borderType=cv2.BORDER_CONSTANT
            )
        ),
    }[impl]
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", ("dehaze", "reference", "opencv"))
def test_guided_gray(benchmark, planes, size, impl):
    from opencv_reference import guided_gray

    benchmark.group = f"guided_filter gray r=60 {size}"
    _, gray = planes
    src = np.ascontiguousarray(np.clip(1.0 - gray, 0, 1))
    func = {
        "dehaze": lambda: dehaze.guided_filter(gray, src, 60, 1e-4),
        "reference": lambda: guided_gray_ref(gray, src, 60, 1e-4),
        "opencv": lambda: guided_gray(gray, src, 60, 1e-4),
    }[impl]
    run(benchmark, func, slow=impl == "reference")


def _coefficients_ref(guide, src, radius, eps):  # type: ignore[no-untyped-def]
    """The paper's mean(a), mean(b) in float64 (tests/test_guided.py checks against it)."""
    g, p = guide.astype(np.float64), src.astype(np.float64)
    mean_i, mean_p = box_mean_ref(g, radius), box_mean_ref(p, radius)
    a = (box_mean_ref(g * p, radius) - mean_i * mean_p) / (
        box_mean_ref(g * g, radius) - mean_i**2 + eps
    )
    return box_mean_ref(a, radius), box_mean_ref(mean_p - a * mean_i, radius)


def _coefficients_opencv(guide, src, radius, eps):  # type: ignore[no-untyped-def]
    from opencv_reference import _box

    mean_i, mean_p = _box(guide, radius), _box(src, radius)
    a = (_box(guide * src, radius) - mean_i * mean_p) / (
        _box(guide * guide, radius) - mean_i * mean_i + eps
    )
    return _box(a, radius), _box(mean_p - a * mean_i, radius)


@pytest.mark.parametrize("impl", IMPLS)
def test_guided_coefficients(benchmark, planes, size, impl):
    # ClearHaze's working-scale coefficients (dehaze.guided.guided_coefficients, one
    # coefficient_means kernel) on the working image of this size (short side ~400 px:
    # the image averaged over k x k blocks, k = round(short side / 400)), r = 80
    from dehaze.guided import guided_coefficients

    _, gray = planes
    k = max(1, round(min(gray.shape) / 400))
    work = cv2.resize(gray, (gray.shape[1] // k, gray.shape[0] // k), interpolation=cv2.INTER_AREA)
    benchmark.group = f"guided coefficients r=80 at working size {work.shape[1]}x{work.shape[0]}"
    src = np.ascontiguousarray(np.clip(1.0 - work, 0, 1))
    func = {
        "dehaze": lambda: guided_coefficients(work, src, 80, 0.03),
        "reference": lambda: _coefficients_ref(work, src, 80, 0.03),
        "opencv": lambda: _coefficients_opencv(work, src, 80, 0.03),
    }[impl]
    run(benchmark, func, slow=impl == "reference")


def _terms_opencv(work, mean, light, tolerance):
    # the same with OpenCV's per-channel operations where it has them
    a = tuple(float(v) for v in light) + (0.0,)
    scaled = cv2.multiply(work, tuple(1 / v for v in a[:3]) + (0.0,))
    channel_min = cv2.min(cv2.min(scaled[:, :, 0], scaled[:, :, 1]), scaled[:, :, 2])
    room = tuple(max(1.0 - v, 1e-3) for v in a[:3]) + (1.0,)
    shifted = cv2.divide(cv2.subtract(work, a), room)
    bound = cv2.max(cv2.max(shifted[:, :, 0], shifted[:, :, 1]), shifted[:, :, 2])
    difference = cv2.absdiff(mean, a)
    distance = cv2.max(cv2.max(difference[:, :, 0], difference[:, :, 1]), difference[:, :, 2])
    q = np.float32(tolerance) / np.maximum(distance, np.float32(1e-6))
    return channel_min, bound, np.clip(1 - q * q, 0, 1)


@pytest.mark.parametrize("impl", IMPLS)
def test_transmission_terms(benchmark, planes, size, impl):
    # ClearHaze's per-pixel terms of the physical t and the distance-to-A weight
    # (dehaze._kernels.clear.transmission_terms, one read of the working image and of its
    # local mean) on the working image of this size, against the float64 reference and OpenCV
    from dehaze._kernels.clear import transmission_terms

    img, _ = planes
    k = max(1, round(min(img.shape[:2]) / 400))
    work = cv2.resize(img, (img.shape[1] // k, img.shape[0] // k), interpolation=cv2.INTER_AREA)
    mean = cv2.boxFilter(work, -1, (13, 13), borderType=cv2.BORDER_REFLECT)
    height, width = work.shape[:2]
    benchmark.group = f"transmission terms at working size {width}x{height}"
    light = np.array([0.92, 0.94, 0.97], np.float32)
    room = np.maximum(np.float32(1) - light, np.float32(1e-3))
    scale = (1.0 / light.astype(np.float64)).astype(np.float32)
    outs = [np.empty((height, width), np.float32) for _ in range(3)]
    flat, flat_mean = work.reshape(height, -1), mean.reshape(height, -1)
    func = {
        "dehaze": lambda: transmission_terms(flat, flat_mean, scale, light, room, 0.15, *outs),
        "reference": lambda: transmission_terms_ref(work, mean, light, 0.15),
        "opencv": lambda: _terms_opencv(work, mean, light, 0.15),
    }[impl]
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", IMPLS)
def test_block_mean(benchmark, image, size, impl):
    # ClearHaze's working image: the uint8 input averaged over k x k blocks, k = round(short
    # side / 400) (dehaze._kernels.clear.block_mean); OpenCV: INTER_AREA on the float copy
    # a user would make (the same means where k divides the size, as it does here)
    k = max(1, round(min(image.shape[:2]) / 400))
    benchmark.group = f"block mean k={k} {size}"
    method = dehaze.ClearHaze()
    shape = (image.shape[1] // k, image.shape[0] // k)
    func = {
        "dehaze": lambda: method.working_image(image, k),
        "reference": lambda: block_mean_ref(to_float64(image), k),
        "opencv": lambda: cv2.resize(
            image.astype(np.float32) * np.float32(1 / 255), shape, interpolation=cv2.INTER_AREA
        ),
    }[impl]
    run(benchmark, func, slow=impl == "reference")


def _full_size_opencv(image, planes, light, t0):  # type: ignore[no-untyped-def]
    """ClearHaze's full-size step as it is usually written: cv2.resize, then NumPy.

    The working planes upsampled by INTER_LINEAR (the kernel's sampling where the block
    factor divides the size), the guided filter's output on the full-size luma, and rules
    2 and 3 of dehaze/clear.py in float32 over whole arrays.
    """
    img = image.astype(np.float32) * np.float32(1 / 255)
    height, width = img.shape[:2]
    up = [cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR) for plane in planes]
    luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    t = np.clip(up[0] * luma + up[1], 0, 1)
    w = np.clip(up[2] * luma + up[3], 0, 1)
    t_safe = np.maximum(t, np.float32(t0))
    gain = 1 + w * (1 - t_safe) / t_safe
    excess = (1 - up[4]) * (gain - 1)
    a = light.astype(np.float32)
    j = (img - a) * gain[..., None] + a - excess[..., None] * (img - cv2.merge(up[5:]))
    return np.rint(np.clip(j, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("impl", IMPLS)
def test_full_size_pass(benchmark, image, size, impl):
    # ClearHaze's full-resolution pass (dehaze._kernels.clear.recover_detail: upsample the
    # working planes, guided output, recovery, all fused), image only as the command line
    # asks; the planes are the default's for this image (k = round(short side / 400))
    method = dehaze.ClearHaze()
    scene = method.estimate(image)
    plan = method.working_planes(method.working_image(image, scene.factor), scene)
    benchmark.group = f"ClearHaze full-size pass k={plan.factor} {size}"
    if impl == "opencv":  # the same algorithm: within a grey level of the kernel's pixels
        mine = method.apply_planes(image, plan, outputs=()).image
        theirs = _full_size_opencv(image, plan.planes, plan.light, method.t0)
        assert np.abs(mine.astype(np.int16) - theirs).max() <= 1
    func = {
        "dehaze": lambda: method.apply_planes(image, plan, outputs=()),
        "reference": lambda: clear_recover_ref(
            image, plan.planes, plan.light, plan.factor, method.t0
        ),
        "opencv": lambda: _full_size_opencv(image, plan.planes, plan.light, method.t0),
    }[impl]
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_guided_color(benchmark, planes, size, impl):
    if impl == "reference" and size == "3840x2160":
        pytest.skip("the batched 3×3 solve reference needs several GB at 4K")
    benchmark.group = f"guided_filter color r=60 {size}"
    img, gray = planes
    src = np.ascontiguousarray(1.0 - gray)
    func = {
        "dehaze": lambda: dehaze.guided_filter(img, src, 60, 1e-4),
        "reference": lambda: guided_color_ref(img, src, 60, 1e-4),
    }[impl]
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
@pytest.mark.parametrize("subsample", (1, 4))
def test_guided_fast_variant(benchmark, planes, size, impl, subsample):
    if impl == "reference":
        if subsample == 4:
            pytest.skip("the reference is the full filter")
    benchmark.group = f"guided_filter gray r=60 subsample {size}"
    _, gray = planes
    src = np.ascontiguousarray(1.0 - gray)
    if impl == "reference":
        func = lambda: guided_gray_ref(gray, src, 60, 1e-4)  # noqa: E731
    else:
        func = lambda: dehaze.guided_filter(gray, src, 60, 1e-4, subsample=subsample)  # noqa: E731
    benchmark.extra_info["subsample"] = subsample
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_dark_channel(benchmark, image, size, impl):
    benchmark.group = f"dark_channel r=7 {size}"
    func = (
        (lambda: dehaze.dark_channel(image, 7))
        if impl == "dehaze"
        else (lambda: dark_channel_ref(image, 7))
    )
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_atmospheric_light(benchmark, image, planes, size, impl):
    benchmark.group = f"atmospheric_light {size}"
    img, _ = planes
    dark = dehaze.dark_channel(img, 7)
    dark64 = dark.astype(np.float64)
    func = (
        (lambda: dehaze.atmospheric_light(img, dark))
        if impl == "dehaze"
        else (lambda: atmospheric_light_ref(img, dark64, 0.001))
    )
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_recover(benchmark, image, planes, size, impl):
    benchmark.group = f"recover {size}"
    _, gray = planes
    t = np.ascontiguousarray(1.0 - 0.8 * gray)
    light = np.array([0.9, 0.9, 0.92])
    func = (
        (lambda: dehaze.recover(image, t, light))
        if impl == "dehaze"
        else (lambda: recover_ref(image, t.astype(np.float64), light, 0.1))
    )
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", IMPLS)
def test_luma(benchmark, image, size, impl):
    # the gray guide from uint8 RGB: dehaze reads the pixels directly (no float copy)
    benchmark.group = f"luma {size}"
    weights = np.array([0.299, 0.587, 0.114])
    if impl == "dehaze":
        func = lambda: dehaze.guided.to_gray(image, 1 / 255)  # noqa: E731
    elif impl == "reference":
        func = lambda: (image / 255.0) @ weights  # noqa: E731
    else:
        func = lambda: cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2GRAY)  # noqa: E731
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", IMPLS)
def test_depth_map(benchmark, planes, size, impl):
    # −ln(clip(t, t0, 1)) of a float32 transmission map
    benchmark.group = f"depth_map {size}"
    _, gray = planes
    t = np.ascontiguousarray(1.0 - 0.8 * gray)
    if impl == "dehaze":
        func = lambda: dehaze.depth_map(t, t0=0.1)  # noqa: E731
    elif impl == "reference":
        t64 = t.astype(np.float64)
        func = lambda: -np.log(np.clip(t64, 0.1, 1.0))  # noqa: E731
    else:
        func = lambda: -cv2.log(np.clip(t, np.float32(0.1), np.float32(1.0)))  # noqa: E731
    run(benchmark, func, slow=impl == "reference")


@pytest.mark.parametrize("impl", ("dehaze", "reference"))
def test_sky_fraction(benchmark, planes, size, impl):
    # RobustDCP's sky statistic: luma, local variance over 15 × 15, distance to A
    benchmark.group = f"sky_fraction {size}"
    img, _ = planes
    if impl == "dehaze":
        func = lambda: sky_fraction(img, 0.8)  # noqa: E731
    else:

        def func():
            gray = to_float64(img) @ np.array([0.299, 0.587, 0.114])
            rows = max(1, gray.shape[0] // 3)
            band = gray[: rows + 7]
            mean = box_mean_ref(band, 7)[:rows]
            variance = box_mean_ref(band * band, 7)[:rows] - mean * mean
            near = np.abs(band[:rows] - 0.8) < 0.2
            return np.count_nonzero((variance < 0.02**2) & near) / variance.size

    run(benchmark, func, slow=impl == "reference")
