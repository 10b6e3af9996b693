"""DehazeNet (Cai et al., IEEE TIP 2016) with the authors' MATLAB weights, in NumPy/OpenCV.

DehazeNet regresses the transmission t from the hazy image; the scene is then recovered
with the haze model. The port follows the authors' MATLAB release step by step:

1. F1: the RGB image in [0, 1] minus 0.5, correlated with 16 kernels of 5 × 5, then
   maxout: the maximum over the consecutive maps 1–4, 5–8, 9–12, 13–16 (4 maps);
2. F2: 16 maps each from 3 × 3, 5 × 5 and 7 × 7 kernels on F1 (48 maps, no activation);
3. F3: a 7 × 7 maximum filter of every map (border replicated);
4. t: one 6 × 6 kernel over the 48 maps, then BReLU (clip to [0, 1]).

All convolutions are MATLAB ``imfilter(x, k, 'same', 'symmetric')``: correlation with
symmetric padding, the even 6 × 6 kernel anchored at its 3rd tap (2 before, 3 after).
Recovery: A is the mean RGB of the brightest (gray) pixels among those whose t is within
the lowest 1 %; t is refined by a guided filter (gray guide, radius 50, ε = 10⁻³);
J = (I − A) / t + A, clipped to [0, 1].

The MATLAB file stores each layer's kernels as (in-channels, k·k, out-channels), each
k·k row being a column-major k × k kernel; :class:`DehazeNetWeights` holds them as
(out, in, k, k) in correlation orientation.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._validate import FloatArray, check_eps, check_radius, check_real
from dehaze.depth import depth_map
from dehaze.guided import guided_filter, guided_halo
from dehaze.models import _formats
from dehaze.models._common import (
    check_keys,
    checked_weight,
    finish_image,
    npz_arrays,
    npz_weights,
    prepare_rgb,
    to_planes,
    weights_repr,
)
from dehaze.models._layers import (
    conv2d,
    conv2d_padded,
    correlate_accumulate,
    max_filter,
    pad_planes,
)
from dehaze.result import ALL_OUTPUTS, DehazeResult, LightScene, check_outputs, check_scene

__all__ = ["DehazeNet", "DehazeNetWeights"]

#: Receptive-field radius of the network before the refinement: 5×5 conv (2), 7×7 branch
#: (3), 7×7 max filter (3), 6×6 regression with MATLAB's anchor (3).
NETWORK_HALO = 11

_NETWORK = "dehazenet"

#: MATLAB's ``rgb2gray`` coefficients (the first row of the inverse NTSC matrix; its
#: documentation rounds them to 0.2989, 0.5870, 0.1140).
MATLAB_GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)

#: Maxout groups after the first layer and the max-filter size of F3.
MAXOUT_GROUPS = 4
MAX_FILTER_SIZE = 7

#: (out, in, k, k) of each layer, and the MATLAB variable names it is read from.
_LAYERS = {
    "conv1": ((16, 3, 5, 5), "conv1"),
    "conv3x3": ((16, 4, 3, 3), "conv3x3"),
    "conv5x5": ((16, 4, 5, 5), "conv5x5"),
    "conv7x7": ((16, 4, 7, 7), "conv7x7"),
    "regression": ((1, 48, 6, 6), "ip"),
}
_BRANCHES = ("conv3x3", "conv5x5", "conv7x7")


@dataclass(frozen=True, eq=False)
class DehazeNetWeights:
    """Validated DehazeNet parameters: kernels (out, in, k, k), biases (out,).

    Kernels are in correlation orientation (``out[o] += in[i] ⋆ weight[o, i]``). Arrays
    are float32 or float64, finite, read-only copies; other shapes raise ``ValueError``.
    """

    conv1_weight: FloatArray
    conv1_bias: FloatArray
    conv3x3_weight: FloatArray
    conv3x3_bias: FloatArray
    conv5x5_weight: FloatArray
    conv5x5_bias: FloatArray
    conv7x7_weight: FloatArray
    conv7x7_bias: FloatArray
    regression_weight: FloatArray
    regression_bias: FloatArray

    SHAPES: ClassVar[dict[str, tuple[int, ...]]] = {
        **{f"{name}_weight": shape for name, (shape, _) in _LAYERS.items()},
        **{f"{name}_bias": (shape[0],) for name, (shape, _) in _LAYERS.items()},
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
        return weights_repr("DehazeNetWeights", self.arrays())

    @classmethod
    def from_matlab(cls, variables: dict[str, NDArray[Any]]) -> DehazeNetWeights:
        """Build from the variables of the authors' ``dehaze.mat``.

        ``weights_<layer>`` is (in, k·k, out) — (48, 36) for the last layer, whose single
        output MATLAB drops — and ``biases_<layer>`` is (out, 1).
        """
        expected = tuple(
            f"{kind}_{mat}" for _, mat in _LAYERS.values() for kind in ("weights", "biases")
        )
        check_keys(variables, expected, "MATLAB file is not DehazeNet's dehaze.mat")
        params: dict[str, Any] = {}
        for name, ((n_out, n_in, k, _), mat) in _LAYERS.items():
            stored = np.asarray(variables[f"weights_{mat}"])
            if stored.ndim == 2:
                stored = stored[:, :, np.newaxis]
            if stored.shape != (n_in, k * k, n_out):
                raise ValueError(
                    f"weights_{mat} has shape {stored.shape}, expected {(n_in, k * k, n_out)}"
                )
            # row (i, :, o) is a column-major k × k kernel: reshape in Fortran order
            kernels = stored.reshape(n_in, k, k, n_out, order="F")
            params[f"{name}_weight"] = np.transpose(kernels, (3, 0, 1, 2))
            bias = np.asarray(variables[f"biases_{mat}"])
            if bias.size != n_out:
                raise ValueError(f"biases_{mat} has {bias.size} values, expected {n_out}")
            params[f"{name}_bias"] = bias.reshape(n_out)
        return cls(**params)


@dataclass(frozen=True, eq=False)
class DehazeNet:
    """The DehazeNet dehazer: ``DehazeNet.from_file(path)(image) -> DehazeResult``.

    Parameters
    ----------
    weights : DehazeNetWeights
        The network parameters (see :meth:`from_file`).
    guided_radius : int, optional
        Radius ≥ 0 of the guided filter refining t (50 in the original code).
    eps : float, optional
        Guided-filter regularisation ε > 0 (10⁻³ in the original code).
    light_fraction : float, optional
        Fraction in (0, 1] of lowest-transmission pixels searched for the atmospheric light
        (0.01 in the original code).

    Notes
    -----
    The network runs in float32 for uint8/uint16/float32 images and float64 for float64
    images. The recovery has no lower bound on t, as in the original code; where the
    refined t is exactly 0 (or J overflows) the clipped result is still finite. A gray
    H×W image is replicated to three channels; all channels of J are then equal and the
    result is returned as H×W (``atmospheric_light`` has one component).

    References
    ----------
    .. [1] B. Cai, X. Xu, K. Jia, C. Qing and D. Tao, "DehazeNet: An End-to-End System
       for Single Image Haze Removal", IEEE TIP 25(11), 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze.models import DehazeNet, DehazeNetWeights
    >>> shapes = DehazeNetWeights.SHAPES
    >>> half = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    >>> half["regression_bias"] = np.array([0.5], np.float32)  # t = 0.5 everywhere
    >>> result = DehazeNet(DehazeNetWeights(**half))(np.full((16, 16, 3), 0.6))
    >>> float(result.transmission[0, 0]), result.image.shape
    (0.5, (16, 16, 3))
    """

    weights: DehazeNetWeights
    guided_radius: int = 50
    eps: float = 1e-3
    light_fraction: float = 0.01

    def __post_init__(self) -> None:
        if not isinstance(self.weights, DehazeNetWeights):
            raise TypeError(
                f"weights must be DehazeNetWeights, got {type(self.weights).__name__}; "
                f"use DehazeNet.from_file(path)"
            )
        check_radius(self.guided_radius, "guided_radius")
        check_eps(self.eps)
        check_real(self.light_fraction, "light_fraction", low=0.0, high=1.0, high_inclusive=True)

    def forward(self, image: FloatArray) -> FloatArray:
        """Estimate the raw transmission (before refinement) of a float RGB image.

        Parameters
        ----------
        image : (H, W, 3) float32 or float64 ndarray
            RGB image in [0, 1] (unchecked: :meth:`__call__` validates).

        Returns
        -------
        (H, W) ndarray
            t in [0, 1], dtype of ``image``.

        Notes
        -----
        The 48 maps of F2/F3 are produced and consumed one at a time, so memory stays at a
        few image planes whatever the image size.
        """
        dtype = image.dtype
        w = {k: np.asarray(v, dtype=dtype) for k, v in self.weights.arrays().items()}
        haze = to_planes(image) - dtype.type(0.5)
        per_group = w["conv1_weight"].shape[0] // MAXOUT_GROUPS
        f1 = np.empty((MAXOUT_GROUPS,) + image.shape[:2], dtype=dtype)
        for g in range(MAXOUT_GROUPS):
            group = slice(g * per_group, (g + 1) * per_group)
            maps = conv2d(haze, w["conv1_weight"], w["conv1_bias"], "symmetric", group)
            np.max(maps, axis=0, out=f1[g])
        t = np.full(image.shape[:2], w["regression_bias"][0], dtype=dtype)
        kernels = w["regression_weight"][0]
        scratch = np.empty_like(t)
        for b, branch in enumerate(_BRANCHES):
            weight, bias = w[f"{branch}_weight"], w[f"{branch}_bias"]
            padded = pad_planes(f1, weight.shape[2], weight.shape[3], "symmetric")
            for o in range(weight.shape[0]):
                f2 = conv2d_padded(padded, weight, bias, slice(o, o + 1))[0]
                f3 = max_filter(f2, MAX_FILTER_SIZE)
                correlate_accumulate(f3, kernels[b * weight.shape[0] + o], t, "symmetric", scratch)
        return np.clip(t, dtype.type(0.0), dtype.type(1.0), out=t)

    def __call__(self, image: ArrayLike, *, outputs: Collection[str] = ALL_OUTPUTS) -> DehazeResult:
        """Dehaze ``image``; same as ``apply(image, estimate(image))``.

        Parameters
        ----------
        image : (H, W, 3) or (H, W) ndarray
            RGB (or gray, see Notes of the class) image, uint8/uint16/float32/float64
            (float in [0, 1]).
        outputs : collection of str, optional
            Optional planes to compute (``"transmission"``, ``"depth"``; default all).

        Returns
        -------
        DehazeResult
            ``image`` (same shape and dtype as the input), ``transmission`` (the refined
            t, as the original code uses it in the recovery: not clipped, so the guided
            filter may take it slightly outside the [0, 1] of the network's raw t),
            ``atmospheric_light`` (on the [0, 1] scale) and ``depth``
            (:func:`dehaze.depth_map` of the refined t, which takes t in [t0, 1]).
        """
        wanted = check_outputs(outputs)
        img, dtype, gray = prepare_rgb(image)
        raw = self.forward(img)
        gray_img = self._gray(img)
        light = _atmospheric_light(img, gray_img, raw, self.light_fraction)
        return self._apply(img, dtype, gray, raw, gray_img, light, wanted)

    @property
    def halo(self) -> int:
        """Context of :meth:`apply`: the network's receptive field plus the guided filter's."""
        return NETWORK_HALO + guided_halo(self.guided_radius)

    def halo_for(self, scene: LightScene) -> int:
        """Return the halo for an image with this scene: :attr:`halo` (fixed, in pixels)."""
        check_scene(scene, LightScene, "DehazeNet")
        return self.halo

    def estimate(self, image: ArrayLike) -> LightScene:
        """Estimate A by the original rule: the brightest of the lowest-t ``light_fraction`` pixels.

        Runs the network (t is needed to find A); :meth:`__call__` runs it once for both.
        """
        img, _, gray = prepare_rgb(image)
        light = _atmospheric_light(img, self._gray(img), self.forward(img), self.light_fraction)
        return LightScene((light[:1] if gray else light).astype(np.float64))

    def apply(
        self, image: ArrayLike, scene: LightScene, *, outputs: Collection[str] = ALL_OUTPUTS
    ) -> DehazeResult:
        """Dehaze ``image`` with the atmospheric light of ``scene``.

        ``outputs`` names the optional planes (``"transmission"``, ``"depth"``).
        """
        wanted = check_outputs(outputs)
        img, dtype, gray = prepare_rgb(image)
        checked = check_scene(scene, LightScene, "DehazeNet")
        # the original rule may give A = 0 (a black image): [0, 1] here, not (0, 1]
        light = np.asarray(checked.atmospheric_light, dtype=np.float64)
        if light.shape != ((1,) if gray else (3,)) or not np.all((light >= 0) & (light <= 1)):
            raise ValueError(
                f"scene.atmospheric_light must have {1 if gray else 3} values in [0, 1] for "
                f"this image, got {light.tolist()}"
            )
        light = np.repeat(light, 3) if gray else light
        light = light.astype(img.dtype)
        return self._apply(img, dtype, gray, self.forward(img), self._gray(img), light, wanted)

    @staticmethod
    def _gray(img: FloatArray) -> FloatArray:
        # channel by channel, not ``img @ weights``: BLAS may sum a matrix-vector product in
        # an order that depends on the array's size, and a tile must give the same bits
        w = [img.dtype.type(v) for v in MATLAB_GRAY_WEIGHTS]
        gray: FloatArray = img[:, :, 0] * w[0] + img[:, :, 1] * w[1] + img[:, :, 2] * w[2]
        return np.ascontiguousarray(gray)

    def _apply(
        self,
        img: FloatArray,
        dtype: np.dtype[Any],
        gray: bool,
        raw: FloatArray,
        gray_img: FloatArray,
        light: FloatArray,
        wanted: Collection[str],
    ) -> DehazeResult:
        refined = guided_filter(np.clip(gray_img, 0.0, 1.0), raw, self.guided_radius, self.eps)
        recovered = _recover(img, refined, light)
        return DehazeResult(
            image=finish_image(recovered, dtype, gray),
            transmission=refined if "transmission" in wanted else None,
            atmospheric_light=light[:1] if gray else light,
            depth=depth_map(refined) if "depth" in wanted else None,
        )

    @classmethod
    def from_file(cls, path: _formats.StrPath) -> DehazeNet:
        """Load DehazeNet weights, detecting the file's format from its content.

        Parameters
        ----------
        path : str or path-like
            The authors' MATLAB ``dehaze.mat`` (level-5 ``.mat``, read with
            :func:`scipy.io.loadmat`), or an ``.npz`` written by :meth:`save_npz`.

        Returns
        -------
        DehazeNet
            With the original code's recovery parameters.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is truncated or corrupt, holds another network's weights (e.g.
            AOD-Net, or the third-party Caffe DehazeNet, whose architecture differs), or
            any shape differs from DehazeNet's.
        """
        data = _formats.read_bytes(path, "DehazeNet")
        return cls(_formats.parse_guarded(path, lambda: _weights_from_bytes(data, Path(path))))

    @classmethod
    def from_npz(cls, path: _formats.StrPath) -> DehazeNet:
        """Load weights written by :meth:`save_npz` (no pickles are read).

        Parameters
        ----------
        path : str or path-like
            The ``.npz`` file.

        Returns
        -------
        DehazeNet
            With the original code's recovery parameters.
        """
        data = _formats.read_bytes(path, "DehazeNet")
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


def _weights_from_bytes(data: bytes, path: Path) -> DehazeNetWeights:
    """Decode DehazeNet weights from a file's bytes in any supported format."""
    fmt = _formats.detect_format(data, path.suffix)
    if fmt == "matlab":
        return DehazeNetWeights.from_matlab(_formats.read_matlab(data))
    if fmt == "npz":
        return _weights_from_npz(_formats.read_npz(data))
    if fmt == "caffe":
        net_name, layers = _formats.read_caffe(data)
        shapes = {la.name: la.blobs[0].shape for la in layers if la.blobs}
        raise ValueError(
            f"Caffe net {net_name!r} (layers {shapes}) is not supported: the only "
            f"Caffe DehazeNet is a third-party re-implementation with another "
            f"architecture; use the authors' MATLAB dehaze.mat (an AOD-Net "
            f".caffemodel loads with AODNet.from_file)"
        )
    keys = sorted(_formats.read_torch(data, fmt))
    raise ValueError(
        f"a PyTorch state_dict with keys {keys} is not DehazeNet's MATLAB weights "
        f"(AOD-Net? load it with AODNet.from_file)"
    )


