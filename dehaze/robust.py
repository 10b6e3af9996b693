"""Dark-channel dehazing that does not break on sky and bright regions.

The plain dark-channel prior (He, Sun & Tang 2009/2011) fails where it does not hold: sky and
bright objects have a high dark channel, so their transmission collapses to t0 and
(I − A)/t0 blows colours out; He's atmospheric-light rule can pick a white object.
:class:`RobustDCP` composes the stages that fix this — a guarded atmospheric light
(:mod:`dehaze.atmosphere`), the K-tolerance rule with K chosen from the image's sky fraction
(:mod:`dehaze.transmission_map`) and a haze ``amount`` (MATLAB ``imreducehaze``'s idea). How its
defaults were tuned is in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._validate import (
    FloatArray,
    as_channels,
    as_float_image,
    as_pixels,
    check_choice,
    check_radius,
    check_real,
    check_unit,
)
from dehaze.atmosphere import LIGHT_RULES, guarded_he_light, quadtree_light
from dehaze.dcp import check_dcp_parameters
from dehaze.depth import depth_plane
from dehaze.guided import guided_filter_plane, guided_halo, to_gray
from dehaze.recovery import recover_pixels
from dehaze.result import ALL_OUTPUTS, DehazeResult, LightScene, check_outputs, check_scene
from dehaze.transmission_map import (
    clip_transmission,
    dark_channel_plane,
    distance_to_light,
    light_luma,
    luma_sky_fraction,
    raw_transmission,
    weaken_haze_removal,
)

__all__ = ["RobustDCP", "RobustScene"]


@dataclass(frozen=True, eq=False)
class RobustScene(LightScene):
    """The whole-image statistics of :class:`RobustDCP`.

    Attributes
    ----------
    atmospheric_light : (C,) float64 ndarray
        A on the [0, 1] scale.
    tolerance : float or None
        K of the tolerance rule after the sky adaptation; None when the rule is off.
    """

    tolerance: float | None


#: The sky test :meth:`RobustDCP.tolerance_for` measures: window radius, largest local
#: standard deviation of the luma, largest distance of the luma from A's
#: (:func:`dehaze.sky_fraction`'s defaults).
SKY_TEST = (7, 0.02, 0.2)


def _check_sky_range(value: Any) -> tuple[float, float]:
    if not isinstance(value, tuple) or len(value) != 2:
        raise TypeError(f"sky_range must be a tuple (f_low, f_high), got {value!r}")
    low = check_real(value[0], "sky_range[0]", low=0.0, high=1.0, low_inclusive=True)
    high = check_real(value[1], "sky_range[1]", low=0.0, high=1.0, high_inclusive=True)
    if not low < high:
        raise ValueError(f"sky_range must satisfy 0 <= f_low < f_high <= 1, got {value!r}")
    return low, high


@dataclass(frozen=True)
class RobustDCP:
    """Dark-channel dehazing with sky protection, robust A and adjustable strength.

    Steps: dark channel; A by the quad-tree search or He's rule, both guarded against
    small white objects; t̃ = 1 − ω · dark(I / A); guided-filter refinement (gray guide);
    the K-tolerance rule for pixels close to A, with K raised on images with a large sky
    (:func:`dehaze.sky_fraction`; how it was tuned: docs/benchmarks.md); the haze ``amount``
    t ← 1 − amount · (1 − t); recovery J = (I − A) / max(t, t0) + A.

    Parameters
    ----------
    omega : float
        ω in (0, 1]: fraction of haze removed by the prior.
    t0 : float
        Lower bound on t in [0.001, 1).
    patch_radius : int
        Dark-channel patch radius ≥ 0.
    guided_radius : int
        Guided-filter radius ≥ 0 refining t.
    eps : float
        Guided-filter ε > 0.
    light : {"quadtree", "he"}
        Atmospheric-light estimator: Kim et al.'s quad-tree search
        (:func:`dehaze.quadtree_atmospheric_light`) or He's rule (brightest of the 0.1 % highest
        dark-channel pixels).
    guard_radius : int
        g ≥ 0: A is never taken from an object smaller than (2g + 1)² pixels (for "he", the
        candidates come from a dark channel eroded by a further (2g + 1)² min filter) and is
        the mean colour of that window. 0 disables the guard.
    tolerance : float or None
        K in [0, 1] of :func:`dehaze.tolerance_transmission` for images without sky; None
        disables the rule (and the sky adaptation).
    sky_tolerance : float or None
        K in [0, 1] for images whose :func:`dehaze.sky_fraction` f reaches ``sky_range[1]``; K
        goes linearly from ``tolerance`` at f ≤ ``sky_range[0]`` to ``sky_tolerance``.
        None keeps K = ``tolerance`` for every image.
    sky_range : (float, float)
        (f_low, f_high) with 0 ≤ f_low < f_high ≤ 1: the ramp of the sky adaptation.
    amount : float
        Haze removed, in [0, 1]: 0 returns the input, 1 the full estimate.
    top_fraction : float
        Fraction of dark-channel pixels searched by He's rule.
    subsample : int
        s ≥ 1: the fast guided filter (He & Sun 2015) on a copy subsampled s times, as in
        :class:`dehaze.DarkChannelPrior` (1: the full filter, used for the tuned figures).

    References
    ----------
    .. [1] K. He, J. Sun and X. Tang, "Single image haze removal using dark channel
       prior", IEEE TPAMI 33(12), 2011.
    .. [2] J.-H. Kim et al., "Optimized contrast enhancement for real-time image and video
       dehazing", JVCIR 24(3), 2013.
    .. [3] J. Jiang, T. Hou and M. Qi, Journal of Circuits and Systems 16(2), 2011
       (K-tolerance).
    .. [4] MathWorks, ``imreducehaze`` ("Amount" of haze to remove), Image Processing
       Toolbox, R2018b.

    Notes
    -----
    Two phases (:class:`dehaze.result.Method`): :meth:`estimate` finds A and K (the sky
    fraction is a whole-image statistic), :meth:`apply` the rest, looking at most
    :attr:`halo` pixels away.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import RobustDCP
    >>> hazy = (np.random.default_rng(0).random((64, 80, 3)) * 0.5 + 0.4).astype(np.float32)
    >>> result = RobustDCP(guided_radius=20)(hazy)
    >>> result.image.dtype, result.image.shape
    (dtype('float32'), (64, 80, 3))
    """

    omega: float = 0.95
    t0: float = 0.3
    patch_radius: int = 20
    guided_radius: int = 80
    eps: float = 0.03
    light: str = "he"
    guard_radius: int = 2
    tolerance: float | None = 0.0
    sky_tolerance: float | None = 0.6
    sky_range: tuple[float, float] = (0.5, 0.7)
    amount: float = 1.0
    top_fraction: float = 0.05
    subsample: int = 1

    def __post_init__(self) -> None:
        check_dcp_parameters(self)
        check_choice(self.light, "light", LIGHT_RULES)
        check_radius(self.guard_radius, "guard_radius")
        if self.tolerance is not None:
            check_unit(self.tolerance, "tolerance")
        if self.sky_tolerance is not None:
            check_unit(self.sky_tolerance, "sky_tolerance")
        _check_sky_range(self.sky_range)
        check_unit(self.amount, "amount")

    @property
    def halo(self) -> int:
        """Context of :meth:`apply`: the dark-channel patch plus the guided filter's reach."""
        return self.patch_radius + guided_halo(self.guided_radius, self.subsample)

    def halo_for(self, scene: RobustScene) -> int:
        """Return the halo for an image with this scene: :attr:`halo` (fixed, in pixels)."""
        check_scene(scene, RobustScene, "RobustDCP")
        return self.halo

    def estimate_light(self, image: FloatArray, dark: FloatArray, unit: float = 1.0) -> FloatArray:
        """Atmospheric light of a validated image by the configured rule.

        ``image`` is float in [0, 1], or unsigned-integer pixels with ``unit = 1 / dtype
        max``; ``dark`` is its dark channel.
        """
        if self.light == "quadtree":
            img = image if unit == 1.0 else as_float_image(image)
            return quadtree_light(img, 16, self.guard_radius)
        return guarded_he_light(image, dark, self.top_fraction, self.guard_radius, unit)

    def tolerance_for(self, gray: FloatArray, light: FloatArray) -> float:
        """K for an image of (validated, float) luma ``gray`` and atmospheric light ``light``.

        ``tolerance`` when the sky adaptation is off, else ``tolerance`` + w ·
        (``sky_tolerance`` − ``tolerance``) with w = clip((f − f_low) / (f_high − f_low),
        0, 1) and f the image's :func:`dehaze.sky_fraction` (default window and thresholds).
        """
        if self.tolerance is None:
            raise ValueError("tolerance is None: the tolerance rule is disabled")
        if self.sky_tolerance is None:
            return float(self.tolerance)
        return self.tolerance_for_fraction(luma_sky_fraction(gray, light_luma(light), *SKY_TEST))

    def tolerance_for_fraction(self, fraction: float) -> float:
        """Return K for an image whose :func:`dehaze.sky_fraction` is ``fraction``.

        The rule of :meth:`tolerance_for` once the fraction is known (a tiled estimate
        counts it tile by tile, :mod:`dehaze.tiles`).
        """
        if self.tolerance is None:
            raise ValueError("tolerance is None: the tolerance rule is disabled")
        base = float(self.tolerance)
        if self.sky_tolerance is None:
            return base
        low, high = (float(v) for v in self.sky_range)
        weight = min(max((fraction - low) / (high - low), 0.0), 1.0)
        return base + weight * (float(self.sky_tolerance) - base)

    def estimate(self, image: ArrayLike) -> RobustScene:
        """Estimate A (guarded rule) and K (from the sky fraction) of ``image``.

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            uint8/uint16/float32/float64 image (float in [0, 1]).

        Returns
        -------
        RobustScene
            A on the [0, 1] scale and the tolerance K (None when the rule is off).
        """
        px, unit = as_pixels(np.asarray(image))
        return self._estimate(px, unit, self._gray(px, unit))[0]

    def apply(
        self,
        image: ArrayLike,
        scene: RobustScene,
        *,
        outputs: Collection[str] = ALL_OUTPUTS,
    ) -> DehazeResult:
        """Dehaze ``image`` with the A and K of ``scene`` (local stages only).

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            uint8/uint16/float32/float64 image (float in [0, 1]).
        scene : RobustScene
            From :meth:`estimate` (of this image, of the whole image a tile comes from, or
            smoothed over video frames).
        outputs : collection of str, optional
            Optional planes to return, from ``{"transmission", "dark_channel", "depth"}``
            (default all); the others are None and are not computed.

        Returns
        -------
        DehazeResult
            The same fields as :class:`dehaze.DarkChannelPrior` returns.
        """
        arr = np.asarray(image)
        wanted = check_outputs(outputs)
        px, unit = as_pixels(arr)
        checked = check_scene(scene, RobustScene, "RobustDCP")
        tolerance = None
        if checked.tolerance is not None:
            tolerance = check_unit(checked.tolerance, "scene.tolerance")
        if (tolerance is None) != (self.tolerance is None):
            raise ValueError(
                "scene.tolerance must be None exactly when the method's tolerance is None, "
                f"got {checked.tolerance!r} for tolerance={self.tolerance!r}"
            )
        light = checked.light_for(px)
        return self._apply(arr, px, unit, light, tolerance, None, self._gray(px, unit), wanted)

    def __call__(self, image: ArrayLike, *, outputs: Collection[str] = ALL_OUTPUTS) -> DehazeResult:
        """Dehaze ``image``; same as ``apply(image, estimate(image), outputs=outputs)``."""
        wanted = check_outputs(outputs)
        arr = np.asarray(image)
        px, unit = as_pixels(arr)
        gray = self._gray(px, unit)
        scene, dark = self._estimate(px, unit, gray)
        light = scene.light_for(px)
        return self._apply(arr, px, unit, light, scene.tolerance, dark, gray, wanted)

    @staticmethod
    def _gray(px: NDArray[Any], unit: float) -> FloatArray:
        return to_gray(px, unit) if px.ndim == 3 else as_float_image(px)

    def _estimate(
        self, px: NDArray[Any], unit: float, gray: FloatArray
    ) -> tuple[RobustScene, FloatArray]:
        """Return the scene, and the dark channel computed on the way."""
        dark = dark_channel_plane(px, self.patch_radius, unit=unit)
        light = self.estimate_light(px, dark, unit)
        tolerance = None if self.tolerance is None else self.tolerance_for(gray, light)
        return RobustScene(light.astype(np.float64), tolerance), dark

    def _apply(
        self,
        arr: NDArray[Any],
        px: NDArray[Any],
        unit: float,
        light: FloatArray,
        tolerance: float | None,
        dark: FloatArray | None,
        gray: FloatArray,
        wanted: Collection[str],
    ) -> DehazeResult:
        if dark is None and "dark_channel" in wanted:
            dark = dark_channel_plane(px, self.patch_radius, unit=unit)
        step = self.subsample  # > 1: raw t only where the fast guided filter reads it
        raw_t = raw_transmission(px, light, self.omega, self.patch_radius, unit, step)
        t = guided_filter_plane(
            as_channels(gray), raw_t, self.guided_radius, self.eps, step, coarse_src=step > 1
        )
        distance = None
        if tolerance is not None:
            distance = distance_to_light(gray if px.ndim == 2 else px, light, gray)
        t = weaken_haze_removal(t, distance, tolerance, self.t0, float(self.amount))
        recovered: NDArray[Any] = recover_pixels(px, t, light, self.t0, True, arr.dtype, unit)
        return DehazeResult(
            image=recovered,
            transmission=clip_transmission(t, self.t0) if "transmission" in wanted else None,
            atmospheric_light=light,
            dark_channel=dark if "dark_channel" in wanted else None,
            depth=depth_plane(t, 1.0, self.t0) if "depth" in wanted else None,
        )
