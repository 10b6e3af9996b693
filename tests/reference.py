"""Slow, obvious float64 reference implementations of every kernel and of the pipeline.

These follow the papers' formulas with plain NumPy/SciPy/OpenCV and the same border rules as
the fast kernels, so the two can be compared to tight tolerances:

* min filter: window clipped to the image (= padding with +inf);
* box mean: window clipped to the image, divided by the number of in-image pixels;
* atmospheric light: full sort instead of selection, the same tie rule.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])


def to_float64(image: np.ndarray) -> np.ndarray:
    if image.dtype.kind == "u":
        return image.astype(np.float64) / np.iinfo(image.dtype).max
    return image.astype(np.float64)


def min_filter_ref(a: np.ndarray, radius: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    size = 2 * radius + 1
    return ndimage.minimum_filter(a, size=size, mode="constant", cval=np.inf)


def box_sum_ref(a: np.ndarray, radius: int) -> np.ndarray:
    """Window sums by a zero-padded integral image (cumsum along both axes)."""
    a = np.asarray(a, dtype=np.float64)
    h, w = a.shape
    r = radius
    padded = np.zeros((h + 2 * r + 1, w + 2 * r + 1))
    padded[r + 1 : r + 1 + h, r + 1 : r + 1 + w] = a
    integral = padded.cumsum(0).cumsum(1)
    k = 2 * r + 1
    return (integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k])[:h, :w]


def box_mean_ref(a: np.ndarray, radius: int) -> np.ndarray:
    ones = np.ones(np.shape(a))
    return box_sum_ref(a, radius) / box_sum_ref(ones, radius)


def guided_gray_ref(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Algorithm 1 of He, Sun & Tang (TPAMI 2013), gray guide."""
    i_ = np.asarray(guide, dtype=np.float64)
    p = np.asarray(src, dtype=np.float64)
    mean_i = box_mean_ref(i_, radius)
    mean_p = box_mean_ref(p, radius)
    corr_ii = box_mean_ref(i_ * i_, radius)
    corr_ip = box_mean_ref(i_ * p, radius)
    var_i = corr_ii - mean_i * mean_i
    cov_ip = corr_ip - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean_ref(a, radius) * i_ + box_mean_ref(b, radius)


