"""Prototype of the default dehazer of issue 11: clears dense haze, leaves sky alone, scale-free.

``ClearHaze`` is a dark-channel pipeline (He, Sun & Tang 2009/2011) with three changes, each a
simple rule rather than a tuned switch:

1. **A fixed working resolution.** Everything that has a window — the dark channel, the
   signal measure, the guided-filter coefficients — runs on an area-downsampled copy whose
   short side is ``working_size`` pixels (never upsampled), so radii are in *working* pixels
   and mean the same fraction of the scene at every resolution. The transmission is brought
   back to full size with the fast guided filter's idea (He & Sun 2015): the linear
   coefficients (a, b) are computed at the working scale and applied to the full-resolution
   guide, so edges in t are as sharp as the full image.

2. **Amplification only where there is signal** (the sky-versus-dense-haze rule, local, no
   sky detector). Sky, bright walls and dense fog are all close to A, so the dark channel
   cannot tell them apart; what differs is whether the patch carries structure above the
   noise. Recovery amplifies the deviation from A by the gain 1/t; amplified noise, JPEG
   blocks and quantisation steps are what breaks sky (pink blocks, banding, casts from a
   tiny colour difference to A). The global noise level σ (estimated once, on the working
   image, with Immerkær's mask in the flattest tenth of the image, floored at 8-bit
   quantisation) and the local detail energy S(x) (RMS of a fine high-pass of the luma
   over a window) give a Wiener-like weight w = max(0, 1 − (k σ / S)²) (k = ``snr_margin``),
   and the gain becomes 1 + w (1/t − 1): full dehazing where the structure is well above the
   noise (dense haze over a city), none where the patch is flat at the noise level (sky).

3. **A radiance box** (Meng et al.'s boundary constraint, ICCV 2013): t is never lower than
   the smallest value that keeps J = (I − A)/t + A within [0, 1] in every channel of the
   pixel, so pixels brighter than A (the sun, a white wall) are not blown out and nothing is
   pushed below black.

The physical transmission (before rule 2) is kept for the depth map, so sky is FAR.

``estimate`` computes the global statistics (working scale, atmospheric light, noise σ) and
``apply`` only local, windowed stages; ``halo`` bounds how far an output pixel looks.

References
----------
.. [1] K. He, J. Sun and X. Tang, "Single image haze removal using dark channel prior",
   CVPR 2009; IEEE TPAMI 33(12), 2011.
.. [2] K. He and J. Sun, "Fast guided filter", arXiv:1505.00996, 2015.
.. [3] K. He, J. Sun and X. Tang, "Guided image filtering", IEEE TPAMI 35(6), 2013.
.. [4] G. Meng, Y. Wang, J. Duan, S. Xiang and C. Pan, "Efficient image dehazing with
   boundary constraint and contextual regularization", ICCV 2013.
.. [5] J. Immerkær, "Fast noise variance estimation", CVIU 64(2), 1996.
.. [6] X. Liu, M. Tanaka and M. Okutomi, "Single-image noise level estimation for blind
   denoising", IEEE TIP 22(12), 2013 (noise measured on weak-texture patches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

import dehaze
from dehaze import DehazeResult

__all__ = ["ClearHaze", "Scene"]

#: Rec. 601 luma weights (R, G, B).
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])

#: Standard deviation of 8-bit rounding noise, 1 / (255 √12): the noise floor (a PNG that
#: shows no noise was still quantised to 8 bits; JPEG adds more, which the estimate sees).
QUANTISATION_SIGMA = 1.0 / (255.0 * math.sqrt(12.0))


@dataclass(frozen=True)
class Scene:
    """Global statistics of one image, from :meth:`ClearHaze.estimate`.

    Attributes
    ----------
    scale : float
        Working scale in (0, 1]: the working image is the input resized by this factor.
    atmospheric_light : (C,) ndarray
        A on the [0, 1] scale.
    noise_sigma : float
        Noise standard deviation of the working-scale luma, on the [0, 1] scale.
    """

    scale: float
    atmospheric_light: NDArray[np.float64]
    noise_sigma: float


def _as_float(image: ArrayLike) -> NDArray[Any]:
    """RGB float32/float64 in [0, 1] (integers scaled by their dtype maximum)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be H×W×3 RGB, got shape {arr.shape}")
    if arr.dtype.kind == "u":
        return arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    if arr.dtype in (np.float32, np.float64):
        return arr
    raise TypeError(f"image dtype must be uint8, uint16, float32 or float64, got {arr.dtype}")


def _resize(image: NDArray[Any], scale: float) -> NDArray[Any]:
    """Area downsampling by ``scale`` ≤ 1 (a copy-free view when scale is 1)."""
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _to_dtype(image: NDArray[Any], dtype: np.dtype[Any]) -> NDArray[Any]:
    """[0, 1] float image in ``dtype`` (integers rounded)."""
    if dtype.kind == "u":
        scale = float(np.iinfo(dtype).max)
        return np.rint(image * scale).astype(dtype)
    return image.astype(dtype, copy=False)


