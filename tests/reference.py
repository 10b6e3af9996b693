"""Slow, obvious float64 reference implementations of every kernel and of the pipeline.

These follow the papers' formulas with plain NumPy/SciPy/OpenCV and the same border rules as
the fast kernels, so the two can be compared to tight tolerances:

* min filter: window clipped to the image (= padding with +inf);
* box mean: window clipped to the image, divided by the number of in-image pixels;
* atmospheric light: full sort instead of selection, the same tie rule.
"""

from __future__ import annotations

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
    # every s-th pixel from the first (a tile aligned to s sees the same coarse grid)
    g_s = (g if g.ndim == 3 else g[..., np.newaxis])[::s, ::s]
    p_s = p[::s, ::s]
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
    up = [grid_bilinear_ref(box_mean_ref(q, r_s), (h, w), s) for q in planes]
    return sum(up[c] * g3[..., c] for c in range(g3.shape[2])) + up[-1]


def grid_bilinear_ref(plane: np.ndarray, shape: tuple[int, int], s: int) -> np.ndarray:
    """Upsample a grid s times coarser: fine pixel i sits at coarse (i + 0.5)/s - 0.5, clamped."""

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.clip((np.arange(n_out) + 0.5) / s - 0.5, 0.0, n_in - 1)
        lo = np.floor(x).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), x - lo

    y0, y1, fy = axis(shape[0], plane.shape[0])
    x0, x1, fx = axis(shape[1], plane.shape[1])
    extra = [1] * (plane.ndim - 2)  # channels broadcast
    fy, fx = fy.reshape(-1, 1, *extra), fx.reshape(1, -1, *extra)
    top = plane[y0][:, x0] * (1 - fx) + plane[y0][:, x1] * fx
    bottom = plane[y1][:, x0] * (1 - fx) + plane[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def assert_rounded_equal(got: np.ndarray, want01: np.ndarray, atol: float) -> None:
    """Integer pixels are rint(J · max) of a J within ``atol`` of the float64 ``want01``.

    That is |got − clip(want, 0, 1) · max| ≤ 0.5 + atol · max: with atol · max < 0.5 (uint8
    and the float32 error of the fast paths) the pixel is the nearest integer, or its
    neighbour only where ``want`` lies within ``atol`` of a rounding boundary.
    """
    top = np.iinfo(got.dtype).max
    scaled = np.clip(np.asarray(want01, dtype=np.float64), 0.0, 1.0) * top
    error = np.abs(got.astype(np.float64) - scaled)
    bound = 0.5 + atol * top
    assert np.all(error <= bound), f"{error.max()} > {bound}"


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


def bright_mean_light_ref(
    image: np.ndarray, dark: np.ndarray, top_fraction: float, bright_fraction: float
) -> np.ndarray:
    """Mean colour of the brightest of He's candidates, by two full sorts, in float64.

    Candidates: dark ≥ its k-th largest value; of those, channel sum ≥ its m-th largest.
    """
    img = to_float64(image)
    img3 = img if img.ndim == 3 else img[..., np.newaxis]
    pixels = img3.reshape(-1, img3.shape[2])
    flat = np.asarray(dark, dtype=np.float64).ravel()
    k = max(1, int(flat.size * top_fraction))
    candidates = pixels[flat >= np.sort(flat)[::-1][k - 1]]
    sums = np.array([sum(p) for p in candidates])
    m = max(1, int(k * bright_fraction))
    chosen = candidates[sums >= np.sort(sums)[::-1][m - 1]]
    return np.maximum(chosen.mean(axis=0), 1e-3)


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
    if subsample > 1:  # fast mode: He's rule among the coarse grid's pixels
        s = subsample
        light = atmospheric_light_ref(img[::s, ::s], dark[::s, ::s], top_fraction)
    else:
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
        "transmission": np.clip(t, t0, 1.0),  # returned within [t0, 1]; J used t
        "atmospheric_light": light,
        "dark_channel": dark,
        "depth": depth,
    }


# --- RobustDCP and CAP: whole pipelines from the papers' formulas ------------------------
#
# Written from the docstrings of dehaze.restore and dehaze.cap (border rules, tie-breaking)
# and the papers, with plain loops and SciPy; nothing here calls into dehaze.

CAP_THETA = (0.121779, 0.959710, -0.780245)  # Zhu, Mai & Shao (TIP 2015), section IV-B


