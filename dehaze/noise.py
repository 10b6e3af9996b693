"""The noise level of an image: how much of its fine structure is noise (a global statistic).

Recovery multiplies the deviation from the atmospheric light by 1/t, so whatever noise, JPEG
blocking or 8-bit steps a hazy region holds is amplified with it. A method that limits the
amplification where the local signal is at the noise level needs the noise level first.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._lazy import lazy_module
from dehaze._validate import check_buffer, check_float_map, check_real

if TYPE_CHECKING:
    import cv2
else:
    cv2 = lazy_module("cv2")  # imported on first use: `import dehaze` stays light

__all__ = ["NOISE_MASK", "QUANTISATION_SIGMA", "noise_sigma"]

#: Standard deviation of 8-bit rounding noise, 1 / (255 √12), on the [0, 1] scale: the floor of
#: every estimate (an image that shows no noise was still quantised to 8 bits).
QUANTISATION_SIGMA = 1.0 / (255.0 * math.sqrt(12.0))

#: Immerkær's mask: the difference of two Laplacians, blind to planes and ramps; white noise of
#: standard deviation σ filtered by it has standard deviation 6 σ (the mask's L2 norm).
NOISE_MASK = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])

#: Side of the windows over which the mask's response is averaged.
WINDOW = 8


def noise_sigma(
    luma: ArrayLike,
    *,
    percentile: float = 10.0,
    buffers: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> float:
    """Noise standard deviation of a gray image, measured where it is flattest.

    Immerkær's mask responds to noise and to texture but not to planes or ramps; the RMS of
    its response over an 8 × 8 block is 6 σ in a block without texture. The ``percentile``
    (10th by default) of that RMS over the image's blocks (whole 8 × 8 blocks, from the
    top-left corner of the response) is taken: the flattest tenth of an image holds
    noise, not structure (the weak-texture idea of Liu, Tanaka & Okutomi 2013), whereas a
    median counts texture as noise on textured photos. Floored at
    :data:`QUANTISATION_SIGMA`. On pure white noise the estimate is 0.8 σ (the 10th percentile
    of the window RMS lies below its mean); it is a noise *level* to compare local detail
    with, and the margins that use it are set with this scale. An image narrower than 3
    pixels has no interior response: its estimate is the floor.

    Parameters
    ----------
    luma : (H, W) ndarray
        Gray image on the [0, 1] scale, finite.
    percentile : float, optional
        In (0, 100): which part of the image counts as flat.
    buffers : pair of (H, W) float64 ndarrays, optional
        Scratch for the float64 copy of ``luma`` and the mask's response (a caller that
        estimates σ image after image keeps them instead of allocating three planes each
        time); the result is the same.

    Returns
    -------
    float
        σ on the [0, 1] scale, at least :data:`QUANTISATION_SIGMA`.

    References
    ----------
    .. [1] J. Immerkær, "Fast noise variance estimation", CVIU 64(2), 300–302, 1996.
    .. [2] X. Liu, M. Tanaka and M. Okutomi, "Single-image noise level estimation for blind
       denoising", IEEE TIP 22(12), 5226–5237, 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.noise import noise_sigma
    >>> noisy = 0.5 + np.random.default_rng(0).normal(0.0, 0.02, (200, 200))
    >>> round(noise_sigma(noisy), 3)  # 0.8 of the white noise's σ
    0.016
    """
    checked = check_float_map(luma, "luma")
    share = check_real(percentile, "percentile", low=0.0, high=100.0)
    if buffers is None:
        plane = checked.astype(np.float64)
        filtered = None
    else:
        plane, filtered = (
            check_buffer(b, f"buffers[{i}]", checked.shape, np.float64)
            for i, b in enumerate(buffers)
        )
        np.copyto(plane, checked)
    if min(plane.shape) < 3:
        return QUANTISATION_SIGMA
    full = cv2.filter2D(plane, -1, NOISE_MASK, dst=filtered, borderType=cv2.BORDER_REFLECT)
    response = full[1:-1, 1:-1]
    rows, cols = response.shape[0] // WINDOW, response.shape[1] // WINDOW
    if rows == 0 or cols == 0:  # smaller than one block: the whole response is the block
        energy = np.array([np.mean(response * response)])
    else:
        # the squares in a C-ordered block of the first buffer (the copy is no longer needed)
        squares = plane.reshape(-1)[: rows * WINDOW * cols * WINDOW].reshape(
            rows * WINDOW, cols * WINDOW
        )
        np.square(response[: rows * WINDOW, : cols * WINDOW], out=squares)
        # the blocks' means: OpenCV's area resampling by a whole factor averages exactly
        # these blocks (8× faster than NumPy's mean over two strided axes)
        area = cv2.resize(squares, (cols, rows), interpolation=cv2.INTER_AREA)
        energy = area.reshape(-1)
    sigma = math.sqrt(max(float(np.percentile(energy, share)), 0.0)) / 6.0
    return max(sigma, QUANTISATION_SIGMA)