def _box_mean(plane: NDArray[Any], radius: int) -> NDArray[Any]:
    """Mean over the (2r + 1)² window, normalised by the in-image count (reflect border)."""
    size = (2 * radius + 1, 2 * radius + 1)
    return cv2.boxFilter(plane, -1, size, normalize=True, borderType=cv2.BORDER_REFLECT)


#: Immerkær's noise-estimation mask: the difference of two Laplacians, blind to planes and
#: ramps; filtered white noise has standard deviation 6 σ (the mask's L2 norm).
NOISE_MASK = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def _noise_sigma(luma: NDArray[np.float64]) -> float:
    """Noise σ of a plane, measured where the image is flattest.

    Immerkær's mask N responds to noise and to texture but not to planes or ramps; the
    RMS of N * I over 8 × 8 windows is 6 σ in a window without texture. Its 10th
    percentile over the image is taken (the flattest tenth of the image holds noise, not
    structure: the weak-texture-patch idea of Liu, Tanaka & Okutomi 2013); a median would
    count texture as noise on textured photos (O-HAZE 35: 2.5 vs 1.1 grey levels).
    """
    if min(luma.shape) < 3:
        return 0.0
    response = cv2.filter2D(luma, -1, NOISE_MASK, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    local = cv2.blur(response * response, (8, 8), borderType=cv2.BORDER_REFLECT)
    return float(np.sqrt(max(np.percentile(local, 10.0), 0.0)) / 6.0)


def _luma(image: NDArray[Any]) -> NDArray[Any]:
    out: NDArray[Any] = image @ GRAY_WEIGHTS.astype(image.dtype)
    return out


@dataclass(frozen=True)
class ClearHaze:
    """Dehaze real photos: clears dense haze, leaves sky and flat bright areas, scale-free.

    Parameters
    ----------
    working_size : int
        Short side, in pixels, of the working image the windows run on (460: SOTS's size,
        where the dark-channel radii were swept). Smaller inputs are not upsampled.
    patch_radius : int
        Dark-channel patch radius in working pixels (15 → 31 × 31 at 460 px short side).
    guided_radius : int
        Guided-filter radius in working pixels.
    eps : float
        Guided-filter ε on the [0, 1] intensity scale.
    omega : float
        Fraction of the haze removed, in (0, 1].
    t0 : float
        Lowest transmission used in recovery, in (0, 1).
    top_fraction : float
        Fraction of brightest dark-channel pixels whose mean colour is A.
    signal_radius : int
        Window radius, in working pixels, of the local detail energy S(x).
    snr_margin : float
        k in w = max(0, 1 − (k σ / S)²): how many noise σ of detail a patch needs before it
        is dehazed fully.

    Examples
    --------
    >>> import numpy as np
    >>> hazy = (np.random.default_rng(0).random((64, 80, 3)) * 0.4 + 0.5).astype(np.float32)
    >>> result = ClearHaze()(hazy)
    >>> result.image.dtype, result.image.shape, result.depth.shape
    (dtype('float32'), (64, 80, 3), (64, 80))
    """

    working_size: int = 460
    patch_radius: int = 20
    guided_radius: int = 80
    eps: float = 0.03
    omega: float = 0.95
    t0: float = 0.2
    top_fraction: float = 0.05
    signal_radius: int = 7
    snr_margin: float = 3.0
    reach_radius: int = 40
    sky_tolerance: float = 0.15
    weight_eps: float = 1e-3
    detail_sigma: float = 2.0

    @property
    def halo(self) -> int:
        """Working-scale halo in working pixels (multiply by 1/scale for input pixels).

        The dark channel looks ``patch_radius`` away, the signal measure
        ``signal_radius + 2``, and the guided filter's coefficients ``2 · guided_radius``
        (a window of windows); +1 for the bilinear upsampling.
        """
        return max(self.patch_radius, self.signal_radius + 2) + 2 * self.guided_radius + 1

    def estimate(self, image: ArrayLike) -> Scene:
        """Global statistics: working scale, atmospheric light A and noise σ."""
        img = _as_float(image)
        short = min(img.shape[:2])
        scale = min(1.0, self.working_size / short)
        work = _resize(img, scale)
        dark = dehaze.dark_channel(work, self.patch_radius)
        # A: mean colour of the brightest `top_fraction` of the dark channel (a mean, not
        # He's single brightest pixel, so one white object or the sun cannot set A alone)
        light = dehaze.atmospheric_light(work, dark, top_fraction=self.top_fraction)
        light = light.astype(np.float64)
        light = np.clip(light, 1e-3, 1.0)
        sigma = _noise_sigma(_luma(work).astype(np.float64))
        return Scene(scale=scale, atmospheric_light=light, noise_sigma=max(sigma, QUANTISATION_SIGMA))

    def _transmissions(
        self, img: NDArray[Any], scene: Scene
    ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
        """(t for recovery, physical t for depth, detail weight, base layer), full size."""
        light = scene.atmospheric_light
        work = _resize(img, scene.scale)
        dtype = work.dtype
        raw = dehaze.transmission(work, light, omega=self.omega, patch_radius=self.patch_radius)
        raw = np.clip(raw, 0.0, 1.0).astype(dtype)
        # rule 3 (Meng et al.): J ≤ 1 in every channel of the pixel needs t ≥ (I − A)/(1 − A)
        above = (work - light.astype(dtype)) / np.maximum(1.0 - light, 1e-3).astype(dtype)
        bound = np.clip(above.max(axis=2), 0.0, 1.0)
        physical = np.maximum(raw, bound)
        # rule 2: gain 1 + w (1/t − 1) with w from the local detail-to-noise ratio
        luma = _luma(work)
        base = cv2.GaussianBlur(work, (0, 0), self.detail_sigma, borderType=cv2.BORDER_REFLECT)
        detail = luma - _luma(base)
        energy = _box_mean(detail * detail, self.signal_radius)
        noise = (self.snr_margin * scene.noise_sigma) ** 2
        weight = np.clip(1.0 - noise / np.maximum(energy, 1e-12), 0.0, 1.0)
        detail_weight = weight
        if self.reach_radius > 0:
            kernel = np.ones((2 * self.reach_radius + 1,) * 2, np.uint8)
            weight = cv2.dilate(weight, kernel, borderType=cv2.BORDER_REFLECT)
        mean = cv2.boxFilter(work, -1, (2 * self.signal_radius + 1,) * 2,
                             borderType=cv2.BORDER_REFLECT)
        distance = np.abs(mean - light.astype(dtype)).max(axis=2)
        far = np.clip(1.0 - (self.sky_tolerance / np.maximum(distance, 1e-6)) ** 2, 0.0, 1.0)
        weight = np.maximum(weight, far)
        physical, weight = self._refine(
            img, work, [(physical, self.eps), (weight, self.weight_eps)], dtype
        )
        t_safe = np.maximum(physical, self.t0)
        recovery_t = t_safe / (t_safe + weight * (1.0 - t_safe))
        height, width = img.shape[:2]
        if (height, width) != work.shape[:2]:
            size = (width, height)
            detail_weight = cv2.resize(detail_weight, size, interpolation=cv2.INTER_LINEAR)
            base = cv2.resize(base, size, interpolation=cv2.INTER_LINEAR)
        return recovery_t, physical, detail_weight, base

    def _refine(
        self,
        img: NDArray[Any],
        work: NDArray[Any],
        planes: list[tuple[NDArray[Any], float]],
        dtype: Any,
    ) -> list[NDArray[Any]]:
        """Guided filter: coefficients at the working scale, applied to the full-size luma."""
        r = min(self.guided_radius, max(work.shape[:2]))
        guide = _luma(work).astype(np.float64)
        mean_i = _box_mean(guide, r)
        var_i = _box_mean(guide * guide, r) - mean_i * mean_i
        full_guide = _luma(img)
        height, width = img.shape[:2]
        out = []
        for p, eps in planes:
            p64 = p.astype(np.float64)
            mean_p = _box_mean(p64, r)
            cov = _box_mean(guide * p64, r) - mean_i * mean_p
            a = cov / (var_i + eps)
            b = mean_p - a * mean_i
            mean_a = _box_mean(a, r).astype(dtype)
            mean_b = _box_mean(b, r).astype(dtype)
            if (height, width) != mean_a.shape:
                mean_a = cv2.resize(mean_a, (width, height), interpolation=cv2.INTER_LINEAR)
                mean_b = cv2.resize(mean_b, (width, height), interpolation=cv2.INTER_LINEAR)
            out.append(np.clip(mean_a * full_guide + mean_b, 0.0, 1.0).astype(dtype))
        return out

    def apply(self, image: ArrayLike, scene: Scene) -> DehazeResult:
        """Local stages: transmission, its refinement at full size, recovery, depth."""
        arr = np.asarray(image)
        img = _as_float(arr)
        recovery_t, physical, detail_weight, base = self._transmissions(img, scene)
        recovery_t = np.maximum(recovery_t, self.t0)
        light = scene.atmospheric_light
        # J = A + (I − A)/t, with the detail layer D = I − base amplified by
        # 1 + w_d (1/t − 1) instead of 1/t: subtract (1 − w_d)(1/t − 1) D
        radiance = dehaze.recover(img, recovery_t, light, t0=self.t0, clip=False)
        excess = (1.0 - detail_weight) * (1.0 / recovery_t - 1.0)
        radiance -= excess[:, :, np.newaxis] * (img - base)
        np.clip(radiance, 0.0, 1.0, out=radiance)
        recovered = _to_dtype(radiance, arr.dtype)
        depth = -np.log(np.maximum(physical, self.t0))
        return DehazeResult(
            image=recovered,
            transmission=recovery_t,
            atmospheric_light=light.astype(img.dtype),
            dark_channel=None,
            depth=depth,
        )

    def __call__(self, image: ArrayLike) -> DehazeResult:
        """Dehaze one image: ``apply(image, estimate(image))``."""
        return self.apply(image, self.estimate(image))