def _weights_from_npz(arrays: dict[str, NDArray[Any]]) -> DehazeNetWeights:
    weights = npz_weights(arrays, _NETWORK)
    check_keys(weights, tuple(DehazeNetWeights.SHAPES), "DehazeNet weight archive")
    return DehazeNetWeights(**weights)


def matlab_round(value: float) -> int:
    """MATLAB's ``round``: halves away from zero (Python's ``round`` goes to even)."""
    return int(np.floor(abs(value) + 0.5) * np.sign(value))


def _atmospheric_light(
    image: FloatArray, gray: FloatArray, transmission: FloatArray, fraction: float
) -> FloatArray:
    """Estimate A by the original rule: brightest pixels among the lowest-t fraction.

    With n = max(1, round(fraction · N)), the threshold is the n-th smallest t; among the
    pixels with t ≤ threshold, those whose gray value equals the maximum are averaged.
    """
    flat_t = transmission.ravel()
    n = min(flat_t.size, max(1, matlab_round(fraction * flat_t.size)))
    threshold = np.partition(flat_t, n - 1)[n - 1]
    candidates = np.flatnonzero(flat_t <= threshold)
    bright = gray.ravel()[candidates]
    chosen = candidates[bright >= bright.max()]
    pixels = image.reshape(-1, image.shape[2])[chosen]
    light: FloatArray = pixels.astype(np.float64).mean(axis=0).astype(image.dtype)
    return light


def _recover(image: FloatArray, transmission: FloatArray, light: FloatArray) -> FloatArray:
    """J = (I − A) / t + A, clipped to [0, 1], with no lower bound on t.

    t = 0 exactly is replaced by the smallest positive float so that I ≠ A gives ±inf
    (clipped to 0 or 1) and I = A gives A instead of NaN.
    """
    dtype = image.dtype
    t = transmission.astype(dtype, copy=False)
    t = np.where(t == 0, np.finfo(dtype).tiny, t)[:, :, np.newaxis]
    with np.errstate(over="ignore"):
        out = (image - light) / t
    out += light
    return np.clip(out, dtype.type(0.0), dtype.type(1.0), out=out)
