"""AOD-Net (Li et al., ICCV 2017) with the published weights, in NumPy and OpenCV.

AOD-Net reformulates the haze model so that one map K(x) absorbs both transmission and
atmospheric light: J = K · I − K + b with b = 1. K comes from five small convolutions on the
RGB input in [0, 1] (no normalisation), each followed by a ReLU:

=====  ====================  ======  =========
layer  input                 kernel  padding
=====  ====================  ======  =========
conv1  I (3 maps)            1 × 1   0
conv2  x1                    3 × 3   1
conv3  concat(x1, x2)        5 × 5   2
conv4  concat(x2, x3)        7 × 7   3
conv5  concat(x1..x4)        3 × 3   1
=====  ====================  ======  =========

every layer with three output maps (1761 parameters), zero padding, J = ReLU(K·I − K + 1),
then clipped to [0, 1] for output.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._validate import FloatArray
from dehaze.models import _formats
from dehaze.models._common import (
    check_keys,
    checked_weight,
    finish_image,
    from_planes,
    npz_arrays,
    npz_weights,
    prepare_rgb,
    to_planes,
    weights_repr,
)
from dehaze.models._layers import conv2d, relu_
from dehaze.models._protobuf import CaffeLayer
from dehaze.result import ALL_OUTPUTS, DehazeResult, Scene, check_outputs, check_scene

__all__ = ["AODNet", "AODNetWeights"]

#: Receptive-field radius of the network (1×1, 3×3, 5×5, 7×7, 3×3 over concatenations:
#: x2 reaches 1 pixel, x3 1 + 2, x4 3 + 3, the output 6 + 1).
AODNET_HALO = 7

_NETWORK = "aodnet"

#: (out, in, kh, kw) of each layer's kernels.
_KERNEL_SHAPES = {
    "conv1": (3, 3, 1, 1),
    "conv2": (3, 3, 3, 3),
    "conv3": (3, 6, 5, 5),
    "conv4": (3, 6, 7, 7),
    "conv5": (3, 12, 3, 3),
}

#: Which layers' outputs each concatenation joins, in order (from the Caffe definition).
_CONCAT_INPUTS = (("conv1", "conv2"), ("conv2", "conv3"), ("conv1", "conv2", "conv3", "conv4"))


@dataclass(frozen=True, eq=False)
class AODNetWeights:
    """Validated AOD-Net parameters: kernels (out, in, kh, kw) and biases (out,).

    Kernels are in correlation orientation (PyTorch's and Caffe's layout). Arrays are
    float32 or float64, finite, read-only copies; any other shape raises ``ValueError``.
    """

    conv1_weight: FloatArray
    conv1_bias: FloatArray
    conv2_weight: FloatArray
    conv2_bias: FloatArray
    conv3_weight: FloatArray
    conv3_bias: FloatArray
    conv4_weight: FloatArray
    conv4_bias: FloatArray
    conv5_weight: FloatArray
    conv5_bias: FloatArray

    SHAPES: ClassVar[dict[str, tuple[int, ...]]] = {
        **{f"{layer}_weight": shape for layer, shape in _KERNEL_SHAPES.items()},
        **{f"{layer}_bias": (shape[0],) for layer, shape in _KERNEL_SHAPES.items()},
    }

    def __post_init__(self) -> None:
        for field in fields(self):
            value = checked_weight(getattr(self, field.name), field.name, self.SHAPES[field.name])
            object.__setattr__(self, field.name, value)

    def arrays(self) -> dict[str, FloatArray]:
        """Return the parameters by field name."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def __repr__(self) -> str:
        """Summarise (parameter count, dtype, kernel shapes) instead of printing arrays."""
        return weights_repr("AODNetWeights", self.arrays())

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, NDArray[Any]]) -> AODNetWeights:
        """Build from a PyTorch ``state_dict`` (keys ``e_conv1.weight`` … ``e_conv5.bias``).

        A ``module.`` prefix (from ``nn.DataParallel``) is removed first.
        """
        names = {k.removeprefix("module."): v for k, v in state_dict.items()}
        expected = tuple(
            f"e_{layer}.{kind}" for layer in _KERNEL_SHAPES for kind in ("weight", "bias")
        )
        check_keys(names, expected, "PyTorch state_dict is not AOD-Net's")
        return cls(**{f"{k[2:].replace('.', '_')}": v for k, v in names.items()})

    @classmethod
    def from_caffe(cls, net_name: str, layers: list[CaffeLayer]) -> AODNetWeights:
        """Build from the decoded layers of the official Caffe model (``conv1`` … ``conv5``)."""
        by_name = {layer.name: layer for layer in layers}
        convs = [n for n in _KERNEL_SHAPES if n in by_name and by_name[n].type == "Convolution"]
        if len(convs) != len(_KERNEL_SHAPES):
            found = [f"{la.name} ({la.type})" for la in layers if la.blobs]
            raise ValueError(
                f"Caffe net {net_name!r} is not AOD-Net: expected Convolution layers "
                f"conv1..conv5, found layers with parameters {found}"
            )
        _check_caffe_topology(net_name, layers)
        params: dict[str, Any] = {}
        for name, shape in _KERNEL_SHAPES.items():
            blobs = by_name[name].blobs
            if len(blobs) != 2:
                raise ValueError(f"Caffe layer {name} has {len(blobs)} blobs, expected 2")
            weight, bias = blobs
            if weight.shape != shape:
                raise ValueError(
                    f"Caffe net {net_name!r} is not AOD-Net: layer {name} has kernels of shape "
                    f"{weight.shape}, expected {shape}"
                )
            params[f"{name}_weight"] = weight
            params[f"{name}_bias"] = bias.reshape(-1)
        return cls(**params)


