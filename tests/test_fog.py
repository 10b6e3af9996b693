"""Tests for dehaze.fog (FADE): every feature and D against a slow per-patch reference.

The reference below is written from the paper and the authors' MATLAB release as plainly
as possible: a 2-D Gaussian window through ``scipy.ndimage.correlate``, a true convolution
(``scipy.signal.convolve2d``, mode "full") cut to MATLAB's ``conv2(..., 'same')`` part,
scikit-image's HSV, ``np.unique`` histograms, an explicit loop over patches and an inverse
matrix per patch — none of the reshapes, anchored filters or batched solves of the fast
code. Float rounding of flat regions (see the module notes of dehaze.fog) is avoided by
the test images: none has a uniform non-black 7 × 7 neighbourhood.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import scipy.ndimage
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.color import rgb2hsv

import dehaze.metrics
from dehaze import fog
from dehaze.fog import (
    FADE_FEATURES,
    FadeModel,
    fog_density,
    fog_density_map,
    load_fade_model,
)

# --- the slow reference -----------------------------------------------------------------

MATLAB_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
CE_THRESHOLDS = (
    9.225496406318721e-4 * 255,
    8.969246659629488e-4 * 255,
    2.069284034165411e-4 * 255,
)


def ref_gray(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray of a uint8 image: weighted sum rounded half away from zero."""
    rgb = rgb.astype(np.float64)
    value = (
        MATLAB_RGB2GRAY[0] * rgb[..., 0]
        + MATLAB_RGB2GRAY[1] * rgb[..., 1]
        + MATLAB_RGB2GRAY[2] * rgb[..., 2]
    )
    return np.floor(value + 0.5)


