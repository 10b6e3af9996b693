"""The default dehazer: clears dense haze, leaves sky alone, gives the same result at any size.

:class:`ClearHaze` is the dark-channel pipeline (He, Sun & Tang 2009/2011) with the swept
parameters of :class:`dehaze.DarkChannelPrior`, changed by five rules (developed and measured
on the shared real photos, O-HAZE and SOTS; docs/benchmarks.md gives the steps and scores):

1. **A fixed working resolution.** Every windowed stage (dark channel, atmospheric light,
   noise level, signal measures, guided-filter coefficients) runs on the image averaged over
   k × k blocks, k = round(short side / ``working_size``), with radii given for a working
   image of short side ``radii_size`` (by default ``working_size``) and scaled by the
   working image's short side over it, so a window covers the same part of the scene at
   every resolution. The transmission comes back to
   full size by the fast guided filter's idea (He & Sun 2015): its coefficients are computed
   at the working scale, upsampled and applied to the full-resolution luma, so t follows
   full-resolution edges. A half-size preview agrees with the full-size result.

2. **Recovery where there is something to recover** (sky versus dense haze, decided per
   pixel, with no sky detector and no whole-image switch). Sky, bright walls and dense fog are
   all close to A, so the dark channel cannot tell them apart; what differs is whether the
   neighbourhood carries structure above the noise, or lies clearly away from A. A weight
   w ∈ [0, 1] says how much of the recovery a pixel gets: the gain 1/t becomes 1 + w (1/t − 1),
   i.e. the recovery uses t_rec = t / (t + w (1 − t)). w is the larger of

   * the detail signal-to-noise weight max(0, 1 − (k σ / S)²) (Wiener's gain): S is the RMS,
     over a ``signal_radius`` window, of the luma minus its Gaussian blur (``detail_sigma``),
     σ the image's noise level (:func:`dehaze.noise.noise_sigma`, global), k = ``snr_margin``;
     spread by a max filter of ``reach_radius``, so a flat wall between textured objects in
     dense haze is dehazed with them while the inside of a large flat sky is not;
   * the distance-to-A weight max(0, 1 − (K / |Ī − A|)²), Ī the local mean colour,
     K = ``sky_tolerance``: a flat region clearly away from A (a road under thin haze) is
     dehazed even without texture.

   Both are refined by the guided filter (small ε, so w follows edges).

3. **A detail layer whose gain follows its own SNR.** The image is split into a base (the
   working-scale Gaussian blur, upsampled) and the detail I − base, which carries the noise,
   JPEG blocks and 8-bit steps; the base gets the gain 1/t_rec, the detail 1 + w_d (1/t_rec − 1)
   with w_d the (unspread) detail weight: structure in dense haze is amplified, noise in flat
   areas is not.

4. **A radiance box** (Meng et al. 2013, upper side, :func:`dehaze.transmission_map.\
boundary_transmission`): t is never below the value that keeps J ≤ 1, so pixels brighter
   than A (the sun, a white wall) are not blown out.

5. **A from many pixels.** He's rule takes A from the single brightest of the pixels with
   the largest dark channel; which pixel that is depends on the sampling (a white object,
   the block average of the working image), so the same scene at another resolution got
   another A. A is the mean colour of the brightest ``bright_fraction`` (1 %) of those
   candidates instead (:func:`dehaze.atmosphere.bright_mean_light`).

The depth map is computed from the physical transmission (before rule 2), so the sky is far.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._lazy import lazy_module
from dehaze._parallel import BandPlan, current_threads, run_bands, serial_bands
from dehaze._validate import (
    FloatArray,
    as_float_image,
    as_pixels,
    check_buffer,
    check_choice,
    check_eps,
    check_radius,
    check_real,
    check_t0,
    check_unit,
    check_values,
)
from dehaze.atmosphere import bright_mean_light
from dehaze.guided import GRAY_WEIGHTS, grid_weights, guided_coefficients, to_gray
from dehaze.noise import noise_sigma
from dehaze.result import ALL_OUTPUTS, DehazeResult, LightScene, check_outputs, check_scene

if TYPE_CHECKING:
    import cv2

    from dehaze._kernels import clear as _ck
else:
    cv2 = lazy_module("cv2")  # OpenCV too (dehaze/_lazy.py)
    _ck = lazy_module("dehaze._kernels.clear")  # Numba is imported on first use

__all__ = ["ClearHaze", "ClearPlanes", "ClearScene", "dehaze"]

#: Accepted values of ClearHaze's ``precision``: the float type it computes in.
PRECISIONS = ("float32", "float64")

#: Largest ``snr_margin`` k. The detail weight is 1 − (k σ)² / S², with the noise level
#: σ ≤ 1 and the energy S² ≥ 1e-12, computed in float32: k ≤ 1e6 keeps (k σ)² ≤ 1e12 and
#: the ratio ≤ 1e24, finite (a larger k overflows, in Python's float arithmetic from
#: 1.3e154). Already k = 1e3 sets the weight to 0 wherever S < 1000 σ.
MAX_SNR_MARGIN = 1e6

#: Largest ``detail_sigma``. The Gaussian's σ in working pixels is ``detail_sigma`` times
#: the working short side / ``radii_size`` (≤ 1e4 for any image that fits in memory);
#: OpenCV sizes the kernel as 8 σ + 1 in a 32-bit int, which overflows past σ ≈ 2.7e8. At
#: 1e4 the blur is far wider than any working image (its short side is ``radii_size``).
MAX_DETAIL_SIGMA = 1e4

#: The two working-scale guided filters, one per thread.
_TWO_BANDS = BandPlan(2, (0, 1, 2))


#: Most bytes of scratch arrays a thread keeps between calls (:class:`_Scratch`): those of a
#: 620 × 460 RGB working image, the intermediate maps and the planes stack (~37 MB); a
#: longer working image keeps what fits.
_WORKSPACE_BYTES = 48 << 20
_scratch = threading.local()


class _Scratch:
    """Named scratch arrays for the working-scale stages of one call.

    The stages allocate and free some twenty arrays of the working image's size on every
    call. With glibc's adaptive malloc, freed blocks that size are returned to the system
    and page-faulted in again on the next call: a loop of ``dehaze.dehaze`` over SOTS images
    (620 × 460, where the working image is the whole image) took 20–24 ms per image against
    14 ms with the memory kept (the planes stack alone: ~6000 faults, a third of a call's
    CPU time). The calling thread keeps one of these between its calls
    (:func:`_workspace`) and both chains of stages take their arrays from it by distinct
    names (never from the thread they run on, which may serve another caller next), so
    nothing in it outlives the call that uses it, except the planes stack of a
    ``reuse`` call (:meth:`ClearHaze.working_planes`), which the thread's next call
    overwrites. Arrays beyond :data:`_WORKSPACE_BYTES` in all (a long panorama's) are
    allocated afresh on every call.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, NDArray[Any]] = {}
        self._lock = threading.Lock()  # the two chains take their arrays at the same time

    def take(self, name: str, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
        """Return the (uninitialised) array ``name`` of this shape and dtype.

        Kept for the next call while all kept arrays stay within :data:`_WORKSPACE_BYTES`.
        """
        with self._lock:
            found = self._arrays.get(name)
            if found is not None and found.shape == shape and found.dtype == dtype:
                return found
            self._arrays.pop(name, None)
            array = np.empty(shape, dtype=dtype)
            kept = sum(a.nbytes for a in self._arrays.values())
            if kept + array.nbytes <= _WORKSPACE_BYTES:
                self._arrays[name] = array
            return array

    def like(self, name: str, plane: NDArray[Any], channels: int = 0) -> NDArray[Any]:
        """Return ``name`` shaped as ``plane`` (H×W) or as H×W×``channels``."""
        shape = plane.shape[:2] + ((channels,) if channels else ())
        return self.take(name, shape, plane.dtype)


def _release_scratch() -> None:
    """Drop the calling thread's kept scratch (the next call allocates)."""
    _scratch.__dict__.clear()


def _workspace() -> _Scratch:
    """Return the calling thread's scratch (see :class:`_Scratch`)."""
    found: _Scratch | None = getattr(_scratch, "workspace", None)
    if found is None:
        found = _scratch.workspace = _Scratch()
    return found


@dataclass(frozen=True, eq=False)
class ClearScene(LightScene):
    """The whole-image statistics of :class:`ClearHaze`.

    Attributes
    ----------
    atmospheric_light : (C,) float64 ndarray
        A on the [0, 1] scale (estimated on the working image).
    factor : int
        k ≥ 1: the working image is the input averaged over k × k blocks.
    extent : float
        The working image's short side over ``radii_size`` (by default ``working_size``):
        every radius is scaled by it.
    noise_sigma : float
        Noise level of the working image's luma (:func:`dehaze.noise.noise_sigma`).
    """

    factor: int
    extent: float
    noise_sigma: float


#: Bilinear sampling of the planes along one axis: (lo, hi, frac), see grid_weights.
_Weights = tuple[NDArray[np.uintp], NDArray[np.uintp], FloatArray]


@dataclass(frozen=True, eq=False)
class ClearPlanes:
    """The working-scale maps of a whole image that :class:`ClearHaze` upsamples.

    Attributes
    ----------
    planes : (P, h, w) float ndarray
        The transmission's and the weight's guided-filter coefficients, the detail weight
        and the base layer's channels, at the working scale (h = ⌈H / k⌉, w = ⌈W / k⌉).
    light : (C,) float ndarray
        A in the planes' dtype.
    factor : int
        k, the block size of the working image.
    """

    planes: FloatArray
    light: FloatArray
    factor: int
    #: Sampling weights already computed for these planes, by (length, start, axis): the
    #: strips of one image share their columns' (3840 of them at 4K, ~60 µs a strip).
    _weights: dict[tuple[int, int, int], _Weights] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def weights(self, length: int, start: int, axis: int) -> _Weights:
        """Return :func:`dehaze.guided.grid_weights` of ``length`` pixels from ``start``.

        ``axis`` 0 samples the planes' rows, 1 their columns; computed once per planes
        (the arrays are shared: kernels only read them).
        """
        key = (length, start, axis)
        found = self._weights.get(key)
        if found is None:
            small = self.planes.shape[1 + axis]
            found = grid_weights(length, small, self.factor, self.planes.dtype, start=start)
            self._weights[key] = found  # a race computes the same arrays twice: harmless
        return found


def _check_clear_scene(scene: Any) -> ClearScene:
    checked = check_scene(scene, ClearScene, "ClearHaze")
    if checked.factor < 1 or not checked.extent > 0 or not checked.noise_sigma >= 0:
        raise ValueError(
            "scene must come from ClearHaze.estimate: factor >= 1, extent > 0 and "
            f"noise_sigma >= 0, got {checked.factor}, {checked.extent}, {checked.noise_sigma}"
        )
    return checked


_T = TypeVar("_T")
_U = TypeVar("_U")


def _in_parallel(first: Callable[[], _T], second: Callable[[], _U]) -> tuple[_T, _U]:
    """Run two independent stages, on two threads when the calling thread may use two.

    The working-scale stages are OpenCV, NumPy and Numba calls that release the GIL, each
    too small to split into bands; two independent chains of them overlap instead. The
    results are those of running them one after the other. ``second`` runs in a pool
    thread with its own banded kernels run in turn on that thread
    (:func:`dehaze._parallel.serial_bands`), so it never waits for the pool it runs in.
    """
    if current_threads() == 1:
        return first(), second()
    results: list[Any] = [None, None]

    def run(start: int, stop: int) -> None:
        if start == 0:
            results[0] = first()
        else:
            with serial_bands():
                results[1] = second()

    run_bands(run, 2, plan=_TWO_BANDS)
    return results[0], results[1]


class _Radii(NamedTuple):
    """Window sizes in working pixels for one scene."""

    patch: int
    guided: int
    signal: int
    reach: int
    sigma: float


def _block_mean(
    px: NDArray[Any],
    unit: float,
    factor: int,
    wdt: np.dtype[Any],
    scratch: _Scratch | None = None,
    *,
    name: str = "",
) -> FloatArray:
    """Average validated pixels over ``factor`` × ``factor`` blocks, on the [0, 1] scale.

    The result is of the float dtype ``wdt`` (the method's ``precision``). For factor 1 it
    is the image itself as floats (as is when it is already of that dtype). Otherwise
    ⌈H / k⌉ × ⌈W / k⌉ blocks, a block cut by the image's edge averaged over its own pixels,
    each summed in a fixed order, exactly for integer pixels
    (:func:`dehaze._kernels.clear.block_mean`): the blocks of a tile whose origin is a
    multiple of k are the whole image's, bit for bit. With ``scratch`` the result is its
    array ``"work"`` (an image already of dtype ``wdt`` at k = 1 is returned as is).

    With a ``name``, the pixels' values have not been checked yet (``as_pixels(...,
    values=False)``): the block-means kernel checks each block row after its sums, while
    it is in cache (k > 1: no pass of its own over the image), or :func:`check_values`
    does (k = 1), and an invalid image raises its error under that name.
    """
    if factor == 1:
        if name:
            check_values(px, name)
        if px.dtype == wdt:
            return cast(FloatArray, px)  # validated floats in [0, 1]: the image itself
        out1 = np.empty(px.shape, wdt) if scratch is None else scratch.take("work", px.shape, wdt)
        if px.dtype.kind == "u":  # as_float_image's product, into the working array
            np.multiply(px, wdt.type(1.0 / np.iinfo(px.dtype).max), dtype=wdt, out=out1)
        else:
            np.copyto(out1, px, casting="same_kind")
        return out1
    height, width = px.shape[:2]
    channels = 1 if px.ndim == 2 else px.shape[2]
    small_h, small_w = -(-height // factor), -(-width // factor)
    shape = (small_h, small_w * channels)
    out = np.empty(shape, dtype=wdt) if scratch is None else scratch.take("work", shape, wdt)
    flat = px.reshape(height, width * channels)
    sums = _ck.column_sum_dtype(px.dtype, factor)
    floats = px.dtype.kind == "f"
    zero = np.float64(0.0) if floats else np.int64(0)
    checks = bool(name) and floats
    # float pixels: one flag per block row (none to skip); integers cannot be out of range
    outside = np.zeros(small_h if checks else 0, dtype=np.uint8) if floats else None

    def blocks(b0: int, b1: int) -> None:
        scratch = np.empty(flat.shape[1], dtype=sums)
        _ck.block_mean(flat, channels, factor, unit, out, b0, b1, scratch, zero, outside)

    run_bands(blocks, small_h)
    if checks and outside is not None and outside.any():
        check_values(px, name)  # raises: a value is NaN or outside [0, 1]
    shaped = out.reshape(small_h, small_w, *px.shape[2:])
    clipped: FloatArray = np.clip(shaped, 0.0, 1.0, out=shaped)
    return clipped


def _box_mean(plane: FloatArray, radius: int, out: FloatArray | None = None) -> FloatArray:
    """Mean over the (2r + 1)² window (OpenCV, reflected border), into ``out`` if given."""
    size = (2 * radius + 1, 2 * radius + 1)
    mean = cv2.boxFilter(plane, -1, size, dst=out, normalize=True, borderType=cv2.BORDER_REFLECT)
    return cast(FloatArray, mean)


def _luma(image: FloatArray, scratch: _Scratch | None = None, name: str = "luma") -> FloatArray:
    """Rec. 601 luma of a working image (a gray one is returned as is).

    float32 through OpenCV (the same weights as :func:`dehaze.guided.to_gray`, within one
    float32 ulp of it, tested), which needs no kernel compiled, into ``scratch``'s array
    ``name`` if given; float64 through ``to_gray``.
    """
    if image.ndim == 2:
        return image
    if image.dtype == np.float32 and image.shape[2] == 3:
        src = np.ascontiguousarray(image)
        out = None if scratch is None else scratch.like(name, image)
        return cast(FloatArray, cv2.cvtColor(src, cv2.COLOR_RGB2GRAY, dst=out))
    return to_gray(np.ascontiguousarray(image))


def _window(plane: FloatArray, radius: int) -> NDArray[np.uint8]:
    """Return the (2r + 1)² structuring element of a min/max filter, clipped to the plane."""
    height, width = plane.shape
    return np.ones((2 * min(radius, height - 1) + 1, 2 * min(radius, width - 1) + 1), np.uint8)


def _min_window(plane: FloatArray, radius: int, out: FloatArray | None = None) -> FloatArray:
    """Minimum over the (2r + 1)² window clipped to the plane.

    OpenCV's erosion: its default border (+∞ outside) makes the windows the clipped ones
    of :func:`dehaze.filters.min_filter_plane`, and a minimum is exact, so the two agree
    bit for bit (tested); at the working scale it is as fast, and compiles nothing.
    """
    return cast(FloatArray, cv2.erode(plane, _window(plane, radius), dst=out))


def _max_window(plane: FloatArray, radius: int, out: FloatArray | None = None) -> FloatArray:
    """Maximum over the (2r + 1)² window clipped to the plane (OpenCV's dilation)."""
    return cast(FloatArray, cv2.dilate(plane, _window(plane, radius), dst=out))


def _dark_channel(
    image: FloatArray, radius: int, scratch: _Scratch | None = None, name: str = "dark"
) -> FloatArray:
    """Dark channel of a float working image: min over channels, then the window minimum.

    The numbers of :func:`dehaze.transmission_map.dark_channel_plane`. With ``scratch`` its
    arrays ``name`` (the result) and ``name + "-min"`` are used.
    """
    work = _Scratch() if scratch is None else scratch  # a throw-away one: fresh arrays
    first = image if image.ndim == 2 else image[:, :, 0]
    if image.ndim == 2:
        channel_min = np.ascontiguousarray(image)
    else:
        channel_min = work.like(name + "-min", first)
        np.copyto(channel_min, first)  # a C-contiguous copy
        for c in range(1, image.shape[2]):
            np.minimum(channel_min, image[:, :, c], out=channel_min)
    return _min_window(channel_min, radius, work.like(name, first))


def _interleaved(image: FloatArray) -> FloatArray:
    """Return a working-scale image as C-contiguous H × (W·C) rows (a gray one: C = 1)."""
    return np.ascontiguousarray(image).reshape(image.shape[0], -1)


def _three_equal(plane: FloatArray, scratch: _Scratch, name: str) -> FloatArray:
    """Return an H×W plane as H × (W·3) rows of three equal channels (``scratch``'s ``name``)."""
    height, width = plane.shape
    out = scratch.take(name, (height, width * 3), plane.dtype)
    out.reshape(height, width, 3)[:] = plane[:, :, np.newaxis]
    return out


@dataclass(frozen=True)
class ClearHaze:
    """Dehaze real photos: clears dense haze, leaves sky and flat bright areas, scale-free.

    Radii are in pixels of the working image (the input averaged over k × k blocks to a short
    side near ``working_size``, see the module notes); at SOTS's 620 × 460 the working image
    is the input itself, so they are also their 620 × 460 equivalents.

    Parameters
    ----------
    working_size : int
        Short side ≥ 16, in pixels, that sets the working resolution and, unless
        ``radii_size`` is given, the scale of every radius (400).
    patch_radius : int
        Dark-channel patch radius ≥ 0 (20 → 41 × 41 at the working size).
    guided_radius : int
        Guided-filter radius ≥ 1 for the transmission and the weight (80).
    eps : float
        Guided-filter ε ≥ 1e-12 for the transmission (0.03, the swept value of DCP).
    omega : float
        Fraction of the haze removed by the prior, in (0, 1].
    t0 : float
        Lowest transmission used in recovery, in [0.001, 1) (0.2: at most a 5× gain; the
        lower end is :data:`dehaze._validate.MIN_T0`).
    top_fraction : float
        Fraction in (0, 1] of the brightest dark-channel pixels whose brightest give A (rule 5).
    signal_radius : int
        Radius ≥ 1 of the window of the detail energy S and of the local mean colour.
    snr_margin : float
        k in (0, 1e6]: a neighbourhood is recovered fully when its detail RMS is well above
        k σ (:data:`MAX_SNR_MARGIN`: a larger k overflows (k σ)²).
    reach_radius : int
        Radius ≥ 0 of the max filter that spreads the detail weight to flat neighbours.
    sky_tolerance : float
        K in (0, 1]: distance to A (largest channel) beyond which a flat region is recovered
        without texture.
    weight_eps : float
        Guided-filter ε ≥ 1e-12 for the weight (small, so the weight follows edges).
    detail_sigma : float
        Gaussian σ in (0, 1e4], in working pixels, separating the base from the detail layer
        (:data:`MAX_DETAIL_SIGMA`: OpenCV's kernel size overflows far above it).
    bright_fraction : float
        Fraction in (0, 1] of the ``top_fraction`` candidates, the brightest, whose mean
        colour is A (0.01; He's rule takes the single brightest pixel, see rule 5).
    radii_size : int or None
        Short side ≥ 16 of the working image the radii (and ``detail_sigma``) are given for;
        None (default): ``working_size``, so a smaller working size also makes every window
        a larger part of the image. Given, the windows stay the same part of the image
        whatever the working size, which then only sets how finely they are sampled:
        ``ClearHaze(working_size=200, radii_size=400)`` (the command line's ``--fast``)
        computes the default's windows at half its working resolution, 1.7–1.9× faster at
        1080p and 4K (image only), and gives an image close to the default's: 35.9 dB on
        average over the 41 real photos and the two O-HAZE images (median 35.7, lowest
        16.0 on the dense fog of fishers.jpg), against 27.5 dB with ``working_size=200``
        alone, whose windows are twice as large.
    precision : {"float32", "float64"}
        Float type of the working arrays, the arithmetic and the returned maps, whatever the
        input's dtype. "float32" (default): a float64 image is read as float64 and its
        result returned as float64, computed in float32 like every other dtype (within
        about 1e-6 of "float64", far below any camera's 16 bits; the working maps move half
        the bytes, and a float64 image takes 1.3–1.7× the float32 time instead of
        1.6–2.1×). "float64": float64 arithmetic throughout, as the float64 reference of
        the tests.

    Notes
    -----
    Two phases (:class:`dehaze.result.Method`): :meth:`estimate` finds the working scale,
    A and the noise level on the whole image; :meth:`apply` runs local stages only.

    Memory kept between calls: each thread that calls ClearHaze keeps its working-scale
    arrays (the intermediate maps and the planes stack, at most 48 MB; 37 MB for 620 × 460
    RGB images, whose working image is the whole image), so that a loop over images does
    not page-fault them in again on every call (20–24 → 14 ms per SOTS image).

    References
    ----------
    .. [1] K. He, J. Sun and X. Tang, "Single image haze removal using dark channel prior",
       IEEE TPAMI 33(12), 2011.
    .. [2] K. He and J. Sun, "Fast guided filter", arXiv:1505.00996, 2015.
    .. [3] G. Meng, Y. Wang, J. Duan, S. Xiang and C. Pan, "Efficient image dehazing with
       boundary constraint and contextual regularization", ICCV 2013.
    .. [4] N. Wiener, "Extrapolation, interpolation, and smoothing of stationary time
       series", MIT Press, 1949 (the gain S² / (S² + N²) the detail weight follows).

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import ClearHaze
    >>> hazy = (np.random.default_rng(0).random((64, 80, 3)) * 0.4 + 0.5).astype(np.float32)
    >>> result = ClearHaze()(hazy)
    >>> result.image.dtype, result.image.shape, result.depth.shape
    (dtype('float32'), (64, 80, 3), (64, 80))
    """

    working_size: int = 400
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
    bright_fraction: float = 0.01
    precision: str = "float32"
    radii_size: int | None = None

    def __post_init__(self) -> None:
        check_radius(self.working_size, "working_size", minimum=16)
        if self.radii_size is not None:
            check_radius(self.radii_size, "radii_size", minimum=16)
        check_radius(self.patch_radius, "patch_radius")
        check_radius(self.guided_radius, "guided_radius", minimum=1)
        check_eps(self.eps)
        check_real(self.omega, "omega", low=0.0, high=1.0, high_inclusive=True)
        check_t0(self.t0)
        check_real(self.top_fraction, "top_fraction", low=0.0, high=1.0, high_inclusive=True)
        check_radius(self.signal_radius, "signal_radius", minimum=1)
        check_real(self.snr_margin, "snr_margin", low=0.0, high=MAX_SNR_MARGIN, high_inclusive=True)
        check_radius(self.reach_radius, "reach_radius")
        check_unit(self.sky_tolerance, "sky_tolerance")
        if self.sky_tolerance == 0.0:
            raise ValueError("sky_tolerance must be in (0, 1], got 0.0")
        check_eps(self.weight_eps, "weight_eps")
        check_real(
            self.detail_sigma, "detail_sigma", low=0.0, high=MAX_DETAIL_SIGMA, high_inclusive=True
        )
        check_real(self.bright_fraction, "bright_fraction", low=0.0, high=1.0, high_inclusive=True)
        check_choice(self.precision, "precision", PRECISIONS)

    @property
    def _dtype(self) -> np.dtype[Any]:
        """The float dtype of the working arrays and the maps (``precision``)."""
        return np.dtype(self.precision)

    # --- scale ----------------------------------------------------------------------------

    @property
    def _radii_size(self) -> int:
        """The working short side the radii are given for (``radii_size``)."""
        return self.working_size if self.radii_size is None else self.radii_size

    def _radii(self, extent: float) -> _Radii:
        return _Radii(
            patch=round(self.patch_radius * extent),
            guided=max(1, round(self.guided_radius * extent)),
            signal=max(1, round(self.signal_radius * extent)),
            reach=round(self.reach_radius * extent),
            sigma=self.detail_sigma * extent,
        )

    @staticmethod
    def _working_halo(radii: _Radii) -> int:
        # the weight path is the deepest: Gaussian (OpenCV truncates at 4 σ), detail window,
        # max filter; then the guided filter's window of windows (2 r), +1 for the upsampling
        weight = math.ceil(4.0 * radii.sigma) + radii.signal + radii.reach
        return max(radii.patch, weight) + 2 * radii.guided + 1

    @property
    def halo(self) -> int:
        """Context of :meth:`apply` at the working size, in working pixels.

        For an image of another size the radii and the working scale change with it:
        :meth:`halo_for` gives the halo in input pixels for an image's scene.
        """
        return self._working_halo(self._radii(self.working_size / self._radii_size))

    def halo_for(self, scene: ClearScene) -> int:
        """Return how far (input pixels) an output pixel of :meth:`apply` looks, for this scene.

        (working halo + 1 for the block average) × k: a tile processed with this margin on
        every side, its origin a multiple of k, reproduces the whole-image result inside.
        """
        checked = check_scene(scene, ClearScene, "ClearHaze")
        return (self._working_halo(self._radii(checked.extent)) + 1) * checked.factor

    # --- the two phases ---------------------------------------------------------------------

    def estimate(self, image: ArrayLike) -> ClearScene:
        """Working scale, atmospheric light and noise level of ``image``.

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            uint8/uint16/float32/float64 image (float in [0, 1]).

        Returns
        -------
        ClearScene
            k, the radius scale, A (rule 5 on the working image, at least 1e-3) and σ.
        """
        arr = np.asarray(image)
        px, unit = as_pixels(arr, values=False)  # checked by the block means' pass
        factor = self.working_factor(arr.shape)
        scratch = _workspace()
        work = _block_mean(px, unit, factor, self._dtype, scratch, name="image")
        return self._scene(work, factor, scratch)[0]

    def apply(
        self,
        image: ArrayLike,
        scene: ClearScene,
        *,
        outputs: Collection[str] = ALL_OUTPUTS,
    ) -> DehazeResult:
        """Dehaze ``image`` with the global statistics of ``scene`` (local stages only).

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            uint8/uint16/float32/float64 image (float in [0, 1]).
        scene : ClearScene
            From :meth:`estimate` (of this image, of the whole image a tile comes from, or
            smoothed over video frames).
        outputs : collection of str, optional
            Optional planes, from ``{"transmission", "depth"}`` (no dark channel at full
            size); default all.

        Returns
        -------
        DehazeResult
            ``image`` in the input's dtype, the ``transmission`` the image was recovered
            with (t_rec, in [t0, 1]), A and the ``depth`` −ln t of the physical transmission
            (the maps in the ``precision`` dtype).
        """
        arr = np.asarray(image)
        wanted = check_outputs(outputs)
        px, unit = as_pixels(arr, values=False)  # checked by the block means' pass
        checked = _check_clear_scene(scene)
        scratch = _workspace()
        work = _block_mean(px, unit, checked.factor, self._dtype, scratch, name="image")
        work_luma = _luma(work, scratch)
        planes = self._planes(work, work_luma, checked, scratch, reuse=True)
        return self._recover(arr, px, unit, planes, (0, 0), wanted)

    def __call__(self, image: ArrayLike, *, outputs: Collection[str] = ALL_OUTPUTS) -> DehazeResult:
        """Dehaze ``image``; same as ``apply(image, estimate(image), outputs=outputs)``."""
        wanted = check_outputs(outputs)
        arr = np.asarray(image)
        px, unit = as_pixels(arr, values=False)  # checked by the block means' pass
        factor = self.working_factor(arr.shape)
        scratch = _workspace()
        work = _block_mean(px, unit, factor, self._dtype, scratch, name="image")
        scene, work_luma = self._scene(work, factor, scratch)
        planes = self._planes(work, work_luma, scene, scratch, reuse=True)
        return self._recover(arr, px, unit, planes, (0, 0), wanted)

    # --- the pieces, for images processed in tiles (dehaze.tiles) ---------------------------

    def working_factor(self, shape: tuple[int, ...]) -> int:
        """Return k, the block size of the working image, for an image of ``shape``.

        k = round(short side / ``working_size``), at least 1.
        """
        return max(1, round(min(shape[:2]) / self.working_size))

    def working_image(self, image: ArrayLike, factor: int) -> FloatArray:
        """Return ``image`` averaged over ``factor`` × ``factor`` blocks, on the [0, 1] scale.

        ⌈H / k⌉ × ⌈W / k⌉ blocks (a block cut by the edge averages its own pixels), each
        summed in a fixed order: the working image of a tile whose origin and size are
        multiples of k is the matching part of the whole image's, bit for bit.
        """
        px, unit = as_pixels(np.asarray(image))
        return _block_mean(px, unit, check_radius(factor, "factor", minimum=1), self._dtype)

    def estimate_working(self, work: FloatArray, factor: int) -> ClearScene:
        """Return the scene of an image from its working image (what :meth:`estimate` does).

        ``work`` is :meth:`working_image` of the whole image with k = ``factor``.
        """
        return self._scene(as_float_image(work, "work"), factor, _workspace())[0]

    def working_planes(
        self, work: FloatArray, scene: ClearScene, *, reuse: bool = False
    ) -> ClearPlanes:
        """Return the working-scale maps :meth:`apply_planes` upsamples, for a whole image.

        Every windowed stage runs here, on the (small) working image; what is left at full
        size is per pixel. ``work`` is the whole image's :meth:`working_image` at
        ``scene.factor``. With ``reuse`` the maps are written into the calling thread's
        scratch buffer, which its next ClearHaze call overwrites: for a caller whose planes
        do not outlive its call (:func:`dehaze.tiles.dehaze_tiled`), it saves allocating
        (and page-faulting in) the largest working-scale array on every image.
        """
        checked = _check_clear_scene(scene)
        img = as_float_image(work, "work")
        scratch = _workspace()
        work_luma = _luma(img, scratch)
        return self._planes(img, work_luma, checked, scratch, reuse=reuse)

    def apply_planes(
        self,
        image: ArrayLike,
        planes: ClearPlanes,
        *,
        origin: tuple[int, int] = (0, 0),
        shape: tuple[int, int] | None = None,
        outputs: Collection[str] = ALL_OUTPUTS,
        out: NDArray[Any] | None = None,
    ) -> DehazeResult:
        """Dehaze a region of an image from the whole image's :meth:`working_planes`.

        Parameters
        ----------
        image : (h, w, 3) or (h, w) ndarray
            The region's pixels (uint8/uint16/float32/float64).
        planes : ClearPlanes
            From :meth:`working_planes` of the whole image.
        origin : (int, int)
            Row and column of the region's first pixel in the whole image.
        shape : (int, int), optional
            The whole image's height and width (default: the region is the whole image).
        outputs : collection of str, optional
            As for :meth:`apply`.
        out : ndarray, optional
            A C-contiguous array of the region's shape and dtype to write the image into
            (returned as ``result.image``): a tiled run writes straight into its output.

        Returns
        -------
        DehazeResult
            The region's part of what :meth:`apply` returns for the whole image, bit for bit.
        """
        arr = np.asarray(image)
        wanted = check_outputs(outputs)
        px, unit = as_pixels(arr)
        y0, x0 = (int(v) for v in origin)
        height, width = (px.shape[0], px.shape[1]) if shape is None else shape
        if y0 < 0 or x0 < 0 or y0 + px.shape[0] > height or x0 + px.shape[1] > width:
            raise ValueError(
                f"the region at origin {origin} of shape {px.shape[:2]} must lie inside the "
                f"image of shape {(height, width)}"
            )
        small_h, small_w = planes.planes.shape[1:]
        k = planes.factor
        if -(-height // k) != small_h or -(-width // k) != small_w:
            raise ValueError(
                f"planes are for an image of {small_h}×{small_w} blocks of {k} pixels, not "
                f"for shape {(height, width)}"
            )
        if out is not None:
            check_buffer(out, "out", arr.shape, arr.dtype)
        return self._recover(arr, px, unit, planes, (y0, x0), wanted, out)

    # --- internals -------------------------------------------------------------------------

    def _scene(
        self, work: FloatArray, factor: int, scratch: _Scratch
    ) -> tuple[ClearScene, FloatArray]:
        """Return the scene from the working image, and the working luma (in ``scratch``)."""
        extent = min(work.shape[:2]) / self._radii_size
        radii = self._radii(extent)

        def luma_and_noise() -> tuple[FloatArray, float]:
            luma = _luma(work, scratch)
            wide = scratch.take("noise-copy", luma.shape, np.float64)
            response = scratch.take("noise-response", luma.shape, np.float64)
            return luma, noise_sigma(luma, buffers=(wide, response))

        def atmospheric_light() -> FloatArray:
            dark = _dark_channel(work, radii.patch, scratch=scratch, name="dark")
            return bright_mean_light(work, dark, self.top_fraction, self.bright_fraction)

        light, (work_luma, sigma) = _in_parallel(atmospheric_light, luma_and_noise)
        return ClearScene(light.astype(np.float64), factor, extent, sigma), work_luma

    def _planes(
        self,
        work: FloatArray,
        work_luma: FloatArray,
        scene: ClearScene,
        scratch: _Scratch,
        reuse: bool = False,
    ) -> ClearPlanes:
        """Return the working-scale planes; with ``reuse``, in this thread's scratch buffer.

        ``reuse`` is for calls whose planes do not outlive them (:meth:`__call__`,
        :meth:`apply`): the next call in the same thread overwrites the buffer. The
        intermediate maps are ``scratch``'s arrays, distinct names in the two chains.
        """
        light = scene.light_for(work)
        radii = self._radii(scene.extent)
        height, width = work.shape[:2]
        channels = 1 if work.ndim == 2 else work.shape[2]
        # every map is written straight into its plane of the stack (no concatenation)
        shape = (_ck.BASE + channels, height, width)
        stack = scratch.take("planes", shape, work.dtype) if reuse else np.empty(shape, work.dtype)

        def transmission_side() -> FloatArray:
            # the physical t and its guided coefficients; the distance-to-A weight
            physical, far = self._physical_and_far(work, light, radii, scratch)
            out = stack[_ck.A_T : _ck.B_T + 1]
            ab = scratch.take("ab", out.shape, out.dtype)
            guided_coefficients(work_luma, physical, radii.guided, self.eps, out, scratch=ab)
            return far

        # two independent chains of stages, one per thread
        far, weight = _in_parallel(
            transmission_side,
            lambda: self._detail_weights(work, work_luma, scene, radii, stack, scratch),
        )
        np.maximum(weight, far, out=weight)
        out = stack[_ck.A_W : _ck.B_W + 1]
        ab = scratch.take("ab", out.shape, out.dtype)  # the first chain is done with it
        guided_coefficients(work_luma, weight, radii.guided, self.weight_eps, out, scratch=ab)
        return ClearPlanes(stack, light, scene.factor)

    def _recover(
        self,
        arr: NDArray[Any],
        px: NDArray[Any],
        unit: float,
        plan: ClearPlanes,
        origin: tuple[int, int],
        wanted: Collection[str],
        out_image: NDArray[Any] | None = None,
    ) -> DehazeResult:
        """Run the full-resolution pass over ``px``, a region at ``origin`` of the image."""
        planes = plan.planes
        dtype = planes.dtype
        if dtype != self._dtype:
            raise ValueError(
                f"planes are {dtype} but this ClearHaze works in {self.precision} "
                "(its precision parameter)"
            )
        height, width = px.shape[:2]
        y0, x0 = origin
        # the whole image's sampling positions, cut to the region (exact tiles)
        rows = plan.weights(height, y0, 0)
        cols = plan.weights(width, x0, 1)
        channels = 1 if px.ndim == 2 else px.shape[2]
        if channels != plan.light.shape[0]:
            raise ValueError(
                f"the image has {channels} channels but the planes were made for "
                f"{plan.light.shape[0]}"
            )
        flat = px.reshape(height, width * channels)  # C-contiguous pixels: a view
        # RGB: to_gray's weights, the 1 / dtype-max factor folded in; gray (check_image
        # accepts H×W×3 and H×W only): None, the kernel's gray path (a pixel is its own luma)
        luma_weights = (
            (np.asarray(GRAY_WEIGHTS, dtype=np.float64) * unit).astype(dtype)
            if channels == 3
            else None
        )
        if out_image is None:
            out = np.empty((height, width * channels), dtype=arr.dtype)
        else:
            out = out_image.reshape(height, width * channels)  # C-contiguous: a view
        out_scale = float(np.iinfo(arr.dtype).max) if arr.dtype.kind == "u" else 0.0
        t_rec = np.empty((height, width) if "transmission" in wanted else (0, 0), dtype=dtype)
        # the depth −ln t = ln(1 / clip(t, t0, 1)), as dehaze.depth.depth_plane computes it:
        # the kernel writes the inverse, each band takes its logarithm while it is in cache
        depth = np.empty((height, width) if "depth" in wanted else (0, 0), dtype=dtype)
        light_c = np.ascontiguousarray(plan.light, dtype=dtype)

        def band(i0: int, i1: int) -> None:
            # RGB: the band's own side-by-side scratch row for the kernel; gray: none
            rgb = luma_weights is not None
            _ck.recover_detail(
                flat,
                unit,
                luma_weights,
                np.empty((planes.shape[2], _ck.RGB_PLANES), dtype) if rgb else None,
                planes,
                *rows,
                *cols,
                light_c,
                self.t0,
                out_scale,
                out,
                t_rec,
                depth,
                i0,
                i1,
            )
            if depth.size:
                rows_of = depth[i0:i1]  # contiguous rows, as cv2 needs
                cv2.log(rows_of, rows_of)

        run_bands(band, height)
        return DehazeResult(
            image=out.reshape(arr.shape),
            transmission=t_rec if "transmission" in wanted else None,
            atmospheric_light=plan.light,
            dark_channel=None,
            depth=depth if "depth" in wanted else None,
        )

    def _physical_and_far(
        self, work: FloatArray, light: FloatArray, radii: _Radii, scratch: _Scratch
    ) -> tuple[FloatArray, FloatArray]:
        """Return the working-scale physical t and the distance-to-A weight (scratch planes).

        The physical t is max(1 − ω · dark(I / A), Meng's bound), clipped to [0, 1]: the
        numbers of :func:`dehaze.transmission_map.raw_transmission` and
        :func:`~dehaze.transmission_map.boundary_transmission`. The weight is 1 where the
        local mean is clearly away from A (flat but not airlight), 0 within
        ``sky_tolerance`` of it. Their per-pixel terms come from one read of the working
        image and its local mean (:func:`dehaze._kernels.clear.transmission_terms`).
        """
        dtype = work.dtype
        channels = 0 if work.ndim == 2 else work.shape[2]
        mean = _box_mean(work, radii.signal, scratch.like("mean", work, channels))
        a = np.asarray(light, dtype=dtype)
        scale = (1.0 / light.astype(np.float64)).astype(dtype)  # as the dark channel of I / A
        room = np.maximum(dtype.type(1.0) - a, dtype.type(1e-3))  # as Meng's bound
        channel_min = scratch.like("dark-min", work)
        bound = scratch.like("dark-term", work)
        far = scratch.like("distance", work)
        if channels == 3:
            pixels, local = _interleaved(work), _interleaved(mean.reshape(work.shape))
        else:  # gray: its value in three equal channels, the same minima, maxima, distances
            pixels, local = (
                _three_equal(work, scratch, "gray-3"),
                _three_equal(mean, scratch, "gray-mean-3"),
            )
            scale, a, room = (np.repeat(v, 3) for v in (scale, a, room))
        terms = (channel_min, bound, far)
        _ck.transmission_terms(pixels, local, scale, a, room, self.sky_tolerance, *terms)
        physical = _min_window(channel_min, radii.patch, scratch.like("dark", work))
        physical *= dtype.type(-self.omega)
        physical += dtype.type(1.0)
        np.maximum(physical, bound, out=physical)
        np.clip(physical, dtype.type(0.0), dtype.type(1.0), out=physical)
        return physical, far

    def _detail_weights(
        self,
        work: FloatArray,
        work_luma: FloatArray,
        scene: ClearScene,
        radii: _Radii,
        stack: FloatArray,
        scratch: _Scratch,
    ) -> FloatArray:
        """Return the detail weight spread by the reach max filter (a scratch plane).

        The detail weight itself and the base layer are written to their planes of
        ``stack`` (``_ck.DETAIL``, ``_ck.BASE`` on); the other maps are ``scratch``'s: at
        620 × 460 every fresh plane costs page faults.
        """
        channels = 0 if work.ndim == 2 else work.shape[2]
        # detail SNR: Wiener gain of the high-pass energy against (k σ)²
        blurred = cv2.GaussianBlur(
            work,
            (0, 0),
            radii.sigma,
            dst=scratch.like("base", work, channels),
            borderType=cv2.BORDER_REFLECT,
        )
        base = cast(FloatArray, blurred).reshape(work.shape)
        if base.ndim == 2:
            stack[_ck.BASE] = base
        else:
            stack[_ck.BASE :] = base.transpose(2, 0, 1)
        base_luma = _luma(base, scratch, "base-luma")
        detail = np.subtract(work_luma, base_luma, out=scratch.like("detail", work))
        np.multiply(detail, detail, out=detail)
        energy = _box_mean(detail, radii.signal, scratch.like("energy", work))
        dtype = work.dtype
        zero, one = dtype.type(0.0), dtype.type(1.0)
        noise = dtype.type((self.snr_margin * scene.noise_sigma) ** 2)
        detail_weight: FloatArray = stack[_ck.DETAIL]
        np.maximum(energy, dtype.type(1e-12), out=energy)
        np.divide(noise, energy, out=detail_weight)
        np.subtract(one, detail_weight, out=detail_weight)
        np.clip(detail_weight, zero, one, out=detail_weight)
        reach = scratch.like("reach", work)
        if radii.reach > 0:
            # a max filter (its clipped windows give the same maxima as a reflected border)
            return _max_window(detail_weight, radii.reach, reach)
        np.copyto(reach, detail_weight)
        return reach


def dehaze(
    image: ArrayLike,
    *,
    outputs: Collection[str] = ALL_OUTPUTS,
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
    precision: str = "float32",
    radii_size: int | None = None,
) -> DehazeResult:
    """Remove haze from one image with the default method, :class:`ClearHaze`.

    Clears dense haze, leaves sky and flat bright areas alone and gives the same result at
    any resolution (see :class:`ClearHaze`). The classic methods stay available by name:
    :class:`dehaze.DarkChannelPrior` (``DarkChannelPrior.paper()`` for He et al.'s
    parameters), :class:`dehaze.RobustDCP`, :class:`dehaze.ColorAttenuationPrior`.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        RGB or gray image; uint8, uint16, float32 or float64 (float in [0, 1]); any
        memory layout, read-only views included. The input is never modified.
    outputs : collection of str, optional
        Optional planes to compute, from ``{"transmission", "depth"}`` (default both).
    working_size, patch_radius, guided_radius, eps, omega, t0, top_fraction
        See :class:`ClearHaze`.
    signal_radius, snr_margin, reach_radius, sky_tolerance, weight_eps, detail_sigma
        See :class:`ClearHaze`.
    bright_fraction, precision, radii_size
        See :class:`ClearHaze`.

    Returns
    -------
    DehazeResult
        ``image`` (same dtype and shape as the input), ``transmission``,
        ``atmospheric_light`` and ``depth`` (sky far).

    Examples
    --------
    >>> import numpy as np
    >>> import dehaze
    >>> hazy = np.full((40, 60, 3), 180, dtype=np.uint8)
    >>> hazy[10:30, 20:40] = (90, 120, 150)
    >>> result = dehaze.dehaze(hazy)
    >>> result.image.dtype, result.image.shape
    (dtype('uint8'), (40, 60, 3))
    """
    method = ClearHaze(
        working_size=working_size,
        patch_radius=patch_radius,
        guided_radius=guided_radius,
        eps=eps,
        omega=omega,
        t0=t0,
        top_fraction=top_fraction,
        signal_radius=signal_radius,
        snr_margin=snr_margin,
        reach_radius=reach_radius,
        sky_tolerance=sky_tolerance,
        weight_eps=weight_eps,
        detail_sigma=detail_sigma,
        bright_fraction=bright_fraction,
        precision=precision,
        radii_size=radii_size,
    )
    return method(image, outputs=outputs)
