"""The dark-channel-prior pipeline (He, Sun & Tang, CVPR 2009 / TPAMI 2011).

Haze model: I(x) = J(x) t(x) + A (1 − t(x)). The pipeline estimates

1. the dark channel  dark(I)(x) = min over the patch Ω(x) of min over c of I_c;
2. the atmospheric light A from the brightest 0.1 % of the dark channel;
3. the transmission  t̃ = 1 − ω · dark(I / A);
4. refines t̃ with the guided filter (gray or colour guide, optionally subsampled);
5. recovers  J = (I − A) / max(t, t0) + A;
6. relative depth −ln(t).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._kernels import atmosphere as _atm
from dehaze._kernels import recover as _rec
from dehaze._parallel import run_bands
from dehaze._validate import (
    FloatArray,
    as_float_image,
    as_pixels,
    check_atmospheric_light,
    check_choice,
    check_float_map,
    check_radius,
    check_real,
    working_dtype,
)
from dehaze.depth import _depth
from dehaze.filters import min_filter_plane
from dehaze.guided import guided_filter_plane, to_gray
from dehaze.result import DehazeResult

__all__ = [
    "DarkChannelPrior",
    "atmospheric_light",
    "dark_channel",
    "dehaze",
    "recover",
    "transmission",
]

#: ``rule(pixels, dark, unit) -> A``: how a pipeline run picks A once dark(I) exists
#: (pixels float, or unsigned int with ``unit = 1 / dtype max``; A in the working dtype).
LightRule = Callable[[NDArray[Any], FloatArray, float], FloatArray]

#: Lower bound applied to an *estimated* atmospheric light (a black image has no haze
#: to estimate; the bound keeps I / A finite).
MIN_ESTIMATED_LIGHT = 1e-3


def _as_channels(image: FloatArray) -> FloatArray:
    """View an H×W gray image as H×W×1 (H×W×3 is returned unchanged)."""
    return image if image.ndim == 3 else image[:, :, np.newaxis]


def _dark_channel(
    image: FloatArray,
    radius: int,
    scale: FloatArray | None = None,
    unit: float = 1.0,
    affine: tuple[float, float] = (1.0, 0.0),
) -> FloatArray:
    """Dark channel of validated pixels (float, or unsigned int with ``unit``).

    Of ``image · unit · scale`` per channel when ``scale`` is given; ``affine = (m, a)``
    gives m · dark + a in the same pass.
    """
    if scale is None and unit == 1.0:
        return min_filter_plane(image, radius, affine=affine)
    channels = 1 if image.ndim == 2 else image.shape[2]
    factors = np.ones(channels) if scale is None else np.asarray(scale, dtype=np.float64)
    # rounded to the working dtype once: for scale None, the factor as_float_image uses
    return min_filter_plane(image, radius, factors * unit, affine)


def dark_channel(image: ArrayLike, patch_radius: int = 7) -> FloatArray:
    """Compute the dark channel: min over colour channels, then over a square patch.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        RGB or gray image, uint8/uint16/float32/float64 (float in [0, 1]).
    patch_radius : int, optional
        Patch radius r ≥ 0; the patch is (2r + 1)² (r = 7 gives He's 15 × 15).

    Returns
    -------
    (H, W) ndarray
        Dark channel on the [0, 1] scale; float64 for float64 input, float32 otherwise.

    Notes
    -----
    The patch is clipped to the image (padding with +inf), as in the paper. Cost per pixel
    does not depend on the patch size (van Herk / Gil–Werman min filter).

    References
    ----------
    .. [1] K. He, J. Sun and X. Tang, "Single image haze removal using dark channel
       prior", CVPR 2009; IEEE TPAMI 33(12), 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import dark_channel
    >>> img = np.zeros((4, 4, 3), dtype=np.uint8); img[..., 0] = 255
    >>> float(dark_channel(img, 1).max())
    0.0
    """
    img = as_float_image(image)
    return _dark_channel(img, check_radius(patch_radius, "patch_radius"))


#: Most boundary-bin positions :func:`_brightest_index` stores (512 KiB of indices).
MAX_KEPT_POSITIONS = 1 << 16


def _brightest_index(dark: FloatArray, image: FloatArray, k: int) -> int:
    """Flat index of the pixel He's rule takes A from (internal, unchecked).

    Candidates are the pixels whose dark value is at least the k-th largest dark value
    (ties included); among them the one with the largest channel sum wins, the first in
    row-major order on ties. The k-th largest value is found by a histogram followed by
    ``np.partition`` of the boundary bin only (none when its values are all equal); every
    pass runs on row bands in parallel. ``dark`` is a C-contiguous H×W map, ``image``
    H×W×C.
    """
    height = dark.shape[0]
    hists: dict[int, NDArray[np.int64]] = {}
    extents: dict[int, NDArray[np.float64]] = {}

    def count(i0: int, i1: int) -> None:
        hists[i0] = np.zeros((_atm.N_COPIES, _atm.N_BINS), dtype=np.int64)
        extents[i0] = np.empty(2)
        _atm.histogram(dark, hists[i0], extents[i0], i0, i1)

    run_bands(count, height)
    if min(e[0] for e in extents.values()) == max(e[1] for e in extents.values()):
        # a constant map (a black or blank frame): every pixel is a candidate
        return _brightest_at_least(dark, image, _atm.N_BINS, -np.inf)[1]
    band_hist = {i0: h.sum(axis=0) for i0, h in hists.items()}
    hist = np.sum(list(band_hist.values()), axis=0)
    from_top = np.cumsum(hist[::-1])
    pos = int(np.searchsorted(from_top, k))  # first bin from the top reaching k
    target = _atm.N_BINS - 1 - pos
    above = int(from_top[pos] - hist[target])
    # positions of the boundary bin are kept when they are few (the usual case, two passes
    # in all); for a large bin, a third pass finds its brightest candidate instead
    keep_index = int(hist[target]) <= MAX_KEPT_POSITIONS
    parts: dict[int, tuple[NDArray[Any], NDArray[np.int64], NDArray[np.float64]]] = {}

    def split(i0: int, i1: int) -> None:
        n = int(band_hist[i0][target])
        part = (
            np.empty(n, dtype=dark.dtype),
            np.empty(n if keep_index else 0, dtype=np.int64),
            np.empty(4),
        )
        _atm.split_at_bin(dark, image, target, *part, i0, i1)
        parts[i0] = part

    run_bands(split, height)
    bands = [parts[i0] for i0 in sorted(parts)]  # row-major order
    values = np.concatenate([p[0] for p in bands])
    low = min(float(p[2][2]) for p in bands)
    high = max(float(p[2][3]) for p in bands)
    rank = values.size - (k - above)  # ascending position of the k-th largest
    # a bin of equal values (a constant or black frame) needs no partition
    threshold = low if low == high else float(np.partition(values, rank)[rank])
    candidates: list[tuple[float, int]] = [(float(p[2][0]), int(p[2][1])) for p in bands]
    if keep_index:
        # boundary-bin candidates, in row-major order; sums added channel by channel as
        # the kernel adds them, so equal pixels tie exactly
        found = np.concatenate([p[1] for p in bands])[values >= threshold]
        pixels = image.reshape(-1, image.shape[2])[found]
        sums = pixels[:, 0].astype(np.float64)
        for c in range(1, image.shape[2]):
            sums += pixels[:, c]
        if found.size:
            pick = int(np.argmax(sums))  # the first of equal maxima
            candidates.append((float(sums[pick]), int(found[pick])))
    else:
        candidates.append(_brightest_at_least(dark, image, target, threshold))
    return _first_brightest(candidates)[1]


def _first_brightest(candidates: list[tuple[float, int]]) -> tuple[float, int]:
    """Pick the (sum, index) of largest sum, the earliest pixel on ties (index −1: none)."""
    best_sum, best = -np.inf, -1
    for s, index in candidates:
        if index >= 0 and (s > best_sum or (s == best_sum and index < best)):
            best_sum, best = s, index
    return best_sum, best


def _brightest_at_least(
    dark: FloatArray, image: FloatArray, target: int, threshold: float
) -> tuple[float, int]:
    """Find the brightest pixel with ``dark >= threshold`` in bin ``target``, banded.

    ``target = N_BINS`` means any bin. Returns (channel sum, flat index), the first in
    row-major order on ties.
    """
    bests: dict[int, NDArray[np.float64]] = {}

    def pick(i0: int, i1: int) -> None:
        bests[i0] = np.empty(2)
        _atm.brightest_in_bin(dark, image, target, threshold, bests[i0], i0, i1)

    run_bands(pick, dark.shape[0])
    return _first_brightest([(float(b[0]), int(b[1])) for b in bests.values()])


def _estimate_light(
    image: FloatArray, dark: FloatArray, top_fraction: float, unit: float = 1.0
) -> FloatArray:
    """He's rule on validated pixels (float, or unsigned int with ``unit``)."""
    img3 = _as_channels(image)
    wdt = working_dtype(image.dtype)
    k = max(1, int(dark.size * top_fraction))
    index = _brightest_index(np.ascontiguousarray(dark, dtype=wdt), img3, k)
    # scaled as as_float_image scales: the pixel's value in the working dtype
    pixel = img3.reshape(-1, img3.shape[2])[index].astype(wdt)
    light: FloatArray = np.maximum(pixel * wdt.type(unit), wdt.type(MIN_ESTIMATED_LIGHT))
    return light


def atmospheric_light(
    image: ArrayLike,
    dark: ArrayLike | None = None,
    *,
    patch_radius: int = 7,
    top_fraction: float = 0.001,
) -> FloatArray:
    """Estimate the atmospheric light A by He's rule.

    Among the pixels whose dark-channel value is in the brightest ``top_fraction`` (0.1 %)
    of the image, the input pixel of highest intensity (R + G + B) is taken as A.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        uint8/uint16/float32/float64 image (float in [0, 1]).
    dark : (H, W) ndarray, optional
        The image's dark channel; computed with ``patch_radius`` when not given.
    patch_radius : int, optional
        Patch radius for the dark channel when ``dark`` is not given.
    top_fraction : float, optional
        Fraction in (0, 1] of the brightest dark-channel pixels to search (at least one).

    Returns
    -------
    (C,) ndarray
        A on the [0, 1] scale (C = 3 for RGB, 1 for gray), each component at least
        ``MIN_ESTIMATED_LIGHT`` (1e-3).

    Notes
    -----
    Selection, not a sort: the threshold is the k-th largest dark value (k = max(1,
    ⌊N · top_fraction⌋)) found by ``np.partition`` in O(N). Every pixel with a dark value at
    or above it is a candidate (ties included); among equal intensities the first pixel in
    row-major order wins. This makes the result independent of the selection algorithm.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import atmospheric_light
    >>> img = np.full((20, 20, 3), 0.2); img[5, 5] = (0.9, 0.8, 0.7)
    >>> atmospheric_light(img, patch_radius=0)
    array([0.9, 0.8, 0.7])
    """
    img = as_float_image(image)
    frac = check_real(top_fraction, "top_fraction", low=0.0, high=1.0, high_inclusive=True)
    if dark is None:
        dark_f = _dark_channel(img, check_radius(patch_radius, "patch_radius"))
    else:
        dark_f = check_float_map(dark, "dark", img.shape[:2])
    return _estimate_light(img, dark_f, frac)


def _raw_transmission(
    image: FloatArray, light: FloatArray, omega: float, radius: int, unit: float = 1.0
) -> FloatArray:
    """1 − ω · dark(I / A) of validated pixels (float, or unsigned int with ``unit``)."""
    return _dark_channel(image, radius, 1.0 / light.astype(np.float64), unit, (-omega, 1.0))


def transmission(
    image: ArrayLike,
    atmospheric_light: ArrayLike,
    *,
    omega: float = 0.95,
    patch_radius: int = 7,
) -> FloatArray:
    """Coarse transmission t̃ = 1 − ω · dark(I / A), before refinement.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        uint8/uint16/float32/float64 image (float in [0, 1]).
    atmospheric_light : float or (C,) array_like
        A on the [0, 1] scale, every component in (0, 1].
    omega : float, optional
        Haze kept for aerial perspective, ω in (0, 1] (0.95 in the paper).
    patch_radius : int, optional
        Patch radius r ≥ 0 of the dark channel.

    Returns
    -------
    (H, W) ndarray
        t̃ (may be below 0 where I exceeds A in every channel of a patch); float64 for
        float64 input, float32 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import transmission
    >>> img = np.full((8, 8, 3), 0.5)
    >>> float(transmission(img, 1.0, omega=1.0)[0, 0])
    0.5
    """
    img = as_float_image(image)
    channels = 1 if img.ndim == 2 else img.shape[2]
    light = check_atmospheric_light(atmospheric_light, channels, img.dtype)
    w = check_real(omega, "omega", low=0.0, high=1.0, high_inclusive=True)
    return _raw_transmission(img, light, w, check_radius(patch_radius, "patch_radius"))


def _recover(
    image: FloatArray,
    t: FloatArray,
    light: FloatArray,
    t0: float,
    clip: bool,
    out_dtype: np.dtype[Any],
    unit: float = 1.0,
) -> NDArray[Any]:
    """Recover J in ``out_dtype`` (integers: clipped, scaled and rounded in the same pass).

    ``image`` holds validated pixels: float, or unsigned int with ``unit = 1 / dtype max``.
    """
    img3 = _as_channels(image)
    height, width, channels = img3.shape
    wdt = working_dtype(image.dtype)
    out = np.empty(img3.shape, dtype=out_dtype)
    out_scale = float(np.iinfo(out_dtype).max) if out_dtype.kind == "u" else 0.0
    t_c = np.ascontiguousarray(t, dtype=wdt)
    light_c = np.ascontiguousarray(light, dtype=wdt)
    do_clip = clip or out_scale > 0.0
    # rows as flat runs of W·C samples (a view for the C-contiguous pixels of the pipeline)
    flat = np.ascontiguousarray(img3).reshape(height, width * channels)
    out_flat = out.reshape(height, width * channels)
    run_bands(
        lambda i0, i1: _rec.recover_radiance(
            flat, t_c, light_c, unit, float(t0), do_clip, out_scale, out_flat, i0, i1
        ),
        height,
    )
    return out.reshape(image.shape)


def recover(
    image: ArrayLike,
    transmission: ArrayLike,
    atmospheric_light: ArrayLike,
    *,
    t0: float = 0.1,
    clip: bool = True,
) -> NDArray[Any]:
    """Recover the scene radiance J = (I − A) / max(t, t0) + A.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        The hazy image, uint8/uint16/float32/float64 (float in [0, 1]).
    transmission : (H, W) ndarray
        Transmission t, finite.
    atmospheric_light : float or (C,) array_like
        A on the [0, 1] scale, every component in (0, 1].
    t0 : float, optional
        Lower bound on t in (0, 1) (0.1 in the paper) so that noise is not amplified
        without bound.
    clip : bool, optional
        Clip J to [0, 1] (default). Integer outputs are always clipped to the dtype's
        range; ``clip=False`` keeps float outputs unclipped.

    Returns
    -------
    ndarray
        J with the input's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import recover
    >>> hazy = np.full((2, 2, 3), 0.6)
    >>> round(float(recover(hazy, np.full((2, 2), 0.5), 1.0)[0, 0, 0]), 6)
    0.2
    """
    arr = np.asarray(image)
    px, unit = as_pixels(arr)  # integer pixels are scaled as they are read (no float copy)
    t = check_float_map(transmission, "transmission", px.shape[:2])
    channels = 1 if px.ndim == 2 else px.shape[2]
    light = check_atmospheric_light(atmospheric_light, channels, working_dtype(px.dtype))
    lo = check_real(t0, "t0", low=0.0, high=1.0)
    if not isinstance(clip, (bool, np.bool_)):
        raise TypeError(f"clip must be True or False, got {clip!r}")
    return _recover(px, t, light, lo, bool(clip), arr.dtype, unit)


GUIDES = ("gray", "color")


@dataclass(frozen=True)
class DarkChannelPrior:
    """A dark-channel-prior dehazer: validated, reusable parameters; call it on images.

    The defaults were chosen by the documented sweep ``bench/sweep_dcp.py`` on the 60
    shared RESIDE SOTS-indoor pairs (docs/benchmarks.md): 21.91 dB / 0.890 SSIM there
    against 19.25 / 0.849 with the paper's parameters, and 17.46 / 0.877 against
    13.99 / 0.803 on the 12 SOTS-outdoor pairs, at the same cost. On SOTS scenes the sweep
    did not see they reach about 21.1 dB. :meth:`paper` gives He et al.'s parameters.

    Parameters
    ----------
    omega : float
        ω in (0, 1]: fraction of haze removed (0.95, as in the paper).
    t0 : float
        Lower bound on the transmission in (0, 1) during recovery (and depth); 0.3 (the
        paper uses 0.1, which amplifies noise in dense haze).
    patch_radius : int
        Dark-channel patch radius ≥ 0; 20 → 41 × 41 patch (the paper's is 7 → 15 × 15).
    guided_radius : int
        Guided-filter radius ≥ 0 used to refine the transmission; 80 (He uses 60 at ~600 px).
    eps : float
        Guided-filter regularisation ε > 0; 0.03 (the guided-filter paper uses 1e-4 for
        dehazing: a smaller ε keeps more texture of the guide in t).
    guide : {"gray", "color"}
        Gray (luma) guide, or the RGB image as a colour guide (3×3 solve per pixel). A gray
        input image always uses itself as the guide.
    subsample : int
        ≥ 1; > 1 uses the fast guided filter subsampled by this factor.
    atmospheric_light : float or sequence of float, optional
        A fixed A on the [0, 1] scale (components in (0, 1]); estimated per image when None.
    top_fraction : float
        Fraction of brightest dark-channel pixels searched for A; 0.05 (the paper: 0.001).

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import DarkChannelPrior
    >>> method = DarkChannelPrior(guided_radius=20, subsample=2)
    >>> hazy = (np.random.default_rng(0).random((64, 80, 3)) * 0.5 + 0.4).astype(np.float32)
    >>> result = method(hazy)
    >>> result.image.dtype, result.image.shape, result.transmission.shape
    (dtype('float32'), (64, 80, 3), (64, 80))
    """

    omega: float = 0.95
    t0: float = 0.3
    patch_radius: int = 20
    guided_radius: int = 80
    eps: float = 0.03
    guide: str = "gray"
    subsample: int = 1
    atmospheric_light: float | tuple[float, ...] | None = None
    top_fraction: float = 0.05

    @classmethod
    def paper(cls, **overrides: Any) -> DarkChannelPrior:
        """He et al.'s parameters: ω 0.95, t0 0.1, 15 × 15 patch, top 0.1 % for A.

        With the guided-filter refinement of He, Sun & Tang (2013): radius 60, ε = 1e-4,
        gray guide. ``overrides`` replace any of them.

        Examples
        --------
        >>> from dehaze import DarkChannelPrior
        >>> DarkChannelPrior.paper().patch_radius, DarkChannelPrior.paper(t0=0.2).t0
        (7, 0.2)
        """
        params: dict[str, Any] = {
            "omega": 0.95,
            "t0": 0.1,
            "patch_radius": 7,
            "guided_radius": 60,
            "eps": 1e-4,
            "guide": "gray",
            "top_fraction": 0.001,
        }
        params.update(overrides)
        return cls(**params)

    def __post_init__(self) -> None:
        check_real(self.omega, "omega", low=0.0, high=1.0, high_inclusive=True)
        check_real(self.t0, "t0", low=0.0, high=1.0)
        check_radius(self.patch_radius, "patch_radius")
        check_radius(self.guided_radius, "guided_radius")
        check_real(self.eps, "eps", low=0.0)
        check_choice(self.guide, "guide", GUIDES)
        check_radius(self.subsample, "subsample", minimum=1)
        check_real(self.top_fraction, "top_fraction", low=0.0, high=1.0, high_inclusive=True)
        if self.atmospheric_light is not None:
            light = np.asarray(self.atmospheric_light, dtype=np.float64)
            check_atmospheric_light(light, 1 if light.ndim == 0 else light.shape[0], np.float64)
            # store a hashable value so the frozen dataclass stays hashable
            value: float | tuple[float, ...] = (
                float(light) if light.ndim == 0 else tuple(float(v) for v in light)
            )
            object.__setattr__(self, "atmospheric_light", value)

    def __call__(self, image: ArrayLike) -> DehazeResult:
        """Dehaze ``image``; see :func:`dehaze.dehaze`."""
        return self._run(np.asarray(image))

    def _run(
        self, arr: NDArray[Any], light_rule: LightRule | None = None, name: str = "image"
    ) -> DehazeResult:
        """Run the pipeline; ``light_rule(pixels, dark, unit)``, if given, replaces He's rule.

        Internal hook for :mod:`dehaze.video`, which smooths A over frames from the dark
        channel the pipeline computes anyway (a fixed ``atmospheric_light`` still wins).
        """
        # integer pixels are read as they are and scaled inside the kernels (no float copy)
        px, unit = as_pixels(arr, name)
        wdt = working_dtype(px.dtype)
        channels = 1 if px.ndim == 2 else px.shape[2]
        dark = _dark_channel(px, self.patch_radius, unit=unit)
        if self.atmospheric_light is not None:
            light = check_atmospheric_light(self.atmospheric_light, channels, wdt)
        elif light_rule is not None:
            light = light_rule(px, dark, unit)
        else:
            light = _estimate_light(px, dark, self.top_fraction, unit)
        raw_t = _raw_transmission(px, light, self.omega, self.patch_radius, unit)
        if px.ndim == 2:
            guide = as_float_image(px)[:, :, np.newaxis]  # a view when px is float
        elif self.guide == "gray":
            guide = to_gray(px, unit)[:, :, np.newaxis]
        else:
            guide = as_float_image(px)
        radius = min(self.guided_radius, max(px.shape[:2]))
        refined = guided_filter_plane(guide, raw_t, radius, self.eps, self.subsample)
        return DehazeResult(
            image=_recover(px, refined, light, self.t0, True, arr.dtype, unit),
            transmission=refined,
            atmospheric_light=light,
            dark_channel=dark,
            depth=_depth(refined, 1.0, self.t0),
        )


def dehaze(
    image: ArrayLike,
    *,
    omega: float = 0.95,
    t0: float = 0.3,
    patch_radius: int = 20,
    guided_radius: int = 80,
    eps: float = 0.03,
    guide: str = "gray",
    subsample: int = 1,
    atmospheric_light: float | tuple[float, ...] | None = None,
    top_fraction: float = 0.05,
) -> DehazeResult:
    """Remove haze from one image with the dark channel prior.

    Parameters and defaults are those of :class:`DarkChannelPrior` (build one to reuse a
    configuration; ``DarkChannelPrior.paper()`` for He et al.'s parameters).

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        RGB or gray image; uint8, uint16, float32 or float64 (float in [0, 1]); any
        memory layout, read-only views included. The input is never modified.
    omega, t0, patch_radius, guided_radius, eps, guide, subsample, atmospheric_light, top_fraction
        See :class:`DarkChannelPrior`.

    Returns
    -------
    DehazeResult
        ``image`` (same dtype and shape as the input, clipped to its range),
        ``transmission``, ``atmospheric_light``, ``dark_channel`` and ``depth``.

    Examples
    --------
    >>> import numpy as np
    >>> import dehaze
    >>> hazy = np.full((40, 60, 3), 180, dtype=np.uint8)
    >>> hazy[10:30, 20:40] = (90, 120, 150)
    >>> result = dehaze.dehaze(hazy, guided_radius=10)
    >>> result.image.dtype, result.image.shape
    (dtype('uint8'), (40, 60, 3))
    """
    method = DarkChannelPrior(
        omega=omega,
        t0=t0,
        patch_radius=patch_radius,
        guided_radius=guided_radius,
        eps=eps,
        guide=guide,
        subsample=subsample,
        atmospheric_light=atmospheric_light,
        top_fraction=top_fraction,
    )
    return method(image)
