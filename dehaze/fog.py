"""Perceptual fog density without a reference image: FADE (Choi, You & Bovik, 2015).

FADE describes every 8 × 8 patch of an 8-bit RGB image by twelve "fog-aware" statistics,
maps them by ``log(1 + f)`` and measures a Mahalanobis-like distance from the patch to two
multivariate Gaussian models fitted by the authors: one of fog-free natural images (``Df``)
and one of foggy images (``Dff``). The fog density is

    D = mean(Df) / (mean(Dff) + 1)        (lower = less fog)

This module is written from the paper [1]_ and the description of the authors' MATLAB
release (``FADE.m``, ``CE.m``); the numbers it reports are those of that release, up to
floating-point rounding, on the same 8-bit pixels.

**The model parameters are not shipped with this package.** They are third-party data
(``natural_fogfree_image_features_ps8.mat`` and ``natural_foggy_image_features_ps8.mat``
from the authors' release, © 2015 The University of Texas at Austin, distributed by the
Laboratory for Image and Video Engineering (LIVE, http://live.ece.utexas.edu) under a
notice that must accompany every copy of the files). :func:`load_fade_model` reads them
from ``$DEHAZE_DATA/fade/``; whoever copies them there must keep the authors' notice beside
them, and publications using FADE scores should cite [1]_.

The twelve features of a patch, in the order of the models
----------------------------------------------------------
Gray ``I`` is MATLAB ``rgb2gray`` of the 8-bit image (weights 0.298936021293775,
0.587043074451121, 0.114020904255103, rounded to an integer); ``μ`` and ``σ`` are its local
mean and standard deviation under a 7 × 7 Gaussian window (σ = 7/6, replicated border);
MSCN = (I − μ) / (σ + 1).

1. sample variance of the MSCN coefficients;
2. sample variance of the vertical products MSCN(i, j) · MSCN(i − 1, j) that are ≥ 0
   (the row above row 0 is the last row: a circular shift);
3. the same for the products that are ≤ 0;
4. mean of σ;
5. mean of the coefficient of variation σ / μ;
6.–8. mean perceptual contrast energy of the gray (0.299 R + 0.587 G + 0.114 B),
   yellow-blue (0.5 R + 0.5 G − B) and red-green (R − G) channels (Groen et al. 2012 [2]_:
   second-derivative-of-Gaussian filters, σ = 3.25, along x and y, gain control with
   semi-saturation 0.1 of the image's maximum, minus a noise threshold);
9. entropy (bits) of the patch's 8-bit gray levels;
10. mean dark channel min(R, G, B) / 255, pixel-wise;
11. mean HSV saturation (max − min) / max;
12. colourfulness sqrt(s_rg² + s_yb²) + 0.3 · sqrt(m_rg² + m_yb²) of rg = R − G,
    yb = (R + G)/2 − B (sample standard deviations s, means m).

The distance of a patch with features f (after ``log(1 + f)``) to a model (m, Σ) is
``sqrt((m − f) C⁻¹ (m − f)ᵀ)`` with ``C = (Σ + v · 1 1ᵀ) / 2``, where v is the sample
variance of the patch's own twelve values (the release averages the model covariance with a
matrix filled with v).

Undefined patches
-----------------
As in the release, a patch whose features are undefined is left out of the means: one
that contains a pixel whose 7 × 7 gray neighbourhood is entirely 0 (σ / μ = 0 / 0), or
whose vertical MSCN products are all of one strict sign (feature 2 or 3 is the variance of
an empty set). :func:`fog_density_map` reports those patches as NaN; :func:`fog_density`
raises ``ValueError`` if no patch is defined.

Flat regions follow the release's arithmetic, rounding included. Where the 7 × 7 gray
neighbourhood is uniform, σ² = E[I²] − μ² is rounding noise and I − μ a residue of one
sign (the normalised window does not sum to exactly 1 in floating point), so the products
inside a flat area are tiny positive numbers — or exact zeros at the grey levels where
the residue vanishes. A patch lying wholly in a flat area therefore has no negative
product and is left out at most grey levels, and a product of a flat pixel with a
textured one is counted as positive or negative by that residue's sign. Which levels
these are depends on the filter's summation order: a uniform 16 × 16 image is undefined
at 213 of the 256 levels in GNU Octave's run of the release and at 192 here (OpenCV's
separable filter; the two agree at 161 levels, among them 0 and 253–255). The same holds
wherever I − μ is zero in exact arithmetic (a neighbourhood symmetric about its centre,
such as a linear ramp). On the project's 41 real photos (≤ 640 px) scored by both this
module and GNU Octave 7.3 running the release, D agrees within 1e-10 on 16 photos, 1e-6
on 25, 1 % on 35, and differs by up to 6 % (lily.jpg) on the others; every patch that
differs contains such a pixel (|I − μ| < 1e-9). Means over the 41: 1.7463 here, 1.7447
in Octave; medians 1.3454 both. (MATLAB's ``imfilter`` may round differently again; not
checked.)

Setting σ = 0 and MSCN = 0 exactly in flat neighbourhoods (the paper's definition) was
measured and rejected: it moves D further from the release's numbers — by up to 37 % on
photos with clipped sky or black borders (manor.jpg); mean over the 41 photos 1.784.

References
----------
.. [1] L. K. Choi, J. You and A. C. Bovik, "Referenceless prediction of perceptual fog
   density and perceptual image defogging", IEEE Transactions on Image Processing
   24(11):3888–3901, 2015. Model parameters and MATLAB release: LIVE Image Defogging
   Database, http://live.ece.utexas.edu/research/fog/fade_defade.html (copy used here:
   ``acoder-fin/FADE`` @ 55ba9ebaadea86e9c772a62ee98cea60371ddcd6; also in ``zhenglab/IQA``,
   ``Codes/OriginalVersion/FADE/``).
.. [2] I. I. A. Groen, S. Ghebreab, V. A. F. Lamme and H. S. Scholte, "Spatially pooled
   contrast responses predict neural and perceptual similarity of naturalistic image
   categories", PLoS Computational Biology 8(10), 2012.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._data import data_root
from dehaze._validate import check_image, check_radius

__all__ = [
    "FADE_FEATURES",
    "FadeModel",
    "fog_density",
    "fog_density_map",
    "load_fade_model",
]

#: Names of the twelve fog-aware features, in the order of the authors' models.
FADE_FEATURES = (
    "mscn_variance",
    "mscn_vertical_product_variance_nonnegative",
    "mscn_vertical_product_variance_nonpositive",
    "mean_local_std",
    "mean_coefficient_of_variation",
    "contrast_energy_gray",
    "contrast_energy_yellow_blue",
    "contrast_energy_red_green",
    "gray_entropy",
    "mean_dark_channel",
    "mean_saturation",
    "colorfulness",
)

#: Side of the square patches FADE describes (the models are fitted for 8 × 8).
PATCH_SIZE = 8

#: File names of the authors' two models in ``$DEHAZE_DATA/fade/``.
MODEL_FILES = (
    "natural_fogfree_image_features_ps8.mat",
    "natural_foggy_image_features_ps8.mat",
)

_N_FEATURES = len(FADE_FEATURES)

# MATLAB rgb2gray: the first row of the inverse of the NTSC (YIQ) matrix.
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
_CE_GRAY = (0.299, 0.587, 0.114)

# MSCN window: 7 × 7 Gaussian, σ = 7/6 (fspecial('gaussian', 7, 7/6)), separable.
_MSCN_RADIUS = 3
_MSCN_SIGMA = 7.0 / 6.0

# Contrast energy (CE.m): σ = 3.25 px, taps at -9.75:1:9.75 (20 of them), semi-saturation
# 0.1, Groen et al.'s empirical noise thresholds (on the 0-1 scale, times 255), a 10-pixel
# border copied (not mirrored) before filtering.
_CE_SIGMA = 3.25
_CE_SEMISATURATION = 0.1
_CE_THRESHOLDS = (
    9.225496406318721e-4 * 255.0,
    8.969246659629488e-4 * 255.0,
    2.069284034165411e-4 * 255.0,
)
_CE_BORDER = 10
# CE.m keeps R − t only where it exceeds this (not 0).
_CE_MARGIN = 1e-7


@dataclass(frozen=True, eq=False)
class FadeModel:
    """The two multivariate Gaussian models of FADE's fog-aware features.

    Attributes
    ----------
    fogfree_mean : (12,) float64 ndarray
        Mean of the ``log(1 + f)`` features over 8 × 8 patches of fog-free images.
    fogfree_cov : (12, 12) float64 ndarray
        Their covariance (symmetric positive definite).
    foggy_mean, foggy_cov : ndarray
        The same over foggy images.
    source : pathlib.Path or None
        Folder the parameters were read from (None when built by hand).

    Notes
    -----
    The arrays are stored read-only. The authors' parameters are loaded by
    :func:`load_fade_model`; building a model by hand is for tests and experiments.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.fog import FadeModel
    >>> model = FadeModel(np.zeros(12), np.eye(12), np.ones(12), np.eye(12))
    >>> model.foggy_mean.shape
    (12,)
    """

    fogfree_mean: NDArray[np.float64]
    fogfree_cov: NDArray[np.float64]
    foggy_mean: NDArray[np.float64]
    foggy_cov: NDArray[np.float64]
    source: Path | None = None

    def __post_init__(self) -> None:
        for prefix in ("fogfree", "foggy"):
            mean = _model_array(getattr(self, f"{prefix}_mean"), f"{prefix}_mean", (_N_FEATURES,))
            cov = _model_array(
                getattr(self, f"{prefix}_cov"), f"{prefix}_cov", (_N_FEATURES, _N_FEATURES)
            )
            if not np.allclose(cov, cov.T, rtol=1e-10, atol=0.0):
                raise ValueError(f"{prefix}_cov must be symmetric")
            try:
                np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ValueError(f"{prefix}_cov must be positive definite") from None
            object.__setattr__(self, f"{prefix}_mean", mean)
            object.__setattr__(self, f"{prefix}_cov", cov)


def _model_array(value: Any, name: str, shape: tuple[int, ...]) -> NDArray[np.float64]:
    arr = np.array(value, dtype=np.float64)  # a copy: the model owns its arrays
    if arr.size == math.prod(shape):
        arr = arr.reshape(shape)  # MATLAB stores the means as 1 × 12
    else:
        raise ValueError(f"{name} must have shape {shape}, got {np.shape(value)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    arr.setflags(write=False)
    return arr


def load_fade_model(folder: str | os.PathLike[str] | None = None) -> FadeModel:
    """Read the authors' FADE model parameters (cached per folder).

    Parameters
    ----------
    folder : path-like, optional
        Folder holding ``natural_fogfree_image_features_ps8.mat`` and
        ``natural_foggy_image_features_ps8.mat``. Default: ``$DEHAZE_DATA/fade`` (with
        ``DEHAZE_DATA`` unset, ``../shared/data/fade`` relative to the working directory).

    Returns
    -------
    FadeModel
        The fog-free and foggy means and covariances.

    Raises
    ------
    FileNotFoundError
        If either file is missing (the message names ``DEHAZE_DATA``).
    ValueError
        If a file lacks the expected variables or they are malformed.

    Notes
    -----
    The files are the authors' (© 2015 The University of Texas at Austin, LIVE); they are
    not part of this package. Anyone who copies them must keep the authors' copyright
    notice, in full, with the copy (see the module documentation for the source).

    Examples
    --------
    The examples need the parameters in ``$DEHAZE_DATA/fade`` and are not run as doctests.

    >>> from dehaze.fog import load_fade_model
    >>> load_fade_model().fogfree_cov.shape  # doctest: +SKIP
    (12, 12)
    """
    path = Path(folder) if folder is not None else data_root() / "fade"
    return _load_cached(str(path.resolve()))


@functools.lru_cache(maxsize=4)
def _load_cached(folder: str) -> FadeModel:
    path = Path(folder)
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        env = os.environ.get("DEHAZE_DATA")
        where = f"DEHAZE_DATA={env!r}" if env else "DEHAZE_DATA is not set (default ../shared/data)"
        raise FileNotFoundError(
            f"FADE model parameters not found: {', '.join(missing)} missing in {path} "
            f"({where}). The fog density needs the authors' released parameters: point "
            f"DEHAZE_DATA at the data folder whose fade/ subfolder holds them, or pass "
            f"load_fade_model(folder) / model=..."
        )
    from scipy.io import loadmat

    arrays: dict[str, Any] = {}
    for name, prefix in zip(MODEL_FILES, ("fogfree", "foggy"), strict=True):
        content = loadmat(path / name)
        for kind in ("mu", "cov"):
            key = f"{kind}_{prefix}param"
            if key not in content:
                raise ValueError(f"{path / name} has no variable {key!r}")
            arrays[f"{prefix}_{'mean' if kind == 'mu' else 'cov'}"] = content[key]
    return FadeModel(source=path, **arrays)


# --- input ----------------------------------------------------------------------------


def _to_8bit(image: NDArray[Any]) -> NDArray[np.uint8]:
    """Round a checked RGB image to 8 bits, as FADE is defined on (half up)."""
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype.kind == "u":
        scaled = image.astype(np.float64) * (255.0 / float(np.iinfo(image.dtype).max))
    else:
        scaled = np.multiply(image, 255.0, dtype=image.dtype)
    scaled += 0.5
    np.floor(scaled, out=scaled)
    return scaled.astype(np.uint8)


def _prepare(image: ArrayLike, max_side: int | None) -> NDArray[np.uint8]:
    """Check, quantise to 8 bits, shrink to ``max_side`` (area) and crop to whole patches."""
    arr = check_image(image, "image")
    if arr.ndim == 2:  # gray: the RGB image with three equal channels
        arr = np.repeat(arr[:, :, np.newaxis], 3, axis=2)
    height, width = arr.shape[:2]
    if min(height, width) < PATCH_SIZE:
        raise ValueError(
            f"image is {height}×{width}; FADE needs at least {PATCH_SIZE}×{PATCH_SIZE} pixels "
            f"(one {PATCH_SIZE}×{PATCH_SIZE} patch)"
        )
    if max_side is not None:
        max_side = check_radius(max_side, "max_side", minimum=PATCH_SIZE)
    rgb = _to_8bit(arr)
    if max_side is not None and max(height, width) > max_side:
        scale = max_side / max(height, width)
        new_h = max(1, math.floor(height * scale + 0.5))
        new_w = max(1, math.floor(width * scale + 0.5))
        if min(new_h, new_w) < PATCH_SIZE:
            raise ValueError(
                f"image is {height}×{width}; shrunk to max_side={max_side} it would be "
                f"{new_h}×{new_w}, smaller than one {PATCH_SIZE}×{PATCH_SIZE} patch "
                f"(pass a larger max_side, or None)"
            )
        rgb = np.asarray(
            cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
    rows = (rgb.shape[0] // PATCH_SIZE) * PATCH_SIZE
    cols = (rgb.shape[1] // PATCH_SIZE) * PATCH_SIZE
    return np.ascontiguousarray(rgb[:rows, :cols])


# --- features -------------------------------------------------------------------------


def _patch_sum(plane: NDArray[np.float64]) -> NDArray[np.float64]:
    """(H, W) → (H/8, W/8): the sum of each non-overlapping 8 × 8 patch.

    Summed down the rows of each patch band, then across each patch's columns: both
    reductions run over contiguous memory, and no (H/8, W/8, 64) copy is made.
    """
    rows, cols = plane.shape[0] // PATCH_SIZE, plane.shape[1] // PATCH_SIZE
    by_rows = plane.reshape(rows, PATCH_SIZE, plane.shape[1]).sum(axis=1)
    total: NDArray[np.float64] = by_rows.reshape(rows, cols, PATCH_SIZE).sum(axis=2)
    return total


def _patch_mean(plane: NDArray[np.float64]) -> NDArray[np.float64]:
    return _patch_sum(plane) / float(PATCH_SIZE * PATCH_SIZE)


def _patch_variance(
    plane: NDArray[np.float64], keep: NDArray[np.bool_] | None = None
) -> NDArray[np.float64]:
    """Sample variance of each 8 × 8 patch's values (only those where ``keep``).

    MATLAB ``nanvar`` semantics: divide by n − 1, by 1 when n = 1, NaN when n = 0. Two
    passes (mean, then squared deviations): E[x²] − E[x]² would turn the variance of a
    nearly uniform patch of values ~255 into rounding noise.
    """
    rows, cols = plane.shape[0] // PATCH_SIZE, plane.shape[1] // PATCH_SIZE
    blocks = plane.reshape(rows, PATCH_SIZE, cols, PATCH_SIZE)
    if keep is None:
        mean = _patch_mean(plane)
        deviation = blocks - mean[:, None, :, None]
        squares = _patch_sum((deviation * deviation).reshape(plane.shape))
        return squares / float(PATCH_SIZE * PATCH_SIZE - 1)
    count = _patch_sum(keep.astype(np.float64))
    total = _patch_sum(np.where(keep, plane, 0.0))
    mean = np.divide(total, count, out=np.zeros(count.shape), where=count > 0.0)
    deviation = np.where(keep.reshape(blocks.shape), blocks - mean[:, None, :, None], 0.0).reshape(
        plane.shape
    )
    variance = _patch_sum(deviation * deviation) / np.maximum(count - 1.0, 1.0)
    variance[count == 0.0] = np.nan
    return variance


def _matlab_rgb2gray(
    red: NDArray[np.float64], green: NDArray[np.float64], blue: NDArray[np.float64]
) -> NDArray[np.float64]:
    gray = _RGB2GRAY[0] * red + _RGB2GRAY[1] * green + _RGB2GRAY[2] * blue
    return np.floor(gray + 0.5)  # MATLAB rounds half away from zero; values are ≥ 0


def _mscn_features(gray: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Features 1–5 from the gray image (integer levels as float64)."""
    x = np.arange(-_MSCN_RADIUS, _MSCN_RADIUS + 1, dtype=np.float64)
    window = np.exp(-(x * x) / (2.0 * _MSCN_SIGMA**2))
    window /= window.sum()

    def smooth(plane: NDArray[np.float64]) -> NDArray[np.float64]:
        out = cv2.sepFilter2D(plane, cv2.CV_64F, window, window, borderType=cv2.BORDER_REPLICATE)
        return np.asarray(out, dtype=np.float64)

    mu = smooth(gray)
    sigma = np.sqrt(np.abs(smooth(gray * gray) - mu * mu))
    mscn = (gray - mu) / (sigma + 1.0)
    cv = np.divide(sigma, mu, out=np.full(mu.shape, np.nan), where=mu != 0.0)

    products = mscn * np.roll(mscn, 1, axis=0)
    return [
        _patch_variance(mscn),
        _patch_variance(products, products >= 0.0),
        _patch_variance(products, products <= 0.0),
        _patch_mean(sigma),
        _patch_mean(cv),  # NaN (patch undefined) where μ = 0
    ]