def _check_caffe_topology(net_name: str, layers: list[CaffeLayer]) -> None:
    """Check that the Concat layers join the conv outputs in AOD-Net's order."""
    source: dict[str, str] = {}
    for layer in layers:
        if layer.type == "Convolution":
            for top in layer.top:
                source[top] = layer.name
        elif layer.type in ("Split", "ReLU") and layer.bottom:
            origin = source.get(layer.bottom[0], layer.bottom[0])
            for top in layer.top:
                source[top] = origin
    concats = [la for la in layers if la.type == "Concat"]
    if not concats:
        return  # a file without the net definition: the shapes are all we can check
    joined = tuple(tuple(source.get(b, b) for b in la.bottom) for la in concats)
    if joined != _CONCAT_INPUTS:
        raise ValueError(
            f"Caffe net {net_name!r} concatenates {joined}, not AOD-Net's {_CONCAT_INPUTS}"
        )


@dataclass(frozen=True, eq=False)
class AODNet:
    """The AOD-Net dehazer: ``AODNet.from_file(path)(image) -> DehazeResult``.

    Parameters
    ----------
    weights : AODNetWeights
        The network parameters (see :meth:`from_file`, :meth:`from_npz`).

    Notes
    -----
    The forward pass runs in float32 for uint8/uint16/float32 images and in float64 for
    float64 images (the weights, stored in float32, are widened exactly). A gray H×W image
    is replicated to three channels and the result is returned as its Rec. 601 luma (H×W):
    the network is trained on colour images only, so gray input is a convenience, not a
    faithful use of it.

    References
    ----------
    .. [1] B. Li, X. Peng, Z. Wang, J. Xu and D. Feng, "AOD-Net: All-in-One Dehazing
       Network", ICCV 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.models import AODNet, AODNetWeights
    >>> shapes = AODNetWeights.SHAPES
    >>> zero = AODNetWeights(**{k: np.zeros(s, np.float32) for k, s in shapes.items()})
    >>> result = AODNet(zero)(np.full((8, 8, 3), 128, np.uint8))
    >>> int(result.image[0, 0, 0])  # K = 0 gives J = 1
    255
    """

    weights: AODNetWeights

    def __post_init__(self) -> None:
        if not isinstance(self.weights, AODNetWeights):
            raise TypeError(
                f"weights must be AODNetWeights, got {type(self.weights).__name__}; "
                f"use AODNet.from_file(path)"
            )

    def forward(self, image: FloatArray) -> FloatArray:
        """Run the network on a validated float (H, W, 3) image in [0, 1].

        Parameters
        ----------
        image : (H, W, 3) float32 or float64 ndarray
            RGB image in [0, 1] (unchecked: :meth:`__call__` validates).

        Returns
        -------
        (H, W, 3) ndarray
            J = ReLU(K·I − K + 1), not clipped above, dtype of ``image``.
        """
        dtype = image.dtype
        w = {k: np.asarray(v, dtype=dtype) for k, v in self.weights.arrays().items()}
        x = to_planes(image)
        x1 = relu_(conv2d(x, w["conv1_weight"], w["conv1_bias"], "zero"))
        x2 = relu_(conv2d(x1, w["conv2_weight"], w["conv2_bias"], "zero"))
        x3 = relu_(conv2d(np.concatenate((x1, x2)), w["conv3_weight"], w["conv3_bias"], "zero"))
        x4 = relu_(conv2d(np.concatenate((x2, x3)), w["conv4_weight"], w["conv4_bias"], "zero"))
        cat = np.concatenate((x1, x2, x3, x4))
        k = relu_(conv2d(cat, w["conv5_weight"], w["conv5_bias"], "zero"))
        out = k * x
        out -= k
        out += dtype.type(1.0)
        return from_planes(relu_(out))

    def __call__(self, image: ArrayLike, *, outputs: Collection[str] = ALL_OUTPUTS) -> DehazeResult:
        """Dehaze ``image``.

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            RGB (or gray, see Notes of the class) image, uint8/uint16/float32/float64
            (float in [0, 1]).

        Returns
        -------
        DehazeResult
            ``image`` only (same shape and dtype as the input, clipped to [0, 1]); AOD-Net
            estimates no transmission or atmospheric light, so the other fields are None.

        Raises
        ------
        ValueError
            If the image is not accepted, or if the weights are so large that the
            network's output overflows (it is never returned as NaN).
        """
        check_outputs(outputs)  # AOD-Net has no optional planes
        img, dtype, gray = prepare_rgb(image)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.forward(img)
        if not np.all(np.isfinite(out)):
            # finite weights can still overflow: K grows like the product of the five
            # layers' weights; say so instead of returning NaN (or a black image)
            largest = max(float(np.max(np.abs(a))) for a in self.weights.arrays().values())
            raise ValueError(
                f"AOD-Net's output is not finite in {img.dtype}: the weights (largest "
                f"magnitude {largest:.3g}) overflow it; published weights are of order 1"
            )
        return DehazeResult(image=finish_image(out, dtype, gray))

    @property
    def halo(self) -> int:
        """Receptive-field radius: an output pixel depends on input pixels ≤ 7 away."""
        return AODNET_HALO

    def estimate(self, image: ArrayLike) -> Scene:
        """AOD-Net has no whole-image statistics: an empty :class:`~dehaze.result.Scene`."""
        prepare_rgb(image)  # validate like apply, so bad input fails here too
        return Scene()

    def apply(
        self, image: ArrayLike, scene: Scene, *, outputs: Collection[str] = ALL_OUTPUTS
    ) -> DehazeResult:
        """Dehaze ``image`` (the scene is empty; ``outputs`` is accepted for the protocol)."""
        check_scene(scene, Scene, "AODNet")
        return self(image, outputs=outputs)

    @classmethod
    def from_file(cls, path: _formats.StrPath) -> AODNet:
        """Load published AOD-Net weights, detecting the file's format from its content.

        Parameters
        ----------
        path : str or path-like
            A PyTorch ``state_dict`` saved with ``torch.save`` (legacy pre-1.6 or zip
            format; keys ``e_conv1.weight`` … ``e_conv5.bias``, as in the MIT-licensed
            PyTorch re-implementation), the authors' official Caffe ``.caffemodel``
            (layers ``conv1`` … ``conv5``), or an ``.npz`` written by :meth:`save_npz`.
            PyTorch and Caffe are not needed: the files are decoded directly (tensors are
            unpickled with a restricted unpickler that admits no other classes).

        Returns
        -------
        AODNet

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is truncated or corrupt, holds another network's weights, or any
            shape differs from AOD-Net's.
        """
        data = _formats.read_bytes(path, "AOD-Net")
        return cls(_formats.parse_guarded(path, lambda: _weights_from_bytes(data, Path(path))))

    @classmethod
    def from_npz(cls, path: _formats.StrPath) -> AODNet:
        """Load weights written by :meth:`save_npz` (no pickles are read).

        Parameters
        ----------
        path : str or path-like
            The ``.npz`` file.

        Returns
        -------
        AODNet
        """
        data = _formats.read_bytes(path, "AOD-Net")
        return cls(_formats.parse_guarded(path, lambda: _weights_from_npz(_formats.read_npz(data))))

    def save_npz(self, path: _formats.StrPath, *, overwrite: bool = False) -> Path:
        """Save the weights to a neutral ``.npz`` (exact; read back with :meth:`from_npz`).

        Parameters
        ----------
        path : str or path-like
            Target file, ending in ``.npz``.
        overwrite : bool, optional
            Replace an existing file (default False: raise ``FileExistsError``). The file
            is written to a temporary name and renamed into place.

        Returns
        -------
        Path
            The written path.
        """
        arrays = npz_arrays(_NETWORK, self.weights.arrays())
        return _formats.write_npz(path, arrays, overwrite=overwrite)


