"""The Color Attenuation Prior (Zhu, Mai & Shao, IEEE TIP 2015).

Haze raises brightness and lowers saturation as depth grows, so scene depth is modelled
linearly from the HSV value v and saturation s:

    d(x) = θ0 + θ1 · v(x) + θ2 · s(x),

with the coefficients the authors fitted on 500 synthetic hazy images by maximum likelihood
(θ0 = 0.121779, θ1 = 0.959710, θ2 = −0.780245; the residual σ = 0.041337 is not used: the
authors' MATLAB code adds N(0, σ²) noise to d, we keep d deterministic). The depth is
eroded by a min filter (the paper's 15 × 15 neighbourhood: near objects dominate a patch),
refined by the guided filter, and t = exp(−β d). A is He's rule applied to the eroded depth
(the brightest of the 0.1 % deepest pixels) and J = (I − A) / clip(t, t0, 1) + A.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._lazy import lazy_module
from dehaze._parallel import run_bands
from dehaze._validate import (
    FloatArray,
    as_float_image,
    check_choice,
    check_eps,
    check_radius,
    check_real,
    check_t0,
    check_unit,
)
from dehaze.atmosphere import he_light
from dehaze.filters import min_filter_plane
from dehaze.guided import GUIDES, guided_filter_plane, guided_halo, to_gray
from dehaze.recovery import recover_pixels
from dehaze.result import ALL_OUTPUTS, DehazeResult, LightScene, check_outputs, check_scene
from dehaze.transmission_map import distance_to_light, weaken_haze_removal

if TYPE_CHECKING:
    from dehaze._kernels import restore as _rk
else:
    _rk = lazy_module("dehaze._kernels.restore")  # Numba is imported on first use

__all__ = ["CAP_COEFFICIENTS", "ColorAttenuationPrior", "cap_depth"]

#: (θ0, θ1, θ2) of Zhu, Mai & Shao (2015), eq. (9)–(10) and section IV-B.
CAP_COEFFICIENTS = (0.121779, 0.959710, -0.780245)

#: Largest β :class:`ColorAttenuationPrior` accepts. t = exp(−β d) is computed in the
#: image's working dtype (float32 for all but float64 images), where a larger β overflows
#: (3.4e38) or makes β d overflow; at 1e30, β d is finite for any |d| < 3.4e8, and the CAP
#: depth lies in [−0.66, 1.08] (guided-filtered, near it). Nothing useful is lost: t is
#: already below any t0 ≥ 0.01 wherever d > 0.005 once β > 1e3.
MAX_BETA = 1e30


def _raw_depth(image: FloatArray) -> FloatArray:
    img3 = image if image.ndim == 3 else image[:, :, np.newaxis]
    out = np.empty(img3.shape[:2], dtype=image.dtype)
    b0, b1, b2 = CAP_COEFFICIENTS
    run_bands(lambda i0, i1: _rk.cap_depth(img3, b0, b1, b2, out, i0, i1), img3.shape[0])
    return out


def cap_depth(image: ArrayLike, patch_radius: int = 7) -> FloatArray:
    """Scene depth by the colour attenuation prior, eroded over a square patch.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        uint8/uint16/float32/float64 image (float in [0, 1]). A gray image has s = 0.
    patch_radius : int, optional
        Radius r ≥ 0 of the min filter (2r + 1)² applied to d (r = 7 gives the paper's
        15 × 15); 0 returns the per-pixel model. The window is clipped to the image.

    Returns
    -------
    (H, W) ndarray
        d = θ0 + θ1·v + θ2·s (then eroded), on a relative scale (β = 1); float64 for float64
        input, float32 otherwise.

    References
    ----------
    .. [1] Q. Zhu, J. Mai and L. Shao, "A fast single image haze removal algorithm using
       color attenuation prior", IEEE TIP 24(11), 3522–3533, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import cap_depth
    >>> white = np.ones((2, 2, 3))
    >>> round(float(cap_depth(white, 0)[0, 0]), 6)   # θ0 + θ1 (v = 1, s = 0)
    1.081489
    """
    img = as_float_image(image)
    r = check_radius(patch_radius, "patch_radius")
    return min_filter_plane(_raw_depth(img), r)


@dataclass(frozen=True)
class ColorAttenuationPrior:
    """Dehazing with the colour attenuation prior (Zhu, Mai & Shao 2015).

    Parameters
    ----------
    beta : float
        Scattering coefficient β in (0, 1e30] in t = exp(−β d) (1.0 in the paper; see
        :data:`MAX_BETA`).
    t0 : float
        Lower bound on t in [0.001, 1) during recovery (:data:`dehaze._validate.MIN_T0`).
    patch_radius : int
        Min-filter radius ≥ 0 on the depth (7 → the paper's 15 × 15).
    guided_radius : int
        Guided-filter radius ≥ 0 refining d (the authors' code: 60 × 60 window → 30).
    eps : float
        Guided-filter ε > 0 (the authors' code: 1e-3).
    guide : {"gray", "color"}
        Gray (luma) or RGB guide for the refinement (the authors use the RGB image).
    tolerance : float or None
        K of :func:`dehaze.tolerance_transmission` applied to t; None disables it.
    amount : float
        Haze removed, in [0, 1]: t ← 1 − amount · (1 − t).

    Notes
    -----
    Two phases (:class:`dehaze.result.Method`): :meth:`estimate` finds A (He's rule on the
    eroded depth), :meth:`apply` the rest, looking at most :attr:`halo` pixels away.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import ColorAttenuationPrior
    >>> hazy = (np.random.default_rng(0).random((64, 80, 3)) * 0.5 + 0.4).astype(np.float32)
    >>> result = ColorAttenuationPrior(guided_radius=10)(hazy)
    >>> result.image.dtype, result.depth.shape
    (dtype('float32'), (64, 80))
    """

    beta: float = 1.0
    t0: float = 0.1
    patch_radius: int = 7
    guided_radius: int = 30
    eps: float = 1e-3
    guide: str = "gray"
    tolerance: float | None = None
    amount: float = 1.0

    def __post_init__(self) -> None:
        check_real(self.beta, "beta", low=0.0, high=MAX_BETA, high_inclusive=True)
        check_t0(self.t0)
        check_radius(self.patch_radius, "patch_radius")
        check_radius(self.guided_radius, "guided_radius")
        check_eps(self.eps)
        check_choice(self.guide, "guide", GUIDES)
        if self.tolerance is not None:
            check_unit(self.tolerance, "tolerance")
        check_unit(self.amount, "amount")

    @property
    def halo(self) -> int:
        """Context of :meth:`apply`: the depth's min filter plus the guided filter's reach."""
        return self.patch_radius + guided_halo(self.guided_radius)

    def halo_for(self, scene: LightScene) -> int:
        """Return the halo for an image with this scene: :attr:`halo` (fixed, in pixels)."""
        check_scene(scene, LightScene, "ColorAttenuationPrior")
        return self.halo

    def estimate(self, image: ArrayLike) -> LightScene:
        """Atmospheric light of ``image``: He's rule on the eroded CAP depth (deepest 0.1 %).

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            uint8/uint16/float32/float64 image (float in [0, 1]).

        Returns
        -------
        LightScene
            A on the [0, 1] scale.
        """
        img = as_float_image(np.asarray(image))
        return self._estimate(img)[0]

    def apply(
        self,
        image: ArrayLike,
        scene: LightScene,
        *,
        outputs: Collection[str] = ALL_OUTPUTS,
    ) -> DehazeResult:
        """Dehaze ``image`` with the atmospheric light of ``scene`` (local stages only).

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            uint8/uint16/float32/float64 image (float in [0, 1]).
        scene : LightScene
            From :meth:`estimate`.
        outputs : collection of str, optional
            Optional planes to return, from ``{"transmission", "depth"}`` (CAP has no dark
            channel; default all); the others are None.

        Returns
        -------
        DehazeResult
            ``image``, ``transmission``, ``atmospheric_light`` and ``depth`` (the CAP's).
        """
        arr = np.asarray(image)
        wanted = check_outputs(outputs)
        img = as_float_image(arr)
        checked = check_scene(scene, LightScene, "ColorAttenuationPrior")
        light = checked.light_for(img)
        return self._apply(arr, img, light, None, wanted)

    def __call__(self, image: ArrayLike, *, outputs: Collection[str] = ALL_OUTPUTS) -> DehazeResult:
        """Dehaze ``image``; same as ``apply(image, estimate(image), outputs=outputs)``."""
        wanted = check_outputs(outputs)
        arr = np.asarray(image)
        img = as_float_image(arr)
        scene, eroded = self._estimate(img)
        light = scene.light_for(img)
        return self._apply(arr, img, light, eroded, wanted)

    def _estimate(self, img: FloatArray) -> tuple[LightScene, FloatArray]:
        """Return the scene, and the eroded depth computed on the way."""
        eroded = min_filter_plane(_raw_depth(img), self.patch_radius)
        light = he_light(img, eroded, 0.001)
        return LightScene(light.astype(np.float64)), eroded

    def _apply(
        self,
        arr: NDArray[Any],
        img: FloatArray,
        light: FloatArray,
        eroded: FloatArray | None,
        wanted: Collection[str],
    ) -> DehazeResult:
        if eroded is None:
            eroded = min_filter_plane(_raw_depth(img), self.patch_radius)
        if img.ndim == 3 and self.guide == "color":
            guide = img
        else:
            guide = to_gray(img)[:, :, np.newaxis]
        depth = guided_filter_plane(
            np.ascontiguousarray(guide), eroded, self.guided_radius, self.eps, 1
        )
        # t = exp(−β max(d, 0)): a negative d would give t > 1, clipped to 1 below anyway,
        # and with a large β exp(−β d) overflows to inf there (and 1 − amount · (1 − inf)
        # is NaN for amount 0)
        depth = np.maximum(depth, img.dtype.type(0.0))
        t: FloatArray = np.exp(depth * img.dtype.type(-self.beta))
        distance = None if self.tolerance is None else distance_to_light(img, light)
        tolerance = None if self.tolerance is None else float(self.tolerance)
        t = weaken_haze_removal(t, distance, tolerance, self.t0, float(self.amount))
        np.clip(t, self.t0, 1.0, out=t)
        recovered: NDArray[Any] = recover_pixels(img, t, light, self.t0, True, arr.dtype)
        return DehazeResult(
            image=recovered,
            transmission=t if "transmission" in wanted else None,
            atmospheric_light=light,
            dark_channel=None,
            depth=depth if "depth" in wanted else None,
        )