@functools.lru_cache(maxsize=1)
def _ce_kernel() -> NDArray[np.float64]:
    """CE.m's 20-tap second-derivative-of-Gaussian kernel (taps at x = −9.75 … 9.25)."""
    sigma = _CE_SIGMA
    x = np.arange(20, dtype=np.float64) - 3.0 * sigma  # MATLAB -9.75:1:9.75 stops at 9.25
    gauss = np.exp(-(x * x) / (2.0 * sigma * sigma)) / (math.sqrt(2.0 * math.pi) * sigma)
    gauss /= gauss.sum()
    kernel = (x * x / sigma**4 - 1.0 / sigma**2) * gauss
    kernel -= kernel.sum() / kernel.size
    kernel /= np.sum(0.5 * x * x * kernel)
    kernel.setflags(write=False)
    return kernel


def _copy_border(plane: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """CE.m's border_in along one axis: the first 10 lines before, the last 10 after.

    The lines are copied in their order (not mirrored). For an axis shorter than 10 (only
    8 or 9 pixels; the release fails there) the lines are taken cyclically.
    """
    n = plane.shape[axis]
    head = np.arange(_CE_BORDER) % n
    tail = np.arange(n - _CE_BORDER, n) % n
    return np.concatenate(
        [np.take(plane, head, axis=axis), plane, np.take(plane, tail, axis=axis)], axis=axis
    )


def _contrast_energy(channel: NDArray[np.float64], threshold: float) -> NDArray[np.float64]:
    """Per-pixel contrast energy of one channel on the 0–255 scale (CE.m)."""
    # MATLAB conv2(P, k, 'same') with the 20-tap k, restricted to the unpadded pixels:
    # out[i] = Σ_m P[i + 1 + m] · k[19 − m] (P padded by 10), i.e. a correlation with the
    # reversed kernel anchored at its first tap, starting one sample into the padding.
    reversed_kernel = np.ascontiguousarray(_ce_kernel()[::-1])
    one = np.ones(1)
    rows, cols = channel.shape
    padded_x = _copy_border(channel, axis=1)
    padded_y = _copy_border(channel, axis=0)
    cx = cv2.sepFilter2D(
        padded_x, cv2.CV_64F, reversed_kernel, one, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT
    )[:, 1 : cols + 1]
    cy = cv2.sepFilter2D(
        padded_y, cv2.CV_64F, one, reversed_kernel, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT
    )[1 : rows + 1, :]
    contrast = np.sqrt(cx * cx + cy * cy)
    peak = float(contrast.max())
    if peak == 0.0:  # R = 0/0 in CE.m, and NaN − t > 1e-7 is false: no energy
        return np.zeros_like(contrast)
    response = contrast * peak / (contrast + _CE_SEMISATURATION * peak) - threshold
    return np.where(response > _CE_MARGIN, response, 0.0)


def _entropy(gray: NDArray[np.float64]) -> NDArray[np.float64]:
    """Entropy in bits of the 8-bit levels of each 8 × 8 patch (MATLAB ``entropy``).

    With counts c of the 256 levels in a patch of n = 64 pixels,
    −Σ (c/n) log2(c/n) = log2(n) − Σ c log2(c) / n, with c log2(c) from a table.
    """
    rows, cols = gray.shape[0] // PATCH_SIZE, gray.shape[1] // PATCH_SIZE
    n = PATCH_SIZE * PATCH_SIZE
    levels = gray.astype(np.intp).reshape(rows, PATCH_SIZE, cols, PATCH_SIZE)
    patch = np.arange(rows)[:, None, None, None] * cols + np.arange(cols)[None, None, :, None]
    histogram = np.bincount((patch * 256 + levels).ravel(), minlength=rows * cols * 256)
    entropy: NDArray[np.float64] = math.log2(n) - _c_log_c(n)[histogram.reshape(-1, 256)].sum(
        axis=1
    ) / float(n)
    return entropy.reshape(rows, cols)


@functools.lru_cache(maxsize=1)
def _c_log_c(n: int) -> NDArray[np.float64]:
    """Return the table of c · log2(c) for the counts c = 0 … n (0 for c = 0)."""
    counts = np.arange(n + 1, dtype=np.float64)
    table = counts * np.log2(np.maximum(counts, 1.0))
    table.setflags(write=False)
    return table


def _fog_features(rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Compute the twelve raw features (before ``log(1 + f)``) of every patch: (H/8, W/8, 12).

    ``rgb`` is an 8-bit image whose sides are multiples of 8.
    """
    red, green, blue = (np.ascontiguousarray(rgb[..., k], dtype=np.float64) for k in range(3))
    gray = _matlab_rgb2gray(red, green, blue)
    features = _mscn_features(gray)

    ce_gray = _CE_GRAY[0] * red + _CE_GRAY[1] * green + _CE_GRAY[2] * blue
    for channel, threshold in zip(
        (ce_gray, 0.5 * red + 0.5 * green - blue, red - green), _CE_THRESHOLDS, strict=True
    ):
        features.append(_patch_mean(_contrast_energy(channel, threshold)))

    features.append(_entropy(gray))

    brightest = np.maximum(np.maximum(red, green), blue)
    darkest = np.minimum(np.minimum(red, green), blue)
    features.append(_patch_mean(darkest / 255.0))
    saturation = np.divide(
        brightest - darkest, brightest, out=np.zeros_like(brightest), where=brightest > 0.0
    )
    features.append(_patch_mean(saturation))

    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = np.sqrt(_patch_variance(rg) + _patch_variance(yb))
    offset = np.sqrt(_patch_mean(rg) ** 2 + _patch_mean(yb) ** 2)
    features.append(spread + 0.3 * offset)
    return np.stack(features, axis=-1)


# --- distances ------------------------------------------------------------------------


def _distances(
    log_features: NDArray[np.float64], mean: NDArray[np.float64], cov: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Distance of each patch (rows of finite ``log(1 + f)``) to one Gaussian model.

    The pooled matrix of a patch is ``C = Σ/2 + (v/2) 1 1ᵀ`` (v: the variance of its own
    features), a rank-one update of one matrix shared by all patches, so by
    Sherman–Morrison ``dᵀ C⁻¹ d = dᵀ S d − c (1ᵀ S d)² / (1 + c 1ᵀ S 1)`` with
    ``S = (Σ/2)⁻¹`` and ``c = v/2``: one 12 × 12 inverse instead of one solve per patch.
    """
    diff = mean[None, :] - log_features
    half_variance = np.var(log_features, axis=1, ddof=1) / 2.0
    shared_inverse = np.linalg.inv(cov / 2.0)
    weighted = diff @ shared_inverse
    quadratic = np.einsum("ij,ij->i", weighted, diff)
    along_ones = weighted.sum(axis=1)  # 1ᵀ S d (S is symmetric)
    ones_norm = float(shared_inverse.sum())  # 1ᵀ S 1 > 0
    squared = quadratic - half_variance * along_ones**2 / (1.0 + half_variance * ones_norm)
    # C is positive definite, so squared ≥ 0 up to rounding (≈ 1e-16 · |diff|²).
    distance: NDArray[np.float64] = np.sqrt(np.maximum(squared, 0.0))
    return distance


def _fade_maps(
    image: ArrayLike, model: FadeModel | None, max_side: int | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-patch distances to the fog-free and to the foggy model (NaN: undefined)."""
    if model is not None and not isinstance(model, FadeModel):
        raise TypeError(f"model must be a FadeModel or None, got {type(model).__name__}")
    rgb = _prepare(image, max_side)
    if model is None:
        model = load_fade_model()
    features = _fog_features(rgb)
    shape = features.shape[:2]
    flat = features.reshape(-1, _N_FEATURES)
    defined = np.all(np.isfinite(flat), axis=1)
    log_features = np.log1p(flat[defined])
    fogfree = np.full(flat.shape[0], np.nan)
    foggy = np.full(flat.shape[0], np.nan)
    if log_features.shape[0]:
        fogfree[defined] = _distances(log_features, model.fogfree_mean, model.fogfree_cov)
        foggy[defined] = _distances(log_features, model.foggy_mean, model.foggy_cov)
    return fogfree.reshape(shape), foggy.reshape(shape)


def fog_density(
    image: ArrayLike, *, model: FadeModel | None = None, max_side: int | None = 640
) -> float:
    """Perceptual fog density D of an RGB image (FADE); lower means less fog.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        RGB image, at least 8 × 8; uint8, uint16, float32 or float64 (float in [0, 1]).
        A gray image is scored as the RGB image with three equal channels (its
        saturation, colourfulness and colour contrast are 0, so it reads as foggier
        than a colour photo of the same scene).
        FADE is defined on 8-bit values: other dtypes are scaled to 0–255 and rounded
        (half up), so an 8-bit image and the same image divided by 255 score the same.
    model : FadeModel, optional
        The fog-free and foggy feature models. Default: the authors' parameters, read once
        by :func:`load_fade_model` from ``$DEHAZE_DATA/fade``.
    max_side : int or None, optional
        Images whose longer side exceeds this are first shrunk to it (aspect kept, OpenCV
        area interpolation of the 8-bit image). Default 640: the protocol of this
        project's tables — FADE depends on scale (its patches and windows are in pixels),
        so scores are comparable only at one size. ``None`` scores the image as it is.

    Returns
    -------
    float
        ``D = Df / (Dff + 1)``, with Df and Dff the mean distances of the defined 8 × 8
        patches (the image cropped to whole patches from the top left) to the fog-free and
        foggy models. Finite and ≥ 0; typically ~0.2 for clear photos, > 1 for dense fog.

    Raises
    ------
    ValueError
        If the image is smaller than 8 × 8 (before or after shrinking), ``max_side`` is
        below 8, or no patch of the image has defined features (see the module notes).
    FileNotFoundError
        If ``model`` is None and the parameters are not under ``$DEHAZE_DATA/fade``.

    See Also
    --------
    fog_density_map : the per-patch densities.

    References
    ----------
    .. [1] L. K. Choi, J. You and A. C. Bovik, "Referenceless prediction of perceptual fog
       density and perceptual image defogging", IEEE TIP 24(11):3888–3901, 2015.

    Examples
    --------
    The examples need the parameters in ``$DEHAZE_DATA/fade`` and are not run as doctests.

    >>> import numpy as np
    >>> from dehaze.metrics import fog_density
    >>> y, x = np.mgrid[0:64, 0:64] / 63.0
    >>> scene = np.stack([x, y, 0.5 * (x + y)], axis=-1)
    >>> hazy = 0.3 * scene + 0.7 * 0.9  # t = 0.3, A = 0.9
    >>> fog_density(hazy) > fog_density(scene)  # doctest: +SKIP
    True
    """
    fogfree, foggy = _fade_maps(image, model, max_side)
    defined = np.isfinite(fogfree)
    if not np.any(defined):
        raise ValueError(
            "the fog density of image is undefined: no 8×8 patch has defined features "
            "(every patch touches a 7×7 region that is black in gray, or has vertical MSCN "
            "products of one strict sign only)"
        )
    df = float(np.mean(fogfree[defined]))
    dff = float(np.mean(foggy[defined]))
    return df / (dff + 1.0)


def fog_density_map(
    image: ArrayLike, *, model: FadeModel | None = None, max_side: int | None = 640
) -> NDArray[np.float64]:
    """Per-patch fog density ``Df / (Dff + 1)`` of each 8 × 8 patch (FADE's density map).

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        RGB or gray image, at least 8 × 8 (see :func:`fog_density`).
    model : FadeModel, optional
        Default: the authors' parameters from ``$DEHAZE_DATA/fade``.
    max_side : int or None, optional
        Shrink the image first so its longer side is at most this (default 640).

    Returns
    -------
    (h // 8, w // 8) float64 ndarray
        The density of each patch of the (shrunk) image, ``h × w``; NaN for patches whose
        features are undefined (see the module notes). Not averaged the same way as
        :func:`fog_density` (which divides the mean distances, not the per-patch ratios).

    Examples
    --------
    The examples need the parameters in ``$DEHAZE_DATA/fade`` and are not run as doctests.

    >>> import numpy as np
    >>> from dehaze.fog import fog_density_map
    >>> img = np.random.default_rng(0).random((40, 72, 3))
    >>> fog_density_map(img).shape  # doctest: +SKIP
    (5, 9)
    """
    fogfree, foggy = _fade_maps(image, model, max_side)
    return fogfree / (foggy + 1.0)
