"""The few network layers the adapters need, on C-contiguous (C, H, W) float planes.

Convolutions are correlations (the kernel is not flipped, as in PyTorch, Caffe and MATLAB's
``imfilter``) of the padded input, summed by a Numba kernel in one fixed order per output
value (:mod:`dehaze._kernels.conv`), so a tile read with the receptive field reproduces the
whole image bit for bit (:mod:`dehaze.tiles`); rows run on the thread bands. At the channel
counts of AOD-Net and DehazeNet (≤ 48) and kernels ≤ 7 × 7 this direct form beats im2col +
BLAS, whose column matrix is memory-bound.

The anchor of a k × k kernel is ``(k - 1) // 2``: the centre of an odd kernel (PyTorch's
``padding = (k - 1) / 2``), and for an even kernel MATLAB's ``'same'`` anchor
``floor((k + 1) / 2)`` (1-based), i.e. ``k/2 - 1`` before and ``k/2`` after.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from dehaze._kernels import conv as _conv
from dehaze._parallel import run_bands
from dehaze._validate import FloatArray

Border = Literal["zero", "symmetric"]

#: Border rules: "zero" pads with 0 (PyTorch/Caffe ``padding``), "symmetric" mirrors
#: including the edge pixel (MATLAB ``padarray(..., 'symmetric')``, NumPy
#: ``np.pad(mode="symmetric")``, OpenCV ``BORDER_REFLECT``).
BORDERS = ("symmetric", "zero")


def anchor(size: int) -> int:
    """Offset of the output pixel inside a kernel of ``size`` taps (see module notes)."""
    return (size - 1) // 2


def pad_planes(planes: FloatArray, kh: int, kw: int, border: Border) -> FloatArray:
    """Pad (C, H, W) planes for a 'same' correlation with a kh × kw kernel (see anchors)."""
    ay, ax = anchor(kh), anchor(kw)
    widths = ((0, 0), (ay, kh - 1 - ay), (ax, kw - 1 - ax))
    if border == "zero":
        return np.pad(planes, widths, mode="constant")
    if border == "symmetric":
        return np.pad(planes, widths, mode="symmetric")
    raise ValueError(f"border must be one of ['symmetric', 'zero'], got {border!r}")


def _correlate_padded(
    padded: FloatArray, weight: FloatArray, bias: FloatArray, out: FloatArray
) -> FloatArray:
    weight = np.ascontiguousarray(weight, dtype=padded.dtype)
    bias = np.ascontiguousarray(bias, dtype=padded.dtype)
    run_bands(
        lambda i0, i1: _conv.correlate_planes(padded, weight, bias, out, i0, i1), out.shape[1]
    )
    return out


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
    target = np.empty_like(plane) if out is None else out
    padded = pad_planes(plane[np.newaxis], kh, kw, border)
    bias = np.array([delta], dtype=plane.dtype)
    _correlate_padded(padded, kernel[np.newaxis, np.newaxis], bias, target[np.newaxis])
    return target


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
        Padding rule (see ``BORDERS``).
    out_channels : slice, optional
        Compute only these output channels (default all).

    Returns
    -------
    (C_sel, H, W) ndarray
        The selected output channels, dtype of ``planes``.
    """
    padded = pad_planes(planes, weight.shape[2], weight.shape[3], border)
    return conv2d_padded(padded, weight, bias, out_channels)


def conv2d_padded(
    padded: FloatArray,
    weight: FloatArray,
    bias: FloatArray,
    out_channels: slice | None = None,
) -> FloatArray:
    """:func:`conv2d` of planes already padded by :func:`pad_planes` (pad once, reuse)."""
    if out_channels is not None:
        weight, bias = weight[out_channels], bias[out_channels]
    height = padded.shape[1] - weight.shape[2] + 1
    width = padded.shape[2] - weight.shape[3] + 1
    out = np.empty((weight.shape[0], height, width), dtype=padded.dtype)
    return _correlate_padded(padded, weight, bias, out)


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