def guided_color_coefficients_ref(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel a (H×W×3) and b (H×W) of the colour guided filter, by np.linalg.solve."""
    i_ = np.asarray(guide, dtype=np.float64)
    p = np.asarray(src, dtype=np.float64)
    h, w, _ = i_.shape
    mean_i = np.stack([box_mean_ref(i_[..., c], radius) for c in range(3)], axis=-1)
    mean_p = box_mean_ref(p, radius)
    cov_ip = np.stack(
        [box_mean_ref(i_[..., c] * p, radius) - mean_i[..., c] * mean_p for c in range(3)],
        axis=-1,
    )
    sigma = np.empty((h, w, 3, 3))
    for c1 in range(3):
        for c2 in range(3):
            sigma[..., c1, c2] = (
                box_mean_ref(i_[..., c1] * i_[..., c2], radius) - mean_i[..., c1] * mean_i[..., c2]
            )
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_ip[..., np.newaxis])[..., 0]
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    return a, b


def guided_color_ref(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    a, b = guided_color_coefficients_ref(guide, src, radius, eps)
    mean_a = np.stack([box_mean_ref(a[..., c], radius) for c in range(3)], axis=-1)
    return np.einsum("hwc,hwc->hw", mean_a, np.asarray(guide, dtype=np.float64)) + box_mean_ref(
        b, radius
    )


def fast_guided_ref(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float, s: int
) -> np.ndarray:
    """He & Sun (2015) fast guided filter: nearest subsampling, bilinear upsampling."""
    g = np.asarray(guide, dtype=np.float64)
    p = np.asarray(src, dtype=np.float64)
    h, w = p.shape
    size = (max(1, round(w / s)), max(1, round(h / s)))
    g_s = cv2.resize(g, size, interpolation=cv2.INTER_NEAREST).reshape(size[1], size[0], -1)
    p_s = cv2.resize(p, size, interpolation=cv2.INTER_NEAREST)
    r_s = max(1, round(radius / s)) if radius > 0 else 0
    g3 = g if g.ndim == 3 else g[..., np.newaxis]
    if g_s.shape[2] == 1:
        gs = g_s[..., 0]
        mean_i = box_mean_ref(gs, r_s)
        mean_p = box_mean_ref(p_s, r_s)
        a = (box_mean_ref(gs * p_s, r_s) - mean_i * mean_p) / (
            box_mean_ref(gs * gs, r_s) - mean_i * mean_i + eps
        )
        planes = [a, mean_p - a * mean_i]
    else:
        a3, b = guided_color_coefficients_ref(g_s, p_s, r_s, eps)
        planes = [a3[..., c] for c in range(3)] + [b]
    up = [cv2.resize(box_mean_ref(q, r_s), (w, h), interpolation=cv2.INTER_LINEAR) for q in planes]
    return sum(up[c] * g3[..., c] for c in range(g3.shape[2])) + up[-1]


def dark_channel_ref(image: np.ndarray, radius: int) -> np.ndarray:
    img = to_float64(image)
    mins = img if img.ndim == 2 else img.min(axis=2)
    return min_filter_ref(mins, radius)


def atmospheric_light_ref(image: np.ndarray, dark: np.ndarray, top_fraction: float) -> np.ndarray:
    """He's rule by a full sort: among dark values ≥ the k-th largest, the brightest pixel."""
    img = to_float64(image)
    img3 = img if img.ndim == 3 else img[..., np.newaxis]
    flat = np.asarray(dark, dtype=np.float64).ravel()
    k = max(1, int(flat.size * top_fraction))
    threshold = np.sort(flat)[::-1][k - 1]
    pixels = img3.reshape(-1, img3.shape[2])
    best_index, best_value = -1, -np.inf
    for index in np.flatnonzero(flat >= threshold):  # row-major order; first maximum wins
        value = pixels[index].sum()
        if value > best_value:
            best_index, best_value = index, value
    return np.maximum(pixels[best_index], 1e-3)


def transmission_ref(image: np.ndarray, light: np.ndarray, omega: float, radius: int) -> np.ndarray:
    img = to_float64(image)
    img3 = img if img.ndim == 3 else img[..., np.newaxis]
    return 1.0 - omega * min_filter_ref((img3 / np.asarray(light)).min(axis=2), radius)


def recover_ref(image: np.ndarray, t: np.ndarray, light: np.ndarray, t0: float) -> np.ndarray:
    img = to_float64(image)
    img3 = img if img.ndim == 3 else img[..., np.newaxis]
    tt = np.maximum(t, t0)[..., np.newaxis]
    out = np.clip((img3 - light) / tt + light, 0.0, 1.0)
    return out.reshape(img.shape)


def dehaze_ref(
    image: np.ndarray,
    *,
    omega: float = 0.95,
    t0: float = 0.3,
    patch_radius: int = 20,
    guided_radius: int = 80,
    eps: float = 0.03,
    guide: str = "gray",
    subsample: int = 1,
    top_fraction: float = 0.05,
) -> dict[str, np.ndarray]:
    """The whole dark-channel-prior pipeline in plain float64 NumPy/SciPy/OpenCV.

    Defaults mirror ``dehaze.DarkChannelPrior``'s (a test checks they stay equal).
    """
    img = to_float64(image)
    dark = dark_channel_ref(img, patch_radius)
    light = atmospheric_light_ref(img, dark, top_fraction)
    raw = transmission_ref(img, light, omega, patch_radius)
    if img.ndim == 2:
        g = img
    elif guide == "gray":
        g = img @ GRAY_WEIGHTS
    else:
        g = img
    r = min(guided_radius, max(img.shape[:2]))
    if subsample > 1:
        t = fast_guided_ref(g, raw, r, eps, subsample)
    elif g.ndim == 2:
        t = guided_gray_ref(g, raw, r, eps)
    else:
        t = guided_color_ref(g, raw, r, eps)
    j = recover_ref(img, t, light, t0)
    depth = -np.log(np.clip(t, t0, 1.0))
    return {
        "image": j,
        "transmission": t,
        "atmospheric_light": light,
        "dark_channel": dark,
        "depth": depth,
    }