def ref_mscn(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mu, sigma, MSCN with fspecial('gaussian', 7, 7/6) and imfilter(..., 'replicate')."""
    y, x = np.mgrid[-3:4, -3:4].astype(np.float64)
    window = np.exp(-(x**2 + y**2) / (2 * (7 / 6) ** 2))
    window /= window.sum()
    mu = scipy.ndimage.correlate(gray, window, mode="nearest")
    sigma = np.sqrt(np.abs(scipy.ndimage.correlate(gray * gray, window, mode="nearest") - mu**2))
    return mu, sigma, (gray - mu) / (sigma + 1)


def ref_border_rows(plane: np.ndarray) -> np.ndarray:
    """border_in along rows: rows 1..10 above, the last 10 below (cyclic if fewer than 10)."""
    n = plane.shape[0]
    top = [plane[k % n] for k in range(10)]
    bottom = [plane[(n - 10 + k) % n] for k in range(10)]
    return np.vstack(top + [plane] + bottom)


def ref_ce_kernel() -> np.ndarray:
    sigma = 3.25
    x = np.arange(-3 * sigma, 3 * sigma + 1e-9, 1.0)  # MATLAB -9.75:1:9.75
    assert x.size == 20 and x[-1] == 9.25
    gauss = np.exp(x**2 / (-2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    gauss = gauss / gauss.sum()
    kernel = (x**2 / sigma**4 - 1 / sigma**2) * gauss
    kernel = kernel - kernel.sum() / x.size
    return kernel / np.sum(0.5 * x * x * kernel)


def matlab_conv2_same(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB conv2(A, B, 'same'): the full convolution from index floor(size(B)/2)."""
    full = scipy.signal.convolve2d(plane, kernel, mode="full")
    r0, c0 = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[r0 : r0 + plane.shape[0], c0 : c0 + plane.shape[1]]


def ref_contrast_energy(channel: np.ndarray, threshold: float) -> np.ndarray:
    kernel = ref_ce_kernel()
    padded = ref_border_rows(ref_border_rows(channel).T).T  # rows, then columns
    cx = matlab_conv2_same(padded, kernel[None, :])
    cy = matlab_conv2_same(padded, kernel[:, None])
    c = np.sqrt(cx**2 + cy**2)[10:-10, 10:-10]
    cmax = c.max()
    with np.errstate(invalid="ignore"):
        r = c * cmax / (c + cmax * 0.1)
    out = np.zeros_like(c)
    keep = (r - threshold) > 1e-7  # NaN (a flat channel) compares False, as in MATLAB
    out[keep] = (r - threshold)[keep]
    return out


def ref_nanvar(values: np.ndarray) -> float:
    """MATLAB nanvar: sample variance of the non-NaN values; 0 for one, NaN for none."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan
    if values.size == 1:
        return 0.0
    return float(np.var(values, ddof=1))


def ref_entropy(levels: np.ndarray) -> float:
    _, counts = np.unique(levels.astype(np.uint8), return_counts=True)
    p = counts / levels.size
    return float(-np.sum(p * np.log2(p)))


def ref_features(rgb: np.ndarray) -> np.ndarray:
    """(H/8, W/8, 12) raw features of a uint8 image, patch by patch (crops to whole patches)."""
    rows, cols = rgb.shape[0] // 8, rgb.shape[1] // 8
    rgb = rgb[: rows * 8, : cols * 8]
    f = rgb.astype(np.float64)
    red, green, blue = f[..., 0], f[..., 1], f[..., 2]
    gray = ref_gray(rgb)
    mu, sigma, mscn = ref_mscn(gray)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = sigma / mu
    above = np.empty_like(mscn)
    for i in range(mscn.shape[0]):
        above[i] = mscn[i - 1]  # circshift(MSCN, [1 0]): row 0 pairs with the last row
    products = mscn * above
    ce = [
        ref_contrast_energy(0.299 * red + 0.587 * green + 0.114 * blue, CE_THRESHOLDS[0]),
        ref_contrast_energy(0.5 * red + 0.5 * green - blue, CE_THRESHOLDS[1]),
        ref_contrast_energy(red - green, CE_THRESHOLDS[2]),
    ]
    dark = np.minimum(np.minimum(red / 255, green / 255), blue / 255)
    saturation = rgb2hsv(rgb)[..., 1]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    out = np.empty((rows, cols, 12))
    for i in range(rows):
        for j in range(cols):
            block = (slice(8 * i, 8 * i + 8), slice(8 * j, 8 * j + 8))
            prod = products[block].ravel()
            out[i, j] = [
                ref_nanvar(mscn[block].ravel()),
                ref_nanvar(np.where(prod < 0, np.nan, prod)),
                ref_nanvar(np.where(prod > 0, np.nan, prod)),
                sigma[block].mean(),
                cv[block].mean(),
                ce[0][block].mean(),
                ce[1][block].mean(),
                ce[2][block].mean(),
                ref_entropy(gray[block]),
                dark[block].mean(),
                saturation[block].mean(),
                math.sqrt(np.std(rg[block], ddof=1) ** 2 + np.std(yb[block], ddof=1) ** 2)
                + 0.3 * math.sqrt(rg[block].mean() ** 2 + yb[block].mean() ** 2),
            ]
    return out


def ref_distances(features: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Distance of each patch to one model, NaN where a feature is undefined."""
    rows, cols, _ = features.shape
    out = np.full((rows, cols), np.nan)
    for i in range(rows):
        for j in range(cols):
            f = np.log(1 + features[i, j])
            if not np.all(np.isfinite(f)):
                continue
            own = np.var(f, ddof=1)
            pooled = (cov + own * np.ones((12, 12))) / 2
            d = mean - f
            out[i, j] = math.sqrt(d @ np.linalg.inv(pooled) @ d)
    return out


def ref_fade(rgb: np.ndarray, model: FadeModel) -> tuple[float, np.ndarray]:
    """D and the density map of a uint8 image scored as it is (no resizing)."""
    features = ref_features(rgb)
    df = ref_distances(features, model.fogfree_mean, model.fogfree_cov)
    dff = ref_distances(features, model.foggy_mean, model.foggy_cov)
    return float(np.nanmean(df) / (np.nanmean(dff) + 1)), df / (dff + 1)


# --- test images ------------------------------------------------------------------------

SIZES = [(8, 8), (8, 24), (16, 16), (23, 37), (40, 33), (64, 48), (31, 80)]


def random_image(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)


def structured_image(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    """Hazy-looking images with structure; mild noise keeps every neighbourhood textured."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == "gradient":
        base = np.stack([0.2 + 0.6 * x / w, 0.3 + 0.5 * y / h, 0.9 - 0.5 * x / w], axis=-1)
    elif kind == "stripes":
        base = 0.5 + 0.4 * np.sin(x[..., None] / 2.5 + np.array([0.0, 1.0, 2.0]))
    elif kind == "blocks":
        cells = rng.random((h // 5 + 1, w // 5 + 1, 3))
        base = cells[(y // 5).astype(int), (x // 5).astype(int)]
    elif kind == "hazy":
        scene = rng.random((h, w, 3))
        t = np.exp(-2.0 * y / h)[..., None]
        base = scene * t + 0.85 * (1 - t)
    else:  # pragma: no cover
        raise AssertionError(kind)
    noisy = 255 * base + rng.normal(0.0, 3.0, base.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def black_square_image(rng: np.random.Generator) -> np.ndarray:
    """Random image with a black 20 × 20 square: patches there have σ/μ = 0/0 (undefined)."""
    img = random_image(rng, (48, 56))
    img[10:30, 14:34] = 0
    return img


def synthetic_model(seed: int = 3) -> FadeModel:
    """Gaussian models with random means and well-conditioned random covariances."""
    rng = np.random.default_rng(seed)

    def spd() -> np.ndarray:
        a = rng.normal(size=(12, 12))
        return a @ a.T / 12 + 0.05 * np.eye(12)

    return FadeModel(rng.random(12), spd(), rng.random(12) * 2, spd())


def image_cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(20260123)
    cases = [(f"random{h}x{w}", random_image(rng, (h, w))) for h, w in SIZES]
    for kind in ("gradient", "stripes", "blocks", "hazy"):
        for h, w in [(24, 32), (45, 61)]:
            cases.append((f"{kind}{h}x{w}", structured_image(rng, (h, w), kind)))
    cases.append(("black_square", black_square_image(rng)))
    return cases


CASES = image_cases()
CASE_IDS = [name for name, _ in CASES]


@pytest.fixture(scope="module")
def model() -> FadeModel:
    return synthetic_model()


# --- features against the reference -----------------------------------------------------


@pytest.mark.parametrize(("name", "image"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("feature", range(12), ids=FADE_FEATURES)
def test_each_feature_matches_the_reference(name, image, feature):
    rows, cols = image.shape[0] // 8 * 8, image.shape[1] // 8 * 8
    fast = fog._fog_features(np.ascontiguousarray(image[:rows, :cols]))
    expected = ref_features(image)
    assert fast.shape == expected.shape
    np.testing.assert_allclose(
        fast[..., feature], expected[..., feature], rtol=1e-9, atol=1e-11, equal_nan=True
    )


def test_features_are_not_trivially_equal():
    # The comparison above is only worth something if the features vary across patches.
    image = structured_image(np.random.default_rng(5), (48, 64), "hazy")
    features = fog._fog_features(image)
    spread = features.reshape(-1, 12).std(axis=0)
    assert np.all(spread > 0), dict(zip(FADE_FEATURES, spread, strict=True))


def test_black_square_has_undefined_patches_and_others_defined():
    image = black_square_image(np.random.default_rng(1))
    cv = fog._fog_features(image)[..., FADE_FEATURES.index("mean_coefficient_of_variation")]
    assert np.isnan(cv).any() and np.isfinite(cv).any()


def test_contrast_energy_kernel_is_matlabs():
    np.testing.assert_allclose(fog._ce_kernel(), ref_ce_kernel(), rtol=1e-14, atol=1e-16)
    assert fog._ce_kernel().size == 20


# --- D and the map against the reference -------------------------------------------------


@pytest.mark.parametrize(("name", "image"), CASES, ids=CASE_IDS)
def test_density_matches_the_reference(name, image, model):
    expected, expected_map = ref_fade(image, model)
    assert fog_density(image, model=model, max_side=None) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(
        fog_density_map(image, model=model, max_side=None),
        expected_map,
        rtol=1e-9,
        equal_nan=True,
    )


@pytest.mark.data
@pytest.mark.parametrize(("name", "image"), CASES[::3], ids=CASE_IDS[::3])
def test_density_with_the_authors_model_matches_the_reference(name, image, data_dir):
    authors = load_fade_model(data_dir / "fade")
    expected, _ = ref_fade(image, authors)
    assert fog_density(image, model=authors, max_side=None) == pytest.approx(expected, rel=1e-9)


def test_density_is_the_ratio_of_mean_distances_not_the_mean_ratio(model):
    image = structured_image(np.random.default_rng(2), (40, 48), "blocks")
    fogfree, foggy = fog._fade_maps(image, model, None)
    density = fog_density(image, model=model, max_side=None)
    assert density == pytest.approx(fogfree.mean() / (foggy.mean() + 1), rel=1e-12)
    assert density != pytest.approx(float(np.mean(fogfree / (foggy + 1))), rel=1e-6)


# --- properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_density_is_finite_and_non_negative(seed, model):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(8, 70)), int(rng.integers(8, 70)))
    kind = ("gradient", "stripes", "blocks", "hazy")[seed % 4]
    for image in (random_image(rng, shape), structured_image(rng, shape, kind)):
        density = fog_density(image, model=model)
        assert math.isfinite(density) and density >= 0.0
        density_map = fog_density_map(image, model=model)
        assert density_map.shape == (shape[0] // 8, shape[1] // 8)
        assert np.all(density_map[np.isfinite(density_map)] >= 0.0)


@st.composite
def small_rgb_images(draw):
    dtype = np.dtype(draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64])))
    shape = (draw(st.integers(8, 30)), draw(st.integers(8, 30)), 3)
    if dtype.kind == "u":
        elements = st.integers(0, int(np.iinfo(dtype).max))
    else:
        elements = st.floats(0.0, 1.0, width=dtype.itemsize * 8)
    return draw(arrays(dtype, shape, elements=elements))


@settings(deadline=None, max_examples=60)
@given(small_rgb_images())
def test_density_is_finite_or_explicitly_undefined(image):
    # Any valid image: a finite D ≥ 0, or the ValueError that says it is undefined (the
    # arrays hypothesis draws are often uniform). Never NaN, inf or another error.
    model = synthetic_model()
    density_map = fog_density_map(image, model=model)
    assert not np.any(np.isinf(density_map))
    assert np.all(density_map[np.isfinite(density_map)] >= 0.0)
    if np.any(np.isfinite(density_map)):
        density = fog_density(image, model=model)
        assert math.isfinite(density) and density >= 0.0
    else:
        with pytest.raises(ValueError, match="undefined"):
            fog_density(image, model=model)


def test_same_image_in_every_dtype_scores_the_same(model):
    image = structured_image(np.random.default_rng(7), (45, 61), "hazy")
    expected = fog_density(image, model=model)
    as_float = image / 255.0
    variants = {
        "float64": as_float,
        "float32": as_float.astype(np.float32),
        "uint16": image.astype(np.uint16) * 257,
        "non-contiguous": np.asfortranarray(image),
    }
    for name, variant in variants.items():
        assert fog_density(variant, model=model) == expected, name
    np.testing.assert_array_equal(
        fog_density_map(as_float, model=model), fog_density_map(image, model=model)
    )


def test_gray_is_scored_as_three_equal_channels(model):
    gray = structured_image(np.random.default_rng(14), (40, 48), "hazy")[..., 0]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    assert fog_density(gray, model=model) == fog_density(rgb, model=model)
    assert fog_density(gray / 255.0, model=model) == fog_density(rgb, model=model)


def test_float_input_is_rounded_to_8_bits(model):
    image = structured_image(np.random.default_rng(8), (32, 40), "gradient")
    nudged = (image + 0.4) / 255.0  # rounds back to the same 8-bit values
    assert fog_density(nudged, model=model) == fog_density(image, model=model)


def test_only_the_whole_patches_from_the_top_left_count(model):
    image = random_image(np.random.default_rng(9), (29, 42))
    assert fog_density(image, model=model) == fog_density(image[:24, :40], model=model)


def test_large_images_are_shrunk_by_area_interpolation(model):
    image = structured_image(np.random.default_rng(10), (300, 400), "hazy")
    small = cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA)
    assert fog_density(image, model=model, max_side=160) == fog_density(
        small, model=model, max_side=None
    )
    assert fog_density_map(image, model=model, max_side=160).shape == (15, 20)
    # at most max_side already: unchanged
    assert fog_density(small, model=model, max_side=160) == fog_density(
        small, model=model, max_side=None
    )
    # the default is the 640 px protocol
    assert fog_density(image, model=model) == fog_density(image, model=model, max_side=None)


def test_black_image_is_undefined():
    with pytest.raises(ValueError, match="fog density of image is undefined"):
        fog_density(np.zeros((32, 32, 3), np.uint8), model=synthetic_model())
    assert np.all(np.isnan(fog_density_map(np.zeros((32, 32, 3)), model=synthetic_model())))


def test_alternating_rows_have_only_negative_products_and_are_undefined(model):
    # Rows alternate black and white: every vertical MSCN product is negative, so feature 2
    # (the variance of the non-negative products) is the variance of an empty set.
    image = np.zeros((32, 40, 3), np.uint8)
    image[1::2] = 255
    features = fog._fog_features(image)
    assert np.all(np.isnan(features[..., 1])) and np.all(np.isfinite(features[..., 2]))
    with pytest.raises(ValueError, match="undefined"):
        fog_density(image, model=model)


# --- with the authors' model (shared data) -------------------------------------------------


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.data
@pytest.mark.parametrize("name", ["house.jpg", "forest_avenue.jpg", "manor.jpg"])
def test_synthetic_haze_raises_density_monotonically(name, data_dir):
    clear = read_rgb(data_dir / "real" / name) / 255.0
    light = np.array([0.9, 0.9, 0.92])
    densities = [fog_density(clear * t + light * (1 - t)) for t in (1.0, 0.8, 0.6, 0.4, 0.2)]
    assert all(b > a for a, b in zip(densities, densities[1:], strict=False)), densities


@pytest.mark.data
def test_nearly_flat_gray_reads_as_dense_fog(data_dir):
    rng = np.random.default_rng(12)
    flat = np.clip(200 + rng.integers(-1, 2, (64, 64, 3)), 0, 255).astype(np.uint8)
    clear = read_rgb(data_dir / "real" / "house.jpg")
    assert fog_density(flat) > 1.0 > fog_density(clear)


@pytest.mark.data
def test_clear_photo_scores_below_its_hazy_neighbours(data_dir):
    # house.jpg is among the clearest real photos; canon.jpg and hazy_city.jpg are dense haze.
    real = data_dir / "real"
    clear = fog_density(read_rgb(real / "house.jpg"))
    for hazy in ("canon.jpg", "hazy_city.jpg"):
        assert fog_density(read_rgb(real / hazy)) > 3 * clear


# --- the model loader ------------------------------------------------------------------------


def write_model(folder: Path, model: FadeModel) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        folder / "natural_fogfree_image_features_ps8.mat",
        {"mu_fogfreeparam": model.fogfree_mean[None, :], "cov_fogfreeparam": model.fogfree_cov},
    )
    scipy.io.savemat(
        folder / "natural_foggy_image_features_ps8.mat",
        {"mu_foggyparam": model.foggy_mean[None, :], "cov_foggyparam": model.foggy_cov},
    )


def test_loader_reads_the_mat_files_from_dehaze_data(tmp_path, monkeypatch, model):
    write_model(tmp_path / "fade", model)
    monkeypatch.setenv("DEHAZE_DATA", str(tmp_path))
    loaded = load_fade_model()
    assert loaded.source == (tmp_path / "fade").resolve()
    for field in ("fogfree_mean", "fogfree_cov", "foggy_mean", "foggy_cov"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(model, field))
    assert load_fade_model(tmp_path / "fade") is loaded  # cached
    image = random_image(np.random.default_rng(13), (24, 32))
    assert fog_density(image) == fog_density(image, model=model)


def test_missing_parameters_name_dehaze_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DEHAZE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="DEHAZE_DATA"):
        load_fade_model()
    with pytest.raises(FileNotFoundError, match="natural_foggy_image_features_ps8.mat"):
        fog_density(np.zeros((8, 8, 3), np.uint8))


def test_a_file_without_the_variables_is_rejected(tmp_path, model):
    write_model(tmp_path, model)
    scipy.io.savemat(tmp_path / "natural_foggy_image_features_ps8.mat", {"other": np.eye(2)})
    with pytest.raises(ValueError, match="mu_foggyparam"):
        load_fade_model(tmp_path)


@pytest.mark.data
def test_authors_model_is_read_as_stored(data_dir):
    model = load_fade_model(data_dir / "fade")
    raw = scipy.io.loadmat(data_dir / "fade" / "natural_fogfree_image_features_ps8.mat")
    np.testing.assert_array_equal(model.fogfree_mean, raw["mu_fogfreeparam"].ravel())
    np.testing.assert_array_equal(model.fogfree_cov, raw["cov_fogfreeparam"])
    assert not model.fogfree_cov.flags.writeable


def test_model_checks_its_arrays():
    good = synthetic_model()
    with pytest.raises(ValueError, match="fogfree_mean must have shape"):
        FadeModel(np.zeros(11), good.fogfree_cov, good.foggy_mean, good.foggy_cov)
    with pytest.raises(ValueError, match="foggy_cov must be positive definite"):
        FadeModel(good.fogfree_mean, good.fogfree_cov, good.foggy_mean, -np.eye(12))
    with pytest.raises(ValueError, match="fogfree_cov must be symmetric"):
        FadeModel(good.fogfree_mean, np.triu(np.ones((12, 12))), good.foggy_mean, np.eye(12))
    with pytest.raises(ValueError, match="NaN or inf"):
        FadeModel(np.full(12, np.nan), good.fogfree_cov, good.foggy_mean, good.foggy_cov)
    source = np.eye(12)
    made = FadeModel(np.zeros(12), source, np.zeros(12), np.eye(12))
    source[0, 0] = 5.0  # the model keeps its own read-only copy
    assert made.fogfree_cov[0, 0] == 1.0 and not made.fogfree_cov.flags.writeable


# --- input checks -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7, 20, 3), (20, 7, 3), (1, 1, 3)])
def test_images_smaller_than_a_patch_are_rejected(shape, model):
    with pytest.raises(ValueError, match=r"image is .*at least 8×8"):
        fog_density(np.zeros(shape, np.uint8), model=model)


def test_shrinking_below_a_patch_is_rejected(model):
    with pytest.raises(ValueError, match="max_side=64"):
        fog_density(np.zeros((10, 400, 3), np.uint8), model=model, max_side=64)


def test_bad_arguments_are_rejected(model):
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="channels"):
        fog_density(np.zeros((16, 16, 4), np.uint8), model=model)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fog_density(np.full((16, 16, 3), 2.0), model=model)
    with pytest.raises(TypeError, match="dtype"):
        fog_density(img.astype(np.int32), model=model)
    with pytest.raises(ValueError, match="max_side"):
        fog_density(img, model=model, max_side=4)
    with pytest.raises(TypeError, match="max_side"):
        fog_density(img, model=model, max_side=64.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model"):
        fog_density(img, model="authors")  # type: ignore[arg-type]


def test_metrics_reexports_fog_density():
    assert dehaze.metrics.fog_density is fog_density
    assert "fog_density" in dehaze.metrics.__all__


def test_the_default_model_folder_follows_dehaze_data(monkeypatch, tmp_path):
    monkeypatch.setenv("DEHAZE_DATA", os.fspath(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        load_fade_model()
