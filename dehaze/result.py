"""The result type shared by every dehazing method, and the protocol methods follow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DehazeResult", "Dehazer"]


@dataclass(frozen=True)
class DehazeResult:
    """What a dehazing method returns.

    Attributes
    ----------
    image : ndarray
        The dehazed image, same shape and dtype as the input.
    transmission : (H, W) float ndarray or None
        The (refined) transmission t the image was recovered with; None for methods that do
        not estimate one (AOD-Net).
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


@runtime_checkable
class Dehazer(Protocol):
    """Anything that dehazes an image: ``method(image) -> DehazeResult``.

    :class:`dehaze.DarkChannelPrior` and the network adapters in :mod:`dehaze.models`
    follow it, so benchmarks and the command line treat all methods alike.
    """

    def __call__(self, image: ArrayLike) -> DehazeResult:
        """Dehaze ``image`` (uint8/uint16/float32/float64, H×W×3 or H×W)."""
        ...