def luma_ref(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an H×W×3 image; an H×W image is its own luma."""
    img = to_float64(image)
    return img if img.ndim == 2 else img @ GRAY_WEIGHTS


def window_mean_ref(image: np.ndarray, i: int, j: int, radius: int) -> np.ndarray:
    """Mean colour of the (2r+1)² window around (i, j), clipped to ``image``."""
    img3 = image if image.ndim == 3 else image[..., np.newaxis]
    window = img3[max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1]
    return window.reshape(-1, img3.shape[2]).mean(axis=0)


def brightest_candidate_ref(rank_map: np.ndarray, image: np.ndarray, top_fraction: float):
    """He's rule: (i, j) of the brightest pixel among rank values ≥ the k-th largest.

    Brightest is the largest channel sum of ``image``; the first in row-major order on ties.
    """
    img3 = image if image.ndim == 3 else image[..., np.newaxis]
    flat = np.asarray(rank_map, dtype=np.float64).ravel()
    k = max(1, int(flat.size * top_fraction))
    threshold = np.sort(flat)[::-1][k - 1]
    pixels = img3.reshape(-1, img3.shape[2])
    best_index, best_value = -1, -np.inf
    for index in np.flatnonzero(flat >= threshold):
        value = pixels[index].sum()
        if value > best_value:
            best_index, best_value = index, value
    return divmod(int(best_index), rank_map.shape[1])


def he_guarded_light_ref(
    image: np.ndarray, dark: np.ndarray, top_fraction: float, guard_radius: int
) -> np.ndarray:
    """He's rule on the dark channel eroded by a further (2g+1)² min filter, A = window mean."""
    img = to_float64(image)
    if guard_radius == 0:
        return atmospheric_light_ref(img, dark, top_fraction)
    wide = min_filter_ref(dark, guard_radius)
    i, j = brightest_candidate_ref(wide, img, top_fraction)
    return np.maximum(window_mean_ref(img, i, j, guard_radius), 1e-3)


def quadtree_light_ref(image: np.ndarray, min_size: int, guard_radius: int) -> np.ndarray:
    """Kim et al. (2013): split into quarters while both sides ≥ 2·min_size, keep the quarter
    of highest mean − std (the first of equal scores, in the order TL, TR, BL, BR); in the
    last block the pixel nearest white, ranked by its colour eroded over the guard window
    (clipped to the block); A is that pixel, or the window mean around it (clipped to the
    block) with a guard."""
    img = to_float64(image)
    img3 = img if img.ndim == 3 else img[..., np.newaxis]
    block = img3
    while block.shape[0] >= 2 * min_size and block.shape[1] >= 2 * min_size:
        h2, w2 = block.shape[0] // 2, block.shape[1] // 2
        quarters = [block[:h2, :w2], block[:h2, w2:], block[h2:, :w2], block[h2:, w2:]]
        scores = [q.mean() - q.std() for q in quarters]
        block = quarters[int(np.argmax(scores))]  # argmax: the first maximum
    if guard_radius > 0:
        ranked = np.stack(
            [min_filter_ref(block[..., c], guard_radius) for c in range(block.shape[2])], -1
        )
    else:
        ranked = block
    distance = ((1.0 - ranked) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
    light = window_mean_ref(block, int(i), int(j), guard_radius) if guard_radius else block[i, j]
    return np.maximum(light, 1e-3)


def sky_fraction_box_ref(
    gray: np.ndarray, light_luma: float, radius: int, max_std: float, max_distance: float
) -> float:
    """Top ⌊H/3⌋ rows (≥ 1): local variance by box moments (window clipped, divided by the
    in-image count) below max_std², and |Y − Y(A)| below max_distance."""
    g = np.asarray(gray, dtype=np.float64)
    rows = max(1, g.shape[0] // 3)
    mean = box_mean_ref(g, radius)
    var = box_mean_ref(g * g, radius) - mean * mean
    sky = (var < max_std * max_std) & (np.abs(g - light_luma) < max_distance)
    return float(sky[:rows].sum()) / (rows * g.shape[1])


def tolerance_rule_ref(
    t: np.ndarray, distance: np.ndarray, k: float, t0: float, amount: float = 1.0
) -> np.ndarray:
    """t' = min(max(K / d, 1) · max(t, t0), 1) (1 where d = 0 < K), then 1 − amount·(1 − t')."""
    out = np.empty(np.shape(t))
    for idx in np.ndindex(out.shape):
        base = max(float(t[idx]), t0)
        d = float(distance[idx])
        if d < k:
            base = 1.0 if d == 0.0 else base * k / d
        out[idx] = 1.0 - amount * (1.0 - min(base, 1.0))
    return out


def light_luma_ref(light: np.ndarray) -> float:
    light = np.asarray(light, dtype=np.float64)
    return float(light[0]) if light.size == 1 else float(light @ GRAY_WEIGHTS)


def _refine_ref(guide: np.ndarray, src: np.ndarray, radius: int, eps: float, subsample: int):
    r = min(radius, max(src.shape))
    if subsample > 1:
        return fast_guided_ref(guide, src, r, eps, subsample)
    if guide.ndim == 2:
        return guided_gray_ref(guide, src, r, eps)
    return guided_color_ref(guide, src, r, eps)


def robust_dcp_ref(
    image: np.ndarray,
    *,
    omega: float = 0.95,
    t0: float = 0.3,
    patch_radius: int = 20,
    guided_radius: int = 80,
    eps: float = 0.03,
    light: str = "he",
    guard_radius: int = 2,
    tolerance: float | None = 0.0,
    sky_tolerance: float | None = 0.6,
    sky_range: tuple[float, float] = (0.5, 0.7),
    amount: float = 1.0,
    top_fraction: float = 0.05,
    subsample: int = 1,
) -> dict[str, np.ndarray | float]:
    """RobustDCP in plain float64 (defaults mirror the method's; a test checks they match).

    Dark channel; A by He's guarded rule or Kim's quad-tree (min block 16); t̃ = 1 − ω
    dark(I/A); guided filter with the luma guide; K from the sky fraction of the top third
    (window 15 × 15, std < 0.02, |Y − Y(A)| < 0.2), linear between sky_range; the tolerance
    rule and amount; J = clip((I − A) / max(t, t0) + A, 0, 1).
    """
    img = to_float64(image)
    dark = dark_channel_ref(img, patch_radius)
    if light == "quadtree":
        a = quadtree_light_ref(img, 16, guard_radius)
    else:
        a = he_guarded_light_ref(img, dark, top_fraction, guard_radius)
    raw = transmission_ref(img, a, omega, patch_radius)
    gray = luma_ref(img)
    t = _refine_ref(gray, raw, guided_radius, eps, subsample)
    k = float("nan")
    fraction = float("nan")
    if tolerance is not None:
        k = float(tolerance)
        if sky_tolerance is not None:
            fraction = sky_fraction_box_ref(gray, light_luma_ref(a), 7, 0.02, 0.2)
            low, high = sky_range
            weight = min(max((fraction - low) / (high - low), 0.0), 1.0)
            k = k + weight * (sky_tolerance - k)
        distance = np.abs(gray - light_luma_ref(a))
        t = tolerance_rule_ref(t, distance, k, t0, amount)
    elif amount < 1.0:
        t = 1.0 - amount * (1.0 - t)
    return {
        "image": recover_ref(img, t, a, t0),
        "transmission": np.clip(t, t0, 1.0),  # returned within [t0, 1]; J used t
        "atmospheric_light": a,
        "dark_channel": dark,
        "depth": -np.log(np.clip(t, t0, 1.0)),
        "tolerance": k,
        "sky_fraction": fraction,
    }


def cap_raw_depth_ref(image: np.ndarray) -> np.ndarray:
    """d = θ0 + θ1 v + θ2 s, v = max_c I_c, s = (v − min_c I_c) / v (0 where v = 0)."""
    img = to_float64(image)
    img3 = img if img.ndim == 3 else img[..., np.newaxis]
    v = img3.max(axis=2)
    low = img3.min(axis=2)
    s = np.zeros_like(v)
    np.divide(v - low, v, out=s, where=v > 0)
    return CAP_THETA[0] + CAP_THETA[1] * v + CAP_THETA[2] * s


def cap_ref(
    image: np.ndarray,
    *,
    beta: float = 1.0,
    t0: float = 0.1,
    patch_radius: int = 7,
    guided_radius: int = 30,
    eps: float = 1e-3,
    guide: str = "gray",
    tolerance: float | None = None,
    amount: float = 1.0,
) -> dict[str, np.ndarray]:
    """Zhu, Mai & Shao (2015) in plain float64 (defaults mirror ColorAttenuationPrior's).

    Linear depth model, (2r+1)² min filter (clipped), A by He's rule on the eroded depth
    (top 0.1 %), guided-filter refinement of the eroded depth (luma or RGB guide),
    t = exp(−β d), optional tolerance rule / amount, t clipped to [t0, 1], recovery.
    """
    img = to_float64(image)
    eroded = min_filter_ref(cap_raw_depth_ref(img), patch_radius)
    a = atmospheric_light_ref(img, eroded, 0.001)
    g = img if (img.ndim == 3 and guide == "color") else luma_ref(img)
    depth = _refine_ref(g, eroded, guided_radius, eps, 1)
    t = np.exp(-beta * depth)
    if tolerance is not None:
        t = tolerance_rule_ref(t, np.abs(luma_ref(img) - light_luma_ref(a)), tolerance, t0, amount)
    elif amount < 1.0:
        t = 1.0 - amount * (1.0 - t)
    t = np.clip(t, t0, 1.0)
    return {
        "image": recover_ref(img, t, a, t0),
        "transmission": np.clip(t, t0, 1.0),  # returned within [t0, 1]; J used t
        "atmospheric_light": a,
        "depth": np.maximum(depth, 0.0),
    }


# --- ClearHaze, from its rules (dehaze/clear.py's module notes), with SciPy ---------------

NOISE_MASK_REF = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
QUANTISATION_SIGMA_REF = 1.0 / (255.0 * np.sqrt(12.0))


def block_mean_ref(image: np.ndarray, k: int) -> np.ndarray:
    """Mean over k × k blocks; a block cut by the image's edge is the mean of its pixels."""
    h, w = image.shape[:2]
    out = np.empty((-(-h // k), -(-w // k), *image.shape[2:]))
    for bi in range(out.shape[0]):
        for bj in range(out.shape[1]):
            block = image[bi * k : (bi + 1) * k, bj * k : (bj + 1) * k]
            out[bi, bj] = block.reshape(-1, *image.shape[2:]).mean(axis=0)
    return out


def noise_sigma_ref(luma: np.ndarray) -> float:
    """Immerkær's mask, RMS over whole 8 × 8 blocks, 10th percentile, / 6, floored."""
    if min(luma.shape) < 3:  # no interior response: only the floor is known
        return QUANTISATION_SIGMA_REF
    response = ndimage.correlate(luma, NOISE_MASK_REF, mode="reflect")[1:-1, 1:-1]
    energies = [
        np.mean(response[i : i + 8, j : j + 8] ** 2)
        for i in range(0, response.shape[0] - 7, 8)
        for j in range(0, response.shape[1] - 7, 8)
    ] or [np.mean(response**2)]
    return max(
        float(np.sqrt(max(np.percentile(energies, 10.0), 0.0)) / 6.0), QUANTISATION_SIGMA_REF
    )


def _spatial(fn, image: np.ndarray, **kwargs) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Apply a 2-D SciPy filter to each channel."""
    if image.ndim == 2:
        return fn(image, **kwargs)
    return np.stack([fn(image[..., c], **kwargs) for c in range(image.shape[2])], axis=-1)


def transmission_terms_ref(
    work: np.ndarray, mean: np.ndarray, light: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ClearHaze's per-pixel terms (dehaze._kernels.clear.transmission_terms) in float64.

    The channel minimum of I / A, Meng's bound max_c (I_c − A_c) / max(1 − A_c, 1e-3)
    (not yet clipped) and the distance-to-A weight clip(1 − (K / d)², 0, 1) of the local
    ``mean``, d = max(max_c |mean_c − A_c|, 1e-6).
    """
    w3 = to_float64(work).reshape(work.shape[0], work.shape[1], -1)
    m3 = to_float64(mean).reshape(mean.shape[0], mean.shape[1], -1)
    a = np.asarray(light, dtype=np.float64)
    channel_min = (w3 / a).min(axis=2)
    bound = ((w3 - a) / np.maximum(1.0 - a, 1e-3)).max(axis=2)
    distance = np.abs(m3 - a).max(axis=2)
    far = np.clip(1.0 - (tolerance / np.maximum(distance, 1e-6)) ** 2, 0, 1)
    return channel_min, bound, far


def clear_haze_ref(
    image: np.ndarray,
    *,
    working_size: int = 400,
    patch_radius: int = 20,
    guided_radius: int = 80,
    eps: float = 0.03,
    omega: float = 0.95,
    t0: float = 0.2,
    top_fraction: float = 0.05,
    signal_radius: int = 7,
    snr_margin: float = 3.0,
    reach_radius: int = 40,
    sky_tolerance: float = 0.15,
    weight_eps: float = 1e-3,
    detail_sigma: float = 2.0,
    bright_fraction: float = 0.01,
    radii_size: int | None = None,
) -> dict[str, np.ndarray]:
    """ClearHaze in float64: the five rules of dehaze/clear.py, one step at a time."""
    img = to_float64(image)
    short = min(img.shape[:2])
    k = max(1, round(short / working_size))
    work = block_mean_ref(img, k)
    # the radii are given for a working image of short side radii_size (or working_size)
    extent = min(work.shape[:2]) / (working_size if radii_size is None else radii_size)
    patch = round(patch_radius * extent)
    guided = max(1, round(guided_radius * extent))
    signal = max(1, round(signal_radius * extent))
    reach = round(reach_radius * extent)
    sigma_d = detail_sigma * extent
    # estimate: A, the mean of the brightest candidates (rule 5), the noise level of the luma
    dark = dark_channel_ref(work, patch)
    light = bright_mean_light_ref(work, dark, top_fraction, bright_fraction)
    sigma = noise_sigma_ref(luma_ref(work))
    # physical t: the prior, bounded below by Meng's box (J <= 1)
    raw = transmission_ref(work, light, omega, patch)
    mean = _spatial(ndimage.uniform_filter, work, size=2 * signal + 1, mode="reflect")
    _, bound, far = transmission_terms_ref(work, mean, light, sky_tolerance)
    physical = np.clip(np.maximum(raw, np.clip(bound, 0, 1)), 0, 1)
    # weights: detail SNR (spread by a max filter) and distance to A
    # OpenCV's Gaussian for float images: kernel size round(8 sigma + 1) made odd
    radius_d = ((int(np.floor(8 * sigma_d + 1 + 0.5)) | 1) - 1) // 2
    base = _spatial(
        ndimage.gaussian_filter, work, sigma=sigma_d, mode="reflect", truncate=radius_d / sigma_d
    )
    detail = luma_ref(work) - luma_ref(base)
    energy = ndimage.uniform_filter(detail * detail, size=2 * signal + 1, mode="reflect")
    detail_weight = np.clip(1.0 - (snr_margin * sigma) ** 2 / np.maximum(energy, 1e-12), 0, 1)
    spread = detail_weight
    if reach > 0:
        spread = ndimage.maximum_filter(detail_weight, size=2 * reach + 1, mode="reflect")
    weight = np.maximum(spread, far)
    # guided filter at the working scale: the box means of its coefficients, per map
    guide_small = luma_ref(work)

    def coefficients(src: np.ndarray, e: float) -> tuple[np.ndarray, np.ndarray]:
        mean_i = box_mean_ref(guide_small, guided)
        mean_p = box_mean_ref(src, guided)
        var_i = box_mean_ref(guide_small * guide_small, guided) - mean_i * mean_i
        cov = box_mean_ref(guide_small * src, guided) - mean_i * mean_p
        a = cov / (var_i + e)
        b = mean_p - a * mean_i
        return box_mean_ref(a, guided), box_mean_ref(b, guided)

    base3 = base if base.ndim == 3 else base[..., np.newaxis]
    planes = np.stack(
        [*coefficients(physical, eps), *coefficients(weight, weight_eps), detail_weight]
        + [base3[..., c] for c in range(base3.shape[2])]
    )
    full = clear_recover_ref(img, planes, light, k, t0)
    return {**full, "atmospheric_light": light, "factor": k, "noise_sigma": sigma}


def clear_recover_ref(
    image: np.ndarray, planes: np.ndarray, light: np.ndarray, k: int, t0: float
) -> dict[str, np.ndarray]:
    """ClearHaze's full-size step in float64, from the working-scale planes.

    ``planes`` is the P×h×w stack of dehaze/_kernels/clear.py: the box means of the guided
    filter's a and b for the transmission, the same for the weight, the detail weight, then
    the base layer's channels. Each is upsampled k times (:func:`grid_bilinear_ref`); t and
    w are the guided filter's output on the full-size luma, and J follows rules 2 and 3.
    """
    img = to_float64(image)
    shape = img.shape[:2]
    up = [grid_bilinear_ref(plane.astype(np.float64), shape, k) for plane in planes]
    guide_full = luma_ref(img)
    t = np.clip(up[0] * guide_full + up[1], 0, 1)
    w = np.clip(up[2] * guide_full + up[3], 0, 1)
    t_safe = np.maximum(t, t0)
    t_rec = t_safe / (t_safe + w * (1 - t_safe))
    base_full = np.stack(up[5:], axis=-1) if img.ndim == 3 else up[5]
    gain = 1.0 / t_rec
    excess = (1 - up[4]) * (gain - 1)  # up[4]: the detail weight
    if img.ndim == 3:
        gain, excess = gain[..., np.newaxis], excess[..., np.newaxis]
    a_ = np.asarray(light, np.float64) if img.ndim == 3 else float(light[0])
    j = np.clip((img - a_) * gain + a_ - excess * (img - base_full), 0, 1)
    return {"image": j, "transmission": t_rec, "depth": -np.log(np.clip(t, t0, 1.0))}
