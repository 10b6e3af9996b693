"""A plain, idiomatic OpenCV/NumPy dark-channel-prior pipeline (float32).

This is how the algorithm is usually written with OpenCV: ``cv2.erode`` for the dark
channel (its default border value makes the window clipped to the image), a full
``argsort`` for the atmospheric light, and the guided filter from ``cv2.boxFilter``. Box
means are normalised by the in-image count, the same border rule as dehaze, so both
compute the same algorithm; it is the second, stronger reference in the benchmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _box(a: np.ndarray, r: int) -> np.ndarray:
    k = (2 * r + 1, 2 * r + 1)
    s = cv2.boxFilter(a, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    n = cv2.boxFilter(np.ones_like(a), -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    return s / n


def guided_gray(i_: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    mean_i, mean_p = _box(i_, r), _box(p, r)
    a = (_box(i_ * p, r) - mean_i * mean_p) / (_box(i_ * i_, r) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return _box(a, r) * i_ + _box(b, r)


def dark(img: np.ndarray, r: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1))
    return cv2.erode(img.min(axis=2), kernel)


def dehaze_opencv(
    image: np.ndarray,
    omega: float = 0.95,
    t0: float = 0.3,
    patch_radius: int = 20,
    guided_radius: int = 80,
    eps: float = 0.03,
    top_fraction: float = 0.05,
) -> np.ndarray:
    """The pipeline with dehaze.DarkChannelPrior's default parameters (gray guide)."""
    r, gr = patch_radius, guided_radius
    img = image.astype(np.float32) / 255.0
    d = dark(img, r)
    k = max(1, int(d.size * top_fraction))
    idx = np.argsort(d.ravel())[-k:]
    pixels = img.reshape(-1, 3)[idx]
    light = pixels[np.argmax(pixels.sum(axis=1))]
    t = 1.0 - omega * dark(img / light, r)
    t = guided_gray(img @ GRAY, t, gr, eps)
    j = (img - light) / np.maximum(t, t0)[..., None] + light
    return np.rint(np.clip(j, 0, 1) * 255).astype(np.uint8)
