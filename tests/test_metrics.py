"""Tests for dehaze.metrics: hand-computable cases, scikit-image agreement, input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dehaze.metrics import (
    Scorer,
    Scores,
    ciede2000,
    ciede2000_map,
    evaluate,
    psnr,
    ssim,
)


def _noisy_pair(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    clean = rng.random(shape)
    noisy = np.clip(clean + 0.1 * rng.standard_normal(shape), 0.0, 1.0)
    return clean, noisy


# --- PSNR -----------------------------------------------------------------------------


def test_psnr_identical_images_is_inf_without_warning() -> None:
    img = np.full((5, 6, 3), 0.3)
    assert psnr(img, img) == math.inf  # filterwarnings=error: no divide-by-zero warning


@pytest.mark.parametrize(
    ("delta", "expected"), [(0.1, 20.0), (0.01, 40.0), (0.5, 10 * math.log10(4))]
)
def test_psnr_known_mse(delta: float, expected: float) -> None:
    ref = np.zeros((8, 8, 3))
    img = np.full((8, 8, 3), delta)  # MSE = delta²
    assert psnr(ref, img) == pytest.approx(expected, abs=1e-9)


def test_psnr_uint8_uses_data_range_255() -> None:
    ref = np.zeros((4, 4, 3), dtype=np.uint8)
    img = np.full((4, 4, 3), 51, dtype=np.uint8)  # 51/255 = 0.2 → MSE 0.04 → 13.979 dB
    assert psnr(ref, img) == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-9)


def test_psnr_mixed_dtypes_are_put_on_one_scale() -> None:
    rng = np.random.default_rng(1)
    ref8 = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    img8 = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    as_float = img8.astype(np.float64) / 255
    assert psnr(ref8, as_float) == pytest.approx(psnr(ref8, img8), abs=1e-9)
    ref16 = ref8.astype(np.uint16) * 257  # the same values on the 16-bit scale
    assert psnr(ref16, img8) == pytest.approx(psnr(ref8, img8), abs=1e-9)


@pytest.mark.parametrize("shape", [(17, 23, 3), (9, 11)])
def test_psnr_matches_skimage(rng: np.random.Generator, shape: tuple[int, ...]) -> None:
    ref, img = _noisy_pair(rng, shape)
    assert psnr(ref, img) == pytest.approx(
        peak_signal_noise_ratio(ref, img, data_range=1.0), rel=1e-12
    )


# --- SSIM -----------------------------------------------------------------------------


def test_ssim_identical_is_one() -> None:
    img = np.random.default_rng(2).random((20, 30, 3))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img, color="gray", window="gaussian") == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_skimage_rgb_default(rng: np.random.Generator) -> None:
    ref, img = _noisy_pair(rng, (40, 50, 3))
    expected = structural_similarity(ref, img, channel_axis=-1, data_range=1.0)
    assert ssim(ref, img) == pytest.approx(expected, rel=1e-12)
    assert ssim(ref, img) < 0.99  # the noise is visible: a real comparison, not 1 vs 1


def test_ssim_uint8_matches_skimage_on_float_scale(rng: np.random.Generator) -> None:
    ref = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    expected = structural_similarity(ref / 255.0, img / 255.0, channel_axis=-1, data_range=1.0)
    assert ssim(ref, img) == pytest.approx(expected, rel=1e-12)


def test_ssim_gray_option_is_luma_ssim(rng: np.random.Generator) -> None:
    ref, img = _noisy_pair(rng, (40, 50, 3))
    weights = np.array([0.299, 0.587, 0.114])
    expected = structural_similarity(ref @ weights, img @ weights, data_range=1.0)
    assert ssim(ref, img, color="gray") == pytest.approx(expected, rel=1e-12)
    assert ssim(ref, img, color="gray") != pytest.approx(ssim(ref, img), abs=1e-4)


def test_ssim_gaussian_option_is_wang_settings(rng: np.random.Generator) -> None:
    ref, img = _noisy_pair(rng, (40, 50, 3))
    expected = structural_similarity(
        ref,
        img,
        channel_axis=-1,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(ref, img, window="gaussian") == pytest.approx(expected, rel=1e-12)


def test_ssim_gray_input(rng: np.random.Generator) -> None:
    ref, img = _noisy_pair(rng, (20, 20))
    assert ssim(ref, img) == pytest.approx(
        structural_similarity(ref, img, data_range=1.0), rel=1e-12
    )


def test_ssim_too_small_image_is_a_clear_error() -> None:
    img = np.zeros((6, 40, 3))
    with pytest.raises(ValueError, match="at least 7×7"):
        ssim(img, img)
    with pytest.raises(ValueError, match="at least 11×11"):
        ssim(np.zeros((10, 40, 3)), np.zeros((10, 40, 3)), window="gaussian")


@pytest.mark.parametrize(("option", "value"), [("color", "luma"), ("window", "box")])
def test_ssim_unknown_option(option: str, value: str) -> None:
    img = np.zeros((8, 8, 3))
    with pytest.raises(ValueError, match=option):
        ssim(img, img, **{option: value})


# --- CIEDE2000 ------------------------------------------------------------------------

# Sharma, Wu & Dalal (2005) test pairs that lie inside the sRGB gamut: (Lab1, Lab2, ΔE00).
SHARMA_IN_GAMUT = [
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((50.0, 2.5, 0.0), (50.0, 3.1736, 0.5854), 1.0000),
]


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA_IN_GAMUT)
def test_ciede2000_sharma_pairs_through_srgb(
    lab1: tuple[float, ...], lab2: tuple[float, ...], expected: float
) -> None:
    rgb1 = lab2rgb(np.array([[lab1]]))
    rgb2 = lab2rgb(np.array([[lab2]]))
    assert 0.0 < rgb1.min() and rgb1.max() < 1.0 and 0.0 < rgb2.min() and rgb2.max() < 1.0
    assert ciede2000(rgb1, rgb2) == pytest.approx(expected, abs=1e-4)


def test_ciede2000_identical_is_zero_and_mean_of_map() -> None:
    rng = np.random.default_rng(3)
    img = rng.random((6, 7, 3))
    assert ciede2000(img, img) == 0.0
    other = rng.random((6, 7, 3))
    assert ciede2000(img, other) == pytest.approx(float(ciede2000_map(img, other).mean()))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8, np.uint16])
def test_ciede2000_map_matches_skimage(rng: np.random.Generator, dtype: type) -> None:
    shape = (23, 31, 3)
    if np.dtype(dtype).kind == "u":
        top = np.iinfo(dtype).max
        ref = rng.integers(0, top + 1, shape).astype(dtype)
        img = rng.integers(0, top + 1, shape).astype(dtype)
        ref64, img64 = ref / float(top), img / float(top)
    else:
        ref = rng.random(shape).astype(dtype)
        img = rng.random(shape).astype(dtype)
        ref64, img64 = ref.astype(np.float64), img.astype(np.float64)
    expected = deltaE_ciede2000(rgb2lab(ref64), rgb2lab(img64))
    np.testing.assert_allclose(ciede2000_map(ref, img), expected, rtol=1e-9, atol=1e-9)


def test_ciede2000_map_hue_edge_cases_match_skimage() -> None:
    # gray pixels (zero chroma), hues straddling 0/360°, black and white, and a
    # strided, read-only view as input
    rng = np.random.default_rng(4)
    gray = np.repeat(rng.random((12, 12, 1)), 3, axis=2)
    colours = rng.random((12, 12, 3))
    colours[0, :4] = [[1, 0, 0.01], [1, 0.01, 0], [0, 0, 0], [1, 1, 1]]
    gray[0, :4] = [[1, 0.01, 0], [1, 0, 0.01], [1, 1, 1], [0, 0, 0]]
    view = np.concatenate([colours, colours], axis=1)[:, ::2]
    view.setflags(write=False)
    for a, b in [(gray, colours), (colours, gray), (gray, gray[::-1]), (view, gray)]:
        expected = deltaE_ciede2000(rgb2lab(a), rgb2lab(b))
        np.testing.assert_allclose(ciede2000_map(a, b), expected, rtol=1e-9, atol=1e-9)


def test_ciede2000_needs_rgb() -> None:
    with pytest.raises(ValueError, match="RGB"):
        ciede2000(np.zeros((4, 4)), np.zeros((4, 4)))


# --- evaluate / Scorer ----------------------------------------------------------------


def test_evaluate_identical() -> None:
    img = np.full((9, 9, 3), 0.4)
    assert evaluate(img, img) == Scores(psnr=math.inf, ssim=1.0, ciede2000=0.0)


def test_scorer_matches_separate_metrics(rng: np.random.Generator) -> None:
    ref = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    scorer = Scorer(ref)
    assert scorer.shape == (30, 40, 3)
    for _ in range(2):
        img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
        scores = scorer(img)
        assert scores.psnr == pytest.approx(psnr(ref, img), rel=1e-12)
        assert scores.ssim == pytest.approx(ssim(ref, img), rel=1e-12)
        assert scores.ciede2000 == pytest.approx(ciede2000(ref, img), rel=1e-12)


@pytest.mark.parametrize("shape", [(7, 7, 3), (9, 31, 3), (40, 13, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_scorer_ssim_equals_skimage(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: type
) -> None:
    if np.dtype(dtype).kind == "u":
        top = np.iinfo(dtype).max
        ref = rng.integers(0, top + 1, shape).astype(dtype)
        img = rng.integers(0, top + 1, shape).astype(dtype)
        ref64, img64 = ref / float(top), img / float(top)
    else:
        ref = rng.random(shape).astype(dtype)
        img = np.clip(ref + 0.05 * rng.standard_normal(shape), 0, 1).astype(dtype)
        ref64, img64 = ref.astype(np.float64), img.astype(np.float64)
    expected = structural_similarity(ref64, img64, channel_axis=-1, data_range=1.0)
    assert Scorer(ref)(img).ssim == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_scorer_ssim_flat_and_opposite_images() -> None:
    black = np.zeros((12, 12, 3))
    white = np.ones((12, 12, 3))
    for a, b in [(black, white), (white, black), (black, black)]:
        expected = structural_similarity(a, b, channel_axis=-1, data_range=1.0)
        assert Scorer(a)(b).ssim == pytest.approx(expected, abs=1e-12)


def test_scorer_needs_a_7x7_rgb_reference() -> None:
    with pytest.raises(ValueError, match="at least 7×7"):
        Scorer(np.zeros((6, 9, 3)))
    with pytest.raises(ValueError, match="RGB"):
        Scorer(np.zeros((9, 9)))


# --- input checks ---------------------------------------------------------------------


@pytest.mark.parametrize("func", [psnr, ssim, ciede2000, evaluate])
def test_shape_mismatch_is_a_clear_error(func) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="same shape"):
        func(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))


@pytest.mark.parametrize("func", [psnr, ssim, ciede2000])
def test_bad_values_and_dtypes_are_rejected(func) -> None:  # type: ignore[no-untyped-def]
    good = np.zeros((8, 8, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        func(good, np.full((8, 8, 3), 1.5))
    with pytest.raises(ValueError, match="NaN"):
        func(np.full((8, 8, 3), np.nan), good)
    with pytest.raises(TypeError, match="dtype"):
        func(good.astype(np.int32), good)
