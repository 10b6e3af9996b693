"""Full-reference image-quality metrics with one pinned protocol.

Published dehazing tables disagree by up to 0.04 SSIM on the same outputs because they
compute the metrics differently (gray or RGB, uniform or Gaussian window, 8-bit or float,
MATLAB or Python). Every number this package reports uses one protocol, pinned here:

* **Inputs**: both images are converted to float64 in [0, 1] (integer images divided by
  their dtype's maximum: 255 for uint8, 65535 for uint16; float images must already lie in
  [0, 1]). The two images may have different dtypes but must have the same shape.
* **PSNR**: ``10 · log10(1 / MSE)`` over all pixels and channels (data range 1), i.e.
  ``skimage.metrics.peak_signal_noise_ratio(reference, image, data_range=1)``. Identical
  images give ``inf`` (returned as ``math.inf``, without a divide-by-zero warning).
* **SSIM**: ``skimage.metrics.structural_similarity(reference, image, channel_axis=-1,
  data_range=1)`` with scikit-image's defaults: a 7 × 7 uniform window, K1 = 0.01,
  K2 = 0.03, sample covariance, no downsampling; for RGB the mean of the three per-channel
  SSIMs. Alternatives found in the literature are options: ``color="gray"`` (SSIM of the
  Rec. 601 luma 0.299 R + 0.587 G + 0.114 B, as MATLAB ``ssim(rgb2gray(...))`` computes)
  and ``window="gaussian"`` (11 × 11 Gaussian window with σ = 1.5 and population
  covariance, the settings of Wang et al. 2004 and of MATLAB ``ssim``).
* **CIEDE2000**: the mean over pixels of ΔE00 (kL = kC = kH = 1) between the CIELAB values
  of the two images, both read as sRGB under D65 with the 2° observer — the same numbers as
  ``skimage.color.deltaE_ciede2000(rgb2lab(reference), rgb2lab(image)).mean()``, computed
  by a fused Numba kernel (about 15× faster; tests compare it with scikit-image). Lower is
  better; 0 for identical images.
* **Dataset scores** are means over image pairs of the per-pair values (not the PSNR of a
  pooled MSE).

References
----------
.. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment:
   from error visibility to structural similarity", IEEE TIP 13(4), 2004.
.. [2] G. Sharma, W. Wu and E. N. Dalal, "The CIEDE2000 color-difference formula:
   implementation notes, supplementary test data, and mathematical observations",
   Color Research & Application 30(1), 2005.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._kernels import metrics as _km
from dehaze._validate import check_choice, check_image
from dehaze.fog import fog_density
from dehaze.guided import GRAY_WEIGHTS

__all__ = [
    "SSIM_COLORS",
    "SSIM_WINDOWS",
    "Scorer",
    "Scores",
    "ciede2000",
    "ciede2000_map",
    "evaluate",
    "fog_density",
    "psnr",
    "ssim",
]

#: Accepted values of ``ssim(..., color=...)``.
SSIM_COLORS = ("rgb", "gray")
#: Accepted values of ``ssim(..., window=...)``.
SSIM_WINDOWS = ("uniform", "gaussian")

#: Side of the SSIM window for each ``window`` choice (scikit-image's sizes).
_SSIM_WINDOW_SIDE = {"uniform": 7, "gaussian": 11}


def _as_float64(image: ArrayLike, name: str, *, allow_gray: bool = True) -> NDArray[np.float64]:
    """Validate an image and return it as float64 in [0, 1] (integers scaled in float64)."""
    arr = check_image(image, name, allow_gray=allow_gray)
    if arr.dtype.kind == "u":
        out: NDArray[np.float64] = arr.astype(np.float64) / float(np.iinfo(arr.dtype).max)
        return out
    return np.ascontiguousarray(arr, dtype=np.float64)


def _pair(
    reference: ArrayLike, image: ArrayLike, *, allow_gray: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ref = _as_float64(reference, "reference", allow_gray=allow_gray)
    img = _as_float64(image, "image", allow_gray=allow_gray)
    _check_same_shape(ref, img)
    return ref, img


def psnr(reference: ArrayLike, image: ArrayLike) -> float:
    """Peak signal-to-noise ratio in dB, on the [0, 1] scale (data range 1).

    Parameters
    ----------
    reference : (H, W, 3) or (H, W) ndarray
        The ground-truth (clear) image; uint8, uint16, float32 or float64 (float in [0, 1]).
    image : ndarray
        The image to score, same shape as ``reference``; any supported dtype.

    Returns
    -------
    float
        ``10 · log10(1 / MSE)``; ``math.inf`` when the images are identical.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.metrics import psnr
    >>> a = np.zeros((4, 4)); b = np.full((4, 4), 0.1)
    >>> round(psnr(a, b), 6)  # MSE = 0.01
    20.0
    >>> psnr(a, a)
    inf
    """
    ref, img = _pair(reference, image)
    mse = float(np.mean(np.square(ref - img)))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(1.0 / mse)


def ssim(
    reference: ArrayLike,
    image: ArrayLike,
    *,
    color: str = "rgb",
    window: str = "uniform",
) -> float:
    """Structural similarity, by default the pinned protocol (scikit-image on RGB).

    Parameters
    ----------
    reference : (H, W, 3) or (H, W) ndarray
        The ground-truth image; uint8, uint16, float32 or float64 (float in [0, 1]).
    image : ndarray
        The image to score, same shape as ``reference``.
    color : {"rgb", "gray"}, optional
        ``"rgb"`` (default, the pinned protocol): mean of the per-channel SSIMs
        (``channel_axis=-1``). ``"gray"``: SSIM of the Rec. 601 luma of both images. Gray
        (H×W) inputs are scored as they are with either choice.
    window : {"uniform", "gaussian"}, optional
        ``"uniform"`` (default, the pinned protocol): scikit-image's 7 × 7 uniform window
        with sample covariance. ``"gaussian"``: 11 × 11 Gaussian window, σ = 1.5,
        population covariance (Wang et al. 2004; MATLAB ``ssim``).

    Returns
    -------
    float
        SSIM in [-1, 1]; 1 for identical images.

    Raises
    ------
    ValueError
        If the shapes differ, an option is unknown, or the image is smaller than the
        window (7 × 7 uniform, 11 × 11 Gaussian).

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.metrics import ssim
    >>> img = np.random.default_rng(0).random((16, 16, 3))
    >>> ssim(img, img)
    1.0
    """
    check_choice(color, "color", SSIM_COLORS)
    check_choice(window, "window", SSIM_WINDOWS)
    ref, img = _pair(reference, image)
    side = _SSIM_WINDOW_SIDE[window]
    if min(ref.shape[:2]) < side:
        raise ValueError(
            f"SSIM with the {window} window needs images of at least {side}×{side} pixels, "
            f"got {ref.shape[0]}×{ref.shape[1]}"
        )
    if color == "gray" and ref.ndim == 3:
        weights = np.asarray(GRAY_WEIGHTS, dtype=np.float64)
        ref = ref @ weights
        img = img @ weights
    from skimage.metrics import structural_similarity

    options: dict[str, Any] = {"data_range": 1.0}
    if ref.ndim == 3:
        options["channel_axis"] = -1
    if window == "gaussian":
        options.update(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    value = structural_similarity(ref, img, **options)
    return float(value)


def _srgb_to_linear(image: NDArray[Any]) -> NDArray[np.float64]:
    """Linearise a checked sRGB image: a lookup table for integers, the formula for floats."""
    if image.dtype.kind == "u":
        out: NDArray[np.float64] = _linear_table(image.dtype.itemsize)[image]
        return out
    return _linearize(np.asarray(image, dtype=np.float64))


@functools.lru_cache(maxsize=2)
def _linear_table(itemsize: int) -> NDArray[np.float64]:
    """Linear-light value of every code of an unsigned integer type of ``itemsize`` bytes."""
    top = float(2 ** (8 * itemsize) - 1)
    table = _linearize(np.arange(int(top) + 1, dtype=np.float64) / top)
    table.setflags(write=False)
    return table


def _linearize(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Decode sRGB values in [0, 1] to linear light, as ``skimage.color.rgb2xyz`` does."""
    out: NDArray[np.float64] = np.where(
        values > 0.04045, ((values + 0.055) / 1.055) ** 2.4, values / 12.92
    )
    return out


