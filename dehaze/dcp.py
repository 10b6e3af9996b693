"""The dark-channel-prior method (He, Sun & Tang, CVPR 2009 / TPAMI 2011).

Haze model: I(x) = J(x) t(x) + A (1 − t(x)). :class:`DarkChannelPrior` composes the stages:

1. the dark channel  dark(I)(x) = min over the patch Ω(x) of min over c of I_c
   (:mod:`dehaze.transmission_map`);
2. the atmospheric light A from the brightest dark-channel pixels (:mod:`dehaze.atmosphere`)
   — the whole-image ``estimate`` phase;
3. the transmission  t̃ = 1 − ω · dark(I / A), refined by the guided filter (gray or colour
   guide, optionally subsampled; :mod:`dehaze.guided`);
4. the recovery  J = (I − A) / max(t, t0) + A (:mod:`dehaze.recovery`) and relative depth
   −ln(t) (:mod:`dehaze.depth`) — with 3, the local ``apply`` phase.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._validate import (
    FloatArray,
    as_float_image,
    as_pixels,
    check_atmospheric_light,
    check_choice,
    check_eps,
    check_radius,
    check_real,
    check_t0,
)
from dehaze.atmosphere import he_light
from dehaze.depth import depth_plane
from dehaze.guided import GUIDES, guided_filter_plane, guided_halo, to_gray
from dehaze.recovery import recover_pixels
from dehaze.result import ALL_OUTPUTS, DehazeResult, LightScene, check_outputs, check_scene
from dehaze.transmission_map import clip_transmission, dark_channel_plane, raw_transmission

__all__ = ["DarkChannelPrior", "check_dcp_parameters"]


def check_dcp_parameters(method: Any) -> None:
    """Check the parameters every dark-channel method shares (raise on the first bad one).

    ``omega``, ``t0``, ``patch_radius``, ``guided_radius``, ``eps``, ``subsample`` and
    ``top_fraction``, with the ranges documented on :class:`DarkChannelPrior`.
    """
    check_real(method.omega, "omega", low=0.0, high=1.0, high_inclusive=True)
    check_t0(method.t0)
    check_radius(method.patch_radius, "patch_radius")
    check_radius(method.guided_radius, "guided_radius")
    check_eps(method.eps)
    check_radius(method.subsample, "subsample", minimum=1)
    check_real(method.top_fraction, "top_fraction", low=0.0, high=1.0, high_inclusive=True)


@dataclass(frozen=True)
class DarkChannelPrior:
    """A dark-channel-prior dehazer: validated, reusable parameters; call it on images.

    The defaults were chosen by the documented sweep ``bench/tuning/sweep_dcp.py`` on the 60
    shared RESIDE SOTS-indoor pairs (docs/benchmarks.md): 21.91 dB / 0.890 SSIM there
    against 19.25 / 0.849 with the paper's parameters, and 17.46 / 0.877 against
    13.99 / 0.803 on the 12 SOTS-outdoor pairs, at the same cost. On SOTS scenes the sweep
    did not see they reach about 21.1 dB. :meth:`paper` gives He et al.'s parameters.

    Parameters
    ----------
    omega : float
        ω in (0, 1]: fraction of haze removed (0.95, as in the paper).
    t0 : float
        Lower bound on the transmission in [0.001, 1) during recovery (and depth); 0.3 (the
        paper uses 0.1, which amplifies noise in dense haze). The returned transmission is
        clipped to [t0, 1]; the recovery divides by max(t, t0).
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
        ≥ 1; > 1 is the fast mode: the fast guided filter subsampled by this factor, the
        raw transmission computed only on its coarse grid, and A found by He's rule among
        the coarse grid's pixels (ranked by the full-size dark channel there).
    atmospheric_light : float or sequence of float, optional
        A fixed A on the [0, 1] scale (components in (0, 1]); estimated per image when None.
    top_fraction : float
        Fraction of brightest dark-channel pixels searched for A; 0.05 (the paper: 0.001).

    Notes
    -----
    Two phases (:class:`dehaze.result.Method`): :meth:`estimate` finds A (He's rule on the
    dark channel, or the fixed ``atmospheric_light``); :meth:`apply` computes the raw
    transmission, refines it and recovers J, looking at most :attr:`halo` pixels away.

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
        check_dcp_parameters(self)
        check_choice(self.guide, "guide", GUIDES)
        if self.atmospheric_light is not None:
            # checked as given (a string or bool is refused, not converted first)
            raw: Any = self.atmospheric_light
            scalar = np.ndim(raw) == 0
            light = check_atmospheric_light(raw, 1 if scalar else len(raw), np.float64)
            # store a hashable value so the frozen dataclass stays hashable
            value: float | tuple[float, ...] = (
                float(light[0]) if scalar else tuple(float(v) for v in light)
            )
            object.__setattr__(self, "atmospheric_light", value)

    @property
    def halo(self) -> int:
        """Context of :meth:`apply`: the dark-channel patch plus the guided filter's reach."""
        return self.patch_radius + guided_halo(self.guided_radius, self.subsample)

    def halo_for(self, scene: LightScene) -> int:
        """Return the halo for an image with this scene: :attr:`halo` (fixed, in pixels)."""
        check_scene(scene, LightScene, "DarkChannelPrior")
        return self.halo

    def estimate(self, image: ArrayLike) -> LightScene:
        """Atmospheric light of ``image``: He's rule, or the fixed ``atmospheric_light``.

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            uint8/uint16/float32/float64 image (float in [0, 1]).

        Returns
        -------
        LightScene
            A on the [0, 1] scale (float64 holding the working-dtype values).
        """
        px, unit = as_pixels(np.asarray(image))
        return self._estimate(px, unit)[0]

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
            From :meth:`estimate` (of this image, of the whole image a tile comes from, or
            smoothed over video frames).
        outputs : collection of str, optional
            Optional planes to return, from ``{"transmission", "dark_channel", "depth"}``
            (default all); the others are None and are not computed.

        Returns
        -------
        DehazeResult
            As :func:`dehaze.dehaze` returns it.
        """
        arr = np.asarray(image)
        wanted = check_outputs(outputs)
        px, unit = as_pixels(arr)
        checked = check_scene(scene, LightScene, "DarkChannelPrior")
        light = checked.light_for(px)
        return self._apply(arr, px, unit, light, None, wanted)

    def __call__(self, image: ArrayLike, *, outputs: Collection[str] = ALL_OUTPUTS) -> DehazeResult:
        """Dehaze ``image`` (see :func:`dehaze.dehaze`): ``apply(image, estimate(image))``.

        ``outputs`` names the optional planes to compute, as for :meth:`apply`.
        """
        wanted = check_outputs(outputs)
        arr = np.asarray(image)
        px, unit = as_pixels(arr)
        scene, dark = self._estimate(px, unit)
        light = scene.light_for(px)
        return self._apply(arr, px, unit, light, dark, wanted)

    def _estimate(self, px: NDArray[Any], unit: float) -> tuple[LightScene, FloatArray | None]:
        """Return the scene, and the dark channel when it was computed on the way."""
        if self.atmospheric_light is not None:
            channels = 1 if px.ndim == 2 else px.shape[2]
            light = check_atmospheric_light(self.atmospheric_light, channels, px.dtype)
            return LightScene(light.astype(np.float64)), None
        step = self.subsample
        if step > 1:
            # fast mode: He's rule over the coarse grid the guided filter works on (the
            # full-size dark channel's values there): 1/s² of the pixels to rank
            dark = dark_channel_plane(px, self.patch_radius, unit=unit, step=step)
            coarse = np.ascontiguousarray(px[::step, ::step])
            light = he_light(coarse, dark, self.top_fraction, unit)
            return LightScene(light.astype(np.float64)), None
        dark = dark_channel_plane(px, self.patch_radius, unit=unit)
        light = he_light(px, dark, self.top_fraction, unit)
        return LightScene(light.astype(np.float64)), dark

    def _apply(
        self,
        arr: NDArray[Any],
        px: NDArray[Any],
        unit: float,
        light: FloatArray,
        dark: FloatArray | None,
        wanted: Collection[str],
    ) -> DehazeResult:
        if dark is None and "dark_channel" in wanted:
            dark = dark_channel_plane(px, self.patch_radius, unit=unit)
        step = self.subsample  # > 1: raw t only where the fast guided filter reads it
        raw_t = raw_transmission(px, light, self.omega, self.patch_radius, unit, step)
        if px.ndim == 2:
            guide = as_float_image(px)[:, :, np.newaxis]  # a view when px is float
        elif self.guide == "gray":
            guide = to_gray(px, unit)[:, :, np.newaxis]
        else:
            guide = as_float_image(px)
        refined = guided_filter_plane(
            guide, raw_t, self.guided_radius, self.eps, step, coarse_src=step > 1
        )
        return DehazeResult(
            image=recover_pixels(px, refined, light, self.t0, True, arr.dtype, unit),
            transmission=clip_transmission(refined, self.t0) if "transmission" in wanted else None,
            atmospheric_light=light,
            dark_channel=dark if "dark_channel" in wanted else None,
            depth=depth_plane(refined, 1.0, self.t0) if "depth" in wanted else None,
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