def _weights_from_bytes(data: bytes, path: Path) -> AODNetWeights:
    """Decode AOD-Net weights from a file's bytes in any supported format."""
    fmt = _formats.detect_format(data, path.suffix)
    if fmt in ("torch-legacy", "torch-zip"):
        expected = {
            f"e_{layer}.{kind}": shape if kind == "weight" else shape[:1]
            for layer, shape in _KERNEL_SHAPES.items()
            for kind in ("weight", "bias")
        }
        state_dict = _formats.read_torch(data, fmt, expected)
        return AODNetWeights.from_state_dict(state_dict)
    if fmt == "caffe":
        return AODNetWeights.from_caffe(*_formats.read_caffe(data))
    if fmt == "npz":
        return _weights_from_npz(_formats.read_npz(data))
    names = sorted(_formats.read_matlab(data))
    raise ValueError(
        f"a MATLAB file with variables {names} is not AOD-Net weights (DehazeNet's "
        f"MATLAB release? load it with DehazeNet.from_file)"
    )


def _weights_from_npz(arrays: dict[str, NDArray[Any]]) -> AODNetWeights:
    weights = npz_weights(arrays, _NETWORK)
    check_keys(weights, tuple(AODNetWeights.SHAPES), "AOD-Net weight archive")
    return AODNetWeights(**weights)