def _lab(image: NDArray[Any]) -> NDArray[np.float64]:
    """CIELAB (D65, 2°) of a checked H×W×3 sRGB image of any supported dtype."""
    linear = np.ascontiguousarray(_srgb_to_linear(image))
    out = np.empty(linear.shape, dtype=np.float64)
    _km.linear_rgb_to_lab(linear, out)
    return out


def _delta_e(
    lab_reference: NDArray[np.float64], lab_image: NDArray[np.float64]
) -> NDArray[np.float64]:
    out = np.empty(lab_reference.shape[:2], dtype=np.float64)
    _km.ciede2000_lab(lab_reference, lab_image, out)
    return out


def _check_same_shape(ref: NDArray[Any], img: NDArray[Any]) -> None:
    if ref.shape != img.shape:
        raise ValueError(
            f"reference and image must have the same shape, got {ref.shape} and {img.shape}"
        )


def _checked_rgb_pair(reference: ArrayLike, image: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    ref = check_image(reference, "reference", allow_gray=False)
    img = check_image(image, "image", allow_gray=False)
    _check_same_shape(ref, img)
    return ref, img


def ciede2000_map(reference: ArrayLike, image: ArrayLike) -> NDArray[np.float64]:
    """Per-pixel CIEDE2000 colour difference ΔE00 of two sRGB images.

    Parameters
    ----------
    reference, image : (H, W, 3) ndarray
        RGB images of the same shape, read as sRGB (D65, 2° observer); uint8, uint16,
        float32 or float64 (float in [0, 1]).

    Returns
    -------
    (H, W) float64 ndarray
        ΔE00 with kL = kC = kH = 1, equal to ``skimage.color.deltaE_ciede2000(
        rgb2lab(reference), rgb2lab(image))`` (float64 inputs) to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.metrics import ciede2000_map
    >>> img = np.full((2, 3, 3), 0.5)
    >>> ciede2000_map(img, img).shape
    (2, 3)
    """
    ref, img = _checked_rgb_pair(reference, image)
    return _delta_e(_lab(ref), _lab(img))


def ciede2000(reference: ArrayLike, image: ArrayLike) -> float:
    """Mean CIEDE2000 colour difference ΔE00 over the pixels of two sRGB images.

    Parameters
    ----------
    reference, image : (H, W, 3) ndarray
        RGB images of the same shape (see :func:`ciede2000_map`).

    Returns
    -------
    float
        Mean ΔE00 ≥ 0 (lower is better; 0 for identical images).

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.metrics import ciede2000
    >>> gray = np.full((4, 4, 3), 0.5)
    >>> ciede2000(gray, gray)
    0.0
    """
    return float(np.mean(ciede2000_map(reference, image)))


@dataclass(frozen=True)
class Scores:
    """The three pinned metrics of one image against its reference.

    Attributes
    ----------
    psnr : float
        dB, higher is better (``inf`` for identical images).
    ssim : float
        Pinned-protocol SSIM, higher is better.
    ciede2000 : float
        Mean ΔE00, lower is better.
    """

    psnr: float
    ssim: float
    ciede2000: float


def _box7(image: NDArray[np.float64]) -> NDArray[np.float64]:
    """7 × 7 mean filter (interior values equal ``scipy.ndimage.uniform_filter``'s)."""
    filtered = cv2.boxFilter(image, -1, (7, 7), normalize=True, borderType=cv2.BORDER_REFLECT)
    return np.asarray(filtered, dtype=np.float64)


class Scorer:
    """Score many images against one reference with the pinned protocol.

    The reference's float form, its SSIM window statistics and its CIELAB values are
    computed once, so scoring several methods' outputs of the same hazy image costs less
    than calling :func:`evaluate` for each. SSIM is evaluated with the formula of
    ``skimage.metrics.structural_similarity`` (7 × 7 uniform window, sample covariance,
    K1 = 0.01, K2 = 0.03, mean over the interior that excludes the 3-pixel border, then
    over channels) using OpenCV box filters — 2–3× faster than calling scikit-image and
    equal to it to rounding (tests compare the two).

    Parameters
    ----------
    reference : (H, W, 3) ndarray
        The ground-truth RGB image, at least 7 × 7; uint8, uint16, float32 or float64
        (float in [0, 1]).

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.metrics import Scorer
    >>> clear = np.full((8, 8, 3), 0.25)
    >>> scorer = Scorer(clear)
    >>> scorer(clear).ssim
    1.0
    """

    def __init__(self, reference: ArrayLike) -> None:
        ref = check_image(reference, "reference", allow_gray=False)
        side = _SSIM_WINDOW_SIDE["uniform"]
        if min(ref.shape[:2]) < side:
            raise ValueError(
                f"SSIM needs images of at least {side}×{side} pixels, "
                f"got {ref.shape[0]}×{ref.shape[1]}"
            )
        self._reference = ref
        self._reference_float = _as_float64(ref, "reference")
        self._mean = _box7(self._reference_float)
        self._mean_sq = _box7(self._reference_float * self._reference_float)
        self._reference_lab = _lab(ref)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the reference image (H, W, 3)."""
        return tuple(self._reference.shape)

    def _ssim(self, img: NDArray[np.float64]) -> float:
        x, ux, uxx = self._reference_float, self._mean, self._mean_sq
        uy = _box7(img)
        uyy = _box7(img * img)
        uxy = _box7(x * img)
        cov_norm = 49.0 / 48.0  # sample covariance over the 7 × 7 window
        c1 = 0.01**2
        c2 = 0.03**2
        vx = cov_norm * (uxx - ux * ux)
        vy = cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        s_map = ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / (
            (ux * ux + uy * uy + c1) * (vx + vy + c2)
        )
        interior = s_map[3:-3, 3:-3]
        per_channel = [interior[..., c].mean(dtype=np.float64) for c in range(3)]
        return float(np.mean(per_channel))

    def __call__(self, image: ArrayLike) -> Scores:
        """Return the :class:`Scores` of ``image`` (same shape as the reference)."""
        _, img = _checked_rgb_pair(self._reference, image)
        img_float = _as_float64(img, "image")
        return Scores(
            psnr=psnr(self._reference_float, img_float),
            ssim=self._ssim(img_float),
            ciede2000=float(np.mean(_delta_e(self._reference_lab, _lab(img)))),
        )


def evaluate(reference: ArrayLike, image: ArrayLike) -> Scores:
    """Score ``image`` against ``reference`` with the pinned protocol (all three metrics).

    Parameters
    ----------
    reference, image : (H, W, 3) ndarray
        RGB images of the same shape; uint8, uint16, float32 or float64 (float in [0, 1]).

    Returns
    -------
    Scores
        PSNR, SSIM (RGB, uniform window) and mean CIEDE2000.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.metrics import evaluate
    >>> img = np.full((8, 8, 3), 0.25)
    >>> evaluate(img, img)
    Scores(psnr=inf, ssim=1.0, ciede2000=0.0)
    """
    return Scorer(reference)(image)
