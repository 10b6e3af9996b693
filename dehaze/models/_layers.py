"""The few network layers the adapters need, on C-contiguous (C, H, W) float planes.

Convolutions are correlations (the kernel is not flipped, as in PyTorch, Caffe and MATLAB's
``imfilter``) computed with one ``cv2.filter2D`` call per (input, output) channel pair and
accumulated in place: at the channel counts of AOD-Net and DehazeNet (≤ 48) and kernels
≤ 7 × 7 this is faster than im2col + BLAS, whose column matrix is memory-bound.

The anchor of a k × k kernel is ``(k - 1) // 2``: the centre of an odd kernel (PyTorch's
``padding = (k - 1) / 2``), and for an even kernel MATLAB's ``'same'`` anchor
``floor((k + 1) / 2)`` (1-based), i.e. ``k/2 - 1`` before and ``k/2`` after.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from dehaze._validate import FloatArray

Border = Literal["zero", "symmetric"]

#: OpenCV border rules: "zero" pads with 0 (PyTorch/Caffe ``padding``), "symmetric"
#: mirrors including the edge pixel (MATLAB ``padarray(..., 'symmetric')``, NumPy
#: ``np.pad(mode="symmetric")``, OpenCV ``BORDER_REFLECT``).
_BORDERS: dict[str, int] = {"zero": cv2.BORDER_CONSTANT, "symmetric": cv2.BORDER_REFLECT}


def anchor(size: int) -> int:
    """Offset of the output pixel inside a kernel of ``size`` taps (see module notes)."""
    return (size - 1) // 2


def correlate(
    plane: FloatArray,
    kernel: FloatArray,
    border: Border,
    *,
    delta: float = 0.0,
    out: FloatArray | None = None,
) -> FloatArray:
    """Correlate one 2-D ``plane`` with ``kernel`` ('same' size) and add ``delta``.

    Written into ``out`` (C-contiguous, dtype and shape of ``plane``) when given.
    """
    kh, kw = kernel.shape
    result: FloatArray = cv2.filter2D(  # type: ignore[assignment]
        plane,
        -1,
        kernel,
        dst=out,
        anchor=(anchor(kw), anchor(kh)),
        delta=delta,
        borderType=_BORDERS[border],
    )
    if out is not None and result is not out:  # pragma: no cover - OpenCV reallocated
        out[...] = result
        return out
    return result


def correlate_accumulate(
    plane: FloatArray,
    kernel: FloatArray,
    out: FloatArray,
    border: Border,
    scratch: FloatArray | None = None,
) -> None:
    """Add the 'same'-size correlation of one 2-D ``plane`` with ``kernel`` to ``out``.

    ``scratch`` (a plane like ``out``) avoids allocating the intermediate result.
    """
    filtered = correlate(plane, kernel, border, out=scratch)
    np.add(out, filtered, out=out)


def conv2d(
    planes: FloatArray,
    weight: FloatArray,
    bias: FloatArray,
    border: Border,
    out_channels: slice | None = None,
) -> FloatArray:
    """Multi-channel 'same' correlation: ``out[o] = bias[o] + Σ_i planes[i] ⋆ weight[o, i]``.

    Parameters
    ----------
    planes : (C_in, H, W) ndarray
        C-contiguous float32 or float64 input.
    weight : (C_out, C_in, kh, kw) ndarray
        Kernels in correlation orientation, same dtype as ``planes``.
    bias : (C_out,) ndarray
        Biases, same dtype.
    border : {"zero", "symmetric"}
        Padding rule (see ``_BORDERS``).
    out_channels : slice, optional
        Compute only these output channels (default all).

    Returns
    -------
    (C_sel, H, W) ndarray
        The selected output channels, dtype of ``planes``.
    """
    indices = list(range(weight.shape[0]))
    if out_channels is not None:
        indices = indices[out_channels]
    height, width = planes.shape[1:]
    out = np.empty((len(indices), height, width), dtype=planes.dtype)
    scratch = np.empty((height, width), dtype=planes.dtype)
    for row, o in enumerate(indices):
        correlate(planes[0], weight[o, 0], border, delta=float(bias[o]), out=out[row])
        for i in range(1, planes.shape[0]):
            correlate_accumulate(planes[i], weight[o, i], out[row], border, scratch)
    return out


def relu_(planes: FloatArray) -> FloatArray:
    """In-place ReLU; returns its argument."""
    np.maximum(planes, planes.dtype.type(0.0), out=planes)
    return planes


def max_filter(plane: FloatArray, size: int) -> FloatArray:
    """Maximum over a ``size`` × ``size`` window centred on each pixel.

    The border replicates the edge pixels (MATLAB/Piotr's ``convMax``), which for a maximum
    is the same as clipping the window to the image. ``size`` is odd.
    """
    kernel = np.ones((size, size), dtype=np.uint8)
    result: FloatArray = cv2.dilate(  # type: ignore[assignment]
        plane, kernel, borderType=cv2.BORDER_REPLICATE
    )
    return result
