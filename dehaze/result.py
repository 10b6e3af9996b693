"""What every dehazing method shares: its result, its scene, and the two-phase protocol.

Every method is ``estimate(image) -> scene`` (whole-image statistics: the atmospheric light,
a sky measure, …; a small frozen object) plus ``apply(image, scene) -> DehazeResult`` (only
per-pixel and windowed stages, each output pixel depending on input pixels at most
``halo`` pixels away). ``method(image)`` is ``apply(image, estimate(image))``. The split lets
the same method run on a whole image, on tiles with a halo (the scene computed once for the
whole image), or on video frames with the scene smoothed over time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._validate import FloatArray, check_atmospheric_light

__all__ = [
    "ALL_OUTPUTS",
    "DehazeResult",
    "Dehazer",
    "LightScene",
    "Method",
    "Scene",
    "check_outputs",
    "check_scene",
]

#: The optional planes of a :class:`DehazeResult` (the image and A are always returned).
ALL_OUTPUTS: frozenset[str] = frozenset({"transmission", "dark_channel", "depth"})


@dataclass(frozen=True)
class DehazeResult:
    """What a dehazing method returns.

    Attributes
    ----------
    image : ndarray
        The dehazed image, same shape and dtype as the input.
    transmission : (H, W) float ndarray or None
        The (refined) transmission t the image was recovered with; None for methods that do
        not estimate one (AOD-Net) or when not asked for (``outputs``).
    atmospheric_light : (C,) float ndarray or None
        The atmospheric light A on the [0, 1] float scale (C = 3 for RGB, 1 for gray).
    dark_channel : (H, W) float ndarray or None
        The dark channel of the input on the [0, 1] scale (dark-channel methods only).
    depth : (H, W) float ndarray or None
        Relative scene depth −ln(t)/β, known only up to the unknown scattering
        coefficient β (β = 1 here); see :func:`dehaze.depth_map`.
    """

    image: NDArray[Any]
    transmission: NDArray[np.floating[Any]] | None = None
    atmospheric_light: NDArray[np.floating[Any]] | None = None
    dark_channel: NDArray[np.floating[Any]] | None = None
    depth: NDArray[np.floating[Any]] | None = None


def check_outputs(outputs: Collection[str]) -> frozenset[str]:
    """Validate ``outputs`` (a subset of :data:`ALL_OUTPUTS`) and return it as a set."""
    if isinstance(outputs, str) or not isinstance(outputs, Collection):
        raise TypeError(
            f"outputs must be a collection of names from {sorted(ALL_OUTPUTS)}, got {outputs!r}"
        )
    wanted = frozenset(outputs)
    unknown = wanted - ALL_OUTPUTS
    if unknown or not all(isinstance(name, str) for name in wanted):
        raise ValueError(
            f"outputs must be names from {sorted(ALL_OUTPUTS)}, got {sorted(map(str, wanted))}"
        )
    return wanted


_S = TypeVar("_S", bound="Scene")


@dataclass(frozen=True, eq=False)
class Scene:
    """The whole-image statistics of a method (none for this base: the networks).

    Subclasses add fields; :meth:`blend` averages every numeric field, which is how video
    smooths a scene over frames.
    """

    def blend(self: _S, previous: _S | None, weight: float) -> _S:
        """Exponential moving average ``(1 − w) · previous + w · self`` of every numeric field.

        Arrays are averaged in float64 and stay float64, floats as floats; integer, boolean
        and string fields, and a field that is None in either scene, are taken from
        ``self``. ``previous=None`` returns ``self`` (the first frame).

        Examples
        --------
        >>> import numpy as np
        >>> from dehaze.result import LightScene
        >>> a, b = LightScene(np.array([0.5])), LightScene(np.array([1.0]))
        >>> b.blend(a, 0.2).atmospheric_light
        array([0.6])
        """
        if previous is None:
            return self
        if type(previous) is not type(self):
            raise TypeError(
                f"cannot blend a {type(self).__name__} with a {type(previous).__name__}"
            )
        changes: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            new, old = getattr(self, field.name), getattr(previous, field.name)
            if new is None or old is None or isinstance(new, (bool, int, str)):
                continue  # counts and flags (a block factor) are not averaged
            if isinstance(new, np.ndarray):
                changes[field.name] = (1 - weight) * np.asarray(old, np.float64) + weight * (
                    new.astype(np.float64)
                )
            elif isinstance(new, float):
                changes[field.name] = (1 - weight) * float(old) + weight * float(new)
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class LightScene(Scene):
    """A scene that is just the atmospheric light.

    Attributes
    ----------
    atmospheric_light : (C,) float64 ndarray
        A on the [0, 1] scale (C = 3 for RGB, 1 for gray).
    """

    atmospheric_light: NDArray[np.float64]

    def light_for(self, pixels: NDArray[Any]) -> FloatArray:
        """Return A checked for ``pixels`` (H×W or H×W×C), in their working dtype."""
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        return check_atmospheric_light(self.atmospheric_light, channels, pixels.dtype)


def check_scene(scene: Any, kind: type[_S], method: str) -> _S:
    """Check that ``scene`` is a ``kind`` (what ``method.estimate`` returns)."""
    if not isinstance(scene, kind):
        raise TypeError(
            f"scene must be a {kind.__name__} (what {method}.estimate returns), "
            f"got {type(scene).__name__}"
        )
    return scene


@runtime_checkable
class Dehazer(Protocol):
    """Anything that dehazes an image: ``method(image) -> DehazeResult``.

    Every method of :mod:`dehaze` and the network adapters in :mod:`dehaze.models` follow
    it, so benchmarks and the command line treat all methods alike.
    """

    def __call__(self, image: ArrayLike) -> DehazeResult:
        """Dehaze ``image`` (uint8/uint16/float32/float64, H×W×3 or H×W)."""
        ...


SceneT = TypeVar("SceneT", bound=Scene)


@runtime_checkable
class Method(Dehazer, Protocol[SceneT]):
    """A dehazer in two phases: whole-image ``estimate``, then local ``apply``.

    ``method(image)`` equals ``method.apply(image, method.estimate(image))``; ``apply``
    runs only per-pixel and windowed stages, so an output pixel depends on input pixels at
    most ``halo_for(scene)`` pixels away (in rows and in columns) and on the scene.
    """

    def __call__(self, image: ArrayLike, *, outputs: Collection[str] = ALL_OUTPUTS) -> DehazeResult:
        """Dehaze ``image``: ``apply(image, estimate(image), outputs=outputs)``."""
        ...

    @property
    def halo(self) -> int:
        """How many pixels of context an output pixel of :meth:`apply` depends on.

        For a method whose windows follow the image's size (:class:`dehaze.ClearHaze`), at
        its working size; :meth:`halo_for` gives it for a given image's scene.
        """
        ...

    def halo_for(self, scene: SceneT) -> int:
        """Return the halo, in input pixels, for an image whose scene is ``scene``."""
        ...

    def estimate(self, image: ArrayLike) -> SceneT:
        """Whole-image statistics of ``image``."""
        ...

    def apply(
        self, image: ArrayLike, scene: SceneT, *, outputs: Collection[str] = ALL_OUTPUTS
    ) -> DehazeResult:
        """Dehaze ``image`` with the given scene; ``outputs`` names the optional planes."""
        ...
