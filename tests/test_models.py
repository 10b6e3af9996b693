"""AOD-Net and DehazeNet adapters: layers, file readers, forward parity, call contract.

Independent references used here:

* a slow NumPy correlation (explicit padding, one shifted add per kernel tap) and
  ``scipy.ndimage.maximum_filter`` for the layers;
* the PyTorch forward of the same AOD-Net weights (skipped where torch is absent);
* a float64 transcription of the DehazeNet MATLAB code (``run_cnn.m``, ``convolution.m``,
  ``guidedfilter.m``): MATLAB's padarray index rule, column-major kernel reshape, sort and
  ``round`` of the light rule, He's box-filter guided filter.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import scipy.ndimage as ndi

from dehaze import Dehazer, DehazeResult
from dehaze.models import (
    AODNet,
    AODNetWeights,
    DehazeNet,
    DehazeNetWeights,
    _formats,
    _layers,
    _protobuf,
)
from dehaze.models.dehazenet import MATLAB_GRAY_WEIGHTS, matlab_round

WEIGHTS = {
    "aod_pth": "weights/aodnet_pytorch_MayankSingal_dehazer.pth",
    "aod_caffe": "weights/aodnet_caffe_Boyiliee_AOD_Net.caffemodel",
    "dn_mat": "weights/dehazenet_matlab_caibolun_dehaze.mat",
    "dn_caffe": "weights/dehazenet_caffe_zlinker_DehazeNet.caffemodel",
}


# --- random networks (no data needed) ---------------------------------------------------------


def need_torch():  # type: ignore[no-untyped-def]
    """torch, or a skip outside CI (in CI, where it is installed on purpose, a failure)."""
    try:
        import torch
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"torch is required in CI: {exc}")
        pytest.skip(f"torch is not installed: {exc}")
    return torch


def random_aodnet_weights(rng: np.random.Generator) -> AODNetWeights:
    arrays = {}
    for name, shape in AODNetWeights.SHAPES.items():
        scale = 0.05 if name.endswith("bias") else 0.3
        arrays[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return AODNetWeights(**arrays)


def random_dehazenet_weights(rng: np.random.Generator) -> DehazeNetWeights:
    arrays = {}
    for name, shape in DehazeNetWeights.SHAPES.items():
        scale = 0.1 if name.endswith("bias") else 0.2
        arrays[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    arrays["regression_weight"] = (arrays["regression_weight"] * 0.05).astype(np.float32)
    arrays["regression_bias"] = np.array([0.5], np.float32)
    return DehazeNetWeights(**arrays)


def hazy_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth-ish random RGB image in [0, 1] with a haze gradient."""
    base = ndi.gaussian_filter(rng.random((height, width, 3)), sigma=(1.5, 1.5, 0))
    t = np.linspace(0.3, 0.9, height)[:, None, None]
    return np.clip(base * t + 0.8 * (1 - t), 0.0, 1.0)


# --- slow references --------------------------------------------------------------------------


def matlab_pad(plane: np.ndarray, before: int, after: int, axis: int) -> np.ndarray:
    """MATLAB padarray(..., 'symmetric') along one axis: index vector [1:M M:-1:1], periodic."""
    size = plane.shape[axis]
    cycle = np.r_[np.arange(size), np.arange(size)[::-1]]
    index = cycle[np.mod(np.arange(-before, size + after), 2 * size)]
    return np.take(plane, index, axis=axis)


def reference_correlate(plane: np.ndarray, kernel: np.ndarray, border: str) -> np.ndarray:
    """'same' correlation by explicit padding and one shifted add per tap, float64."""
    kh, kw = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    bottom, right = kh - 1 - top, kw - 1 - left
    p = plane.astype(np.float64)
    if border == "zero":
        padded = np.pad(p, ((top, bottom), (left, right)))
    else:
        padded = matlab_pad(matlab_pad(p, top, bottom, 0), left, right, 1)
    out = np.zeros(plane.shape)
    height, width = plane.shape
    for dy in range(kh):
        for dx in range(kw):
            out += kernel[dy, dx] * padded[dy : dy + height, dx : dx + width]
    return out


def reference_conv(planes: np.ndarray, weight: np.ndarray, bias: np.ndarray, border: str):
    out = np.zeros((weight.shape[0],) + planes.shape[1:])
    for o in range(weight.shape[0]):
        out[o] = bias[o]
        for i in range(weight.shape[1]):
            out[o] += reference_correlate(planes[i], weight[o, i].astype(np.float64), border)
    return out


def reference_aodnet(weights: AODNetWeights, image: np.ndarray) -> np.ndarray:
    """AOD-Net in float64 with the slow correlation; returns (H, W, 3), unclipped above."""
    w = {k: v.astype(np.float64) for k, v in weights.arrays().items()}
    x = np.moveaxis(image.astype(np.float64), 2, 0)

    def layer(name: str, inp: np.ndarray) -> np.ndarray:
        return np.maximum(reference_conv(inp, w[f"{name}_weight"], w[f"{name}_bias"], "zero"), 0)

    x1 = layer("conv1", x)
    x2 = layer("conv2", x1)
    x3 = layer("conv3", np.concatenate([x1, x2]))
    x4 = layer("conv4", np.concatenate([x2, x3]))
    k = layer("conv5", np.concatenate([x1, x2, x3, x4]))
    return np.moveaxis(np.maximum(k * x - k + 1, 0), 0, 2)


def matlab_convolution(data: np.ndarray, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """convolution.m: weights (in, k*k, out) (or (in, k*k) for one output), imfilter symmetric."""
    weights = np.asarray(weights, np.float64)
    if weights.ndim == 2:
        weights = weights[:, :, None]
    channels, k2, filters = weights.shape
    k = int(round(np.sqrt(k2)))
    out = np.zeros(data.shape[:2] + (filters,))
    for i in range(filters):
        for j in range(channels):
            sub = weights[j, :, i].reshape(k, k, order="F")  # MATLAB reshape is column-major
            out[:, :, i] += reference_correlate(data[:, :, j], sub, "symmetric")
        out[:, :, i] += float(np.ravel(biases)[i])
    return out


def he_boxfilter_mean(plane: np.ndarray, r: int) -> np.ndarray:
    """Box mean over the (2r+1)^2 window clipped to the image (He's boxfilter(.)/N)."""
    size = 2 * r + 1
    total = ndi.uniform_filter(plane, size, mode="constant", cval=0.0)
    count = ndi.uniform_filter(np.ones_like(plane), size, mode="constant", cval=0.0)
    return total / count


def he_guidedfilter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    mean_i = he_boxfilter_mean(guide, r)
    mean_p = he_boxfilter_mean(src, r)
    cov_ip = he_boxfilter_mean(guide * src, r) - mean_i * mean_p
    var_i = he_boxfilter_mean(guide * guide, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return he_boxfilter_mean(a, r) * guide + he_boxfilter_mean(b, r)


def matlab_dehazenet(mat: dict[str, np.ndarray], im: np.ndarray):
    """run_cnn.m transcribed step by step in float64 (r0 = 50, eps = 1e-3)."""
    gray_i = im @ np.asarray(MATLAB_GRAY_WEIGHTS)
    haze = im - 0.5
    f1 = matlab_convolution(haze, mat["weights_conv1"], mat["biases_conv1"])
    f1temp = f1.reshape(-1, 16, order="F")
    big_f1 = np.stack([f1temp[:, 4 * s : 4 * s + 4].max(axis=1) for s in range(4)], axis=1)
    big_f1 = big_f1.reshape(f1.shape[0], f1.shape[1], 4, order="F")
    f2 = np.concatenate(
        [
            matlab_convolution(big_f1, mat[f"weights_conv{k}x{k}"], mat[f"biases_conv{k}x{k}"])
            for k in (3, 5, 7)
        ],
        axis=2,
    )
    f3 = ndi.maximum_filter(f2, size=(7, 7, 1), mode="nearest")  # convMax(F2, 3)
    f4 = np.clip(matlab_convolution(f3, mat["weights_ip"], mat["biases_ip"])[:, :, 0], 0, 1)
    raw = f4.copy()
    sortdata = np.sort(f4.ravel(order="F"))
    idx = max(1, matlab_round(0.01 * sortdata.size))
    val = sortdata[idx - 1]
    id_set = np.flatnonzero((f4 <= val).ravel(order="F"))
    bright = gray_i.ravel(order="F")[id_set]
    chosen = id_set[bright >= bright.max()]
    itemp = im.reshape(-1, 3, order="F")
    light = itemp[chosen].mean(axis=0)
    r0 = min(50, max(im.shape[:2]))
    refined = he_guidedfilter(gray_i, f4, r0, 1e-3)
    j = (im - light) / refined[:, :, None] + light
    return raw, refined, light, np.clip(j, 0, 1)


def dehazenet_as_matlab(weights: DehazeNetWeights) -> dict[str, np.ndarray]:
    """Write DehazeNet weights back in the MATLAB layout (in, k*k, out)."""
    out = {}
    names = {
        "conv1": "conv1",
        "conv3x3": "conv3x3",
        "conv5x5": "conv5x5",
        "conv7x7": "conv7x7",
        "regression": "ip",
    }
    for ours, mat in names.items():
        w = getattr(weights, f"{ours}_weight")  # (out, in, k, k)
        n_out, n_in, k, _ = w.shape
        stored = np.transpose(w, (1, 2, 3, 0)).reshape(n_in, k * k, n_out, order="F")
        out[f"weights_{mat}"] = stored[:, :, 0] if n_out == 1 else stored
        out[f"biases_{mat}"] = getattr(weights, f"{ours}_bias").reshape(n_out, 1)
    return out


# --- layers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (7, 5), (19, 33), (40, 11)])
@pytest.mark.parametrize("ksize", [1, 3, 5, 6, 7])
@pytest.mark.parametrize("border", ["zero", "symmetric"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_correlate_matches_slow_reference(rng, shape, ksize, border, dtype):
    plane = rng.random(shape).astype(dtype)
    kernel = rng.standard_normal((ksize, ksize)).astype(dtype)
    got = _layers.correlate(plane, kernel, border)
    want = reference_correlate(plane, kernel, border)
    assert got.dtype == dtype and got.shape == shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_correlate_is_not_convolution(rng):
    plane = np.zeros((9, 9))
    plane[4, 4] = 1.0
    kernel = np.arange(9.0).reshape(3, 3)
    got = _layers.correlate(plane, kernel, "zero")
    # an impulse correlated with k gives k rotated by 180 degrees around the impulse
    np.testing.assert_array_equal(got[3:6, 3:6], kernel[::-1, ::-1])


def test_even_kernel_anchor_is_matlab_same():
    """A 6x6 kernel: 2 taps before the output pixel, 3 after (MATLAB 'same' centre 3)."""
    plane = np.zeros((12, 12))
    plane[6, 6] = 1.0
    kernel = np.zeros((6, 6))
    kernel[0, 0] = 1.0  # tap at offset (-2, -2)
    got = _layers.correlate(plane, kernel, "zero")
    assert np.argwhere(got).tolist() == [[8, 8]]
    kernel[:] = 0.0
    kernel[5, 5] = 1.0  # tap at offset (+3, +3)
    got = _layers.correlate(plane, kernel, "zero")
    assert np.argwhere(got).tolist() == [[3, 3]]


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (16, 23)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_filter_matches_scipy(rng, shape, dtype):
    plane = rng.standard_normal(shape).astype(dtype)
    got = _layers.max_filter(plane, 7)
    np.testing.assert_array_equal(got, ndi.maximum_filter(plane, size=7, mode="nearest"))


def test_conv2d_matches_reference_and_selects_channels(rng):
    planes = rng.random((4, 13, 17))
    weight = rng.standard_normal((6, 4, 5, 5))
    bias = rng.standard_normal(6)
    want = reference_conv(planes, weight, bias, "symmetric")
    np.testing.assert_allclose(_layers.conv2d(planes, weight, bias, "symmetric"), want, atol=1e-12)
    part = _layers.conv2d(planes, weight, bias, "symmetric", slice(2, 5))
    np.testing.assert_allclose(part, want[2:5], atol=1e-12)


# --- AOD-Net forward --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (23, 31)])
def test_aodnet_matches_slow_reference(rng, shape):
    net = AODNet(random_aodnet_weights(rng))
    image = rng.random(shape + (3,))
    want = reference_aodnet(net.weights, image)
    got64 = net.forward(image)
    np.testing.assert_allclose(got64, want, rtol=1e-10, atol=1e-12)
    got32 = net.forward(image.astype(np.float32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-5)


def torch_aodnet(weights: AODNetWeights, image: np.ndarray, dtype: Any) -> np.ndarray:
    """The PyTorch forward of AOD-Net (as in the MIT re-implementation), returned (H, W, 3)."""
    torch = need_torch()
    import torch.nn.functional as F

    w = {k: torch.from_numpy(np.array(v)).to(dtype) for k, v in weights.arrays().items()}

    def layer(name: str, x: Any, pad: int) -> Any:
        return F.relu(F.conv2d(x, w[f"{name}_weight"], w[f"{name}_bias"], padding=pad))

    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, 2, 0)))[None].to(dtype)
        x1 = layer("conv1", x, 0)
        x2 = layer("conv2", x1, 1)
        x3 = layer("conv3", torch.cat((x1, x2), 1), 2)
        x4 = layer("conv4", torch.cat((x2, x3), 1), 3)
        k = layer("conv5", torch.cat((x1, x2, x3, x4), 1), 1)
        out = F.relu(k * x - k + 1)
    return np.moveaxis(out[0].numpy(), 0, 2)


@pytest.mark.parametrize("shape", [(7, 9), (46, 62)])
def test_aodnet_matches_pytorch_random_weights(rng, shape):
    torch = need_torch()
    net = AODNet(random_aodnet_weights(rng))
    image = rng.random(shape + (3,))
    want64 = torch_aodnet(net.weights, image, torch.float64)
    np.testing.assert_allclose(net.forward(image), want64, rtol=1e-5)
    want32 = torch_aodnet(net.weights, image, torch.float32)
    got32 = net.forward(image.astype(np.float32))
    np.testing.assert_allclose(got32, want32, rtol=1e-5, atol=1e-6)


@pytest.mark.data
@pytest.mark.parametrize("key", ["aod_pth", "aod_caffe"])
def test_aodnet_published_weights_match_pytorch(data_dir, rng, key):
    torch = need_torch()
    net = AODNet.from_file(data_dir / WEIGHTS[key])
    image = rng.random((60, 80, 3))
    want64 = torch_aodnet(net.weights, image, torch.float64)
    np.testing.assert_allclose(net.forward(image), want64, rtol=1e-5)
    want32 = torch_aodnet(net.weights, image, torch.float32)
    got32 = net.forward(image.astype(np.float32))
    np.testing.assert_allclose(got32, want32, rtol=1e-5, atol=1e-6)


# --- DehazeNet forward ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (4, 3), (9, 14), (37, 29)])
def test_dehazenet_matches_matlab_transcription(rng, shape):
    weights = random_dehazenet_weights(rng)
    net = DehazeNet(weights)
    image = hazy_image(rng, *shape)
    raw, refined, light, recovered = matlab_dehazenet(dehazenet_as_matlab(weights), image)
    np.testing.assert_allclose(net.forward(image), raw, atol=1e-10)
    result = net(image)
    np.testing.assert_allclose(result.atmospheric_light, light, atol=1e-10)
    np.testing.assert_allclose(result.transmission, refined, atol=1e-8)
    np.testing.assert_allclose(result.image, recovered, atol=1e-6)


def test_dehazenet_float32_close_to_float64(rng):
    net = DehazeNet(random_dehazenet_weights(rng))
    image = hazy_image(rng, 30, 41)
    t64 = net.forward(image)
    t32 = net.forward(image.astype(np.float32))
    assert t32.dtype == np.float32
    np.testing.assert_allclose(t32, t64, atol=2e-5)


def test_matlab_round_halves_away_from_zero():
    assert [matlab_round(v) for v in (0.5, 1.5, 2.5, -0.5, 0.49)] == [1, 2, 3, -1, 0]


@pytest.mark.data
def test_dehazenet_published_weights_match_matlab_transcription(data_dir, rng):
    variables = scipy.io.loadmat(data_dir / WEIGHTS["dn_mat"])
    net = DehazeNet.from_file(data_dir / WEIGHTS["dn_mat"])
    image = hazy_image(rng, 24, 32)
    raw, refined, light, recovered = matlab_dehazenet(variables, image)
    result = net(image)
    np.testing.assert_allclose(net.forward(image), raw, atol=1e-10)
    np.testing.assert_allclose(result.atmospheric_light, light, atol=1e-10)
    np.testing.assert_allclose(result.transmission, refined, atol=1e-8)
    np.testing.assert_allclose(result.image, recovered, atol=1e-6)


# --- call contract ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_nets() -> tuple[AODNet, DehazeNet]:
    rng = np.random.default_rng(7)
    return AODNet(random_aodnet_weights(rng)), DehazeNet(random_dehazenet_weights(rng))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_result_keeps_dtype_and_shape(small_nets, rng, dtype):
    base = hazy_image(rng, 21, 26)
    image = (
        base.astype(dtype)
        if np.dtype(dtype).kind == "f"
        else np.rint(base * np.iinfo(dtype).max).astype(dtype)
    )
    aod, dnet = small_nets
    for method in (aod, dnet):
        assert isinstance(method, Dehazer)
        result = method(image)
        assert isinstance(result, DehazeResult)
        assert result.image.dtype == dtype and result.image.shape == image.shape
        if np.dtype(dtype).kind == "f":
            assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    aod_result = aod(image)
    assert aod_result.transmission is None and aod_result.atmospheric_light is None
    dn_result = dnet(image)
    assert dn_result.transmission is not None and dn_result.transmission.shape == image.shape[:2]
    assert dn_result.atmospheric_light is not None and dn_result.atmospheric_light.shape == (3,)
    assert dn_result.depth is not None and np.all(dn_result.depth >= 0)


def test_integer_input_matches_float_input(small_nets, rng):
    image = np.rint(hazy_image(rng, 15, 18) * 255).astype(np.uint8)
    for method in small_nets:
        from_uint8 = method(image).image
        from_float = method(image.astype(np.float32) / np.float32(255)).image
        np.testing.assert_array_equal(from_uint8, np.rint(from_float * 255).astype(np.uint8))


def test_gray_input_returns_gray(small_nets, rng):
    gray = hazy_image(rng, 17, 19)[:, :, 0]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    aod, dnet = small_nets
    aod_gray = aod(gray).image
    assert aod_gray.shape == gray.shape
    np.testing.assert_allclose(aod_gray, aod(rgb).image @ np.array([0.299, 0.587, 0.114]))
    dn_gray = dnet(gray)
    dn_rgb = dnet(rgb)
    assert dn_gray.image.shape == gray.shape and dn_gray.atmospheric_light.shape == (1,)
    np.testing.assert_allclose(dn_gray.image, dn_rgb.image[:, :, 0], atol=1e-12)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_constant_images_give_finite_results(small_nets, value):
    image = np.full((12, 14, 3), value)
    for method in small_nets:
        result = method(image)
        assert np.all(np.isfinite(result.image))
        assert result.transmission is None or np.all(np.isfinite(result.transmission))


def test_dehazenet_zero_transmission_stays_finite():
    arrays = {k: np.zeros(s, np.float32) for k, s in DehazeNetWeights.SHAPES.items()}
    net = DehazeNet(DehazeNetWeights(**arrays))  # BReLU(0) = 0: t is 0 everywhere
    image = np.zeros((8, 9, 3))
    image[2:5, 3:6] = 0.7
    result = net(image)
    assert np.all(result.transmission == 0.0)
    assert np.all(np.isfinite(result.image)) and np.all(np.isfinite(result.depth))


def test_input_is_not_modified_and_views_are_accepted(small_nets, rng):
    big = hazy_image(rng, 30, 40)
    view = big[::2, ::3]
    view.setflags(write=False)
    before = view.copy()
    for method in small_nets:
        got = method(view).image
        np.testing.assert_array_equal(got, method(np.ascontiguousarray(view)).image)
    np.testing.assert_array_equal(view, before)


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.zeros((4, 4, 4)), ValueError, "4 channels"),
        (np.zeros((4, 4), np.int32), TypeError, "accepted dtypes"),
        (np.full((4, 4, 3), 2.0), ValueError, r"\[0, 1\]"),
        (np.full((4, 4, 3), np.nan), ValueError, "NaN"),
        (np.zeros((0, 4, 3)), ValueError, "empty"),
    ],
)
def test_bad_images_raise(small_nets, image, error, match):
    for method in small_nets:
        with pytest.raises(error, match=match):
            method(image)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"guided_radius": -1}, ValueError, "guided_radius"),
        ({"guided_radius": 2.5}, TypeError, "guided_radius"),
        ({"eps": 0.0}, ValueError, "eps"),
        ({"light_fraction": 1.5}, ValueError, "light_fraction"),
    ],
)
def test_dehazenet_parameters_are_checked(small_nets, kwargs, error, match):
    with pytest.raises(error, match=match):
        DehazeNet(small_nets[1].weights, **kwargs)


def test_weights_type_and_shape_checks(rng):
    with pytest.raises(TypeError, match="AODNetWeights"):
        AODNet(random_dehazenet_weights(rng))  # type: ignore[arg-type]
    arrays = random_aodnet_weights(rng).arrays()
    arrays["conv4_weight"] = np.zeros((3, 6, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"conv4_weight must have shape \(3, 6, 7, 7\)"):
        AODNetWeights(**arrays)
    arrays["conv4_weight"] = np.full((3, 6, 7, 7), np.inf, np.float32)
    with pytest.raises(ValueError, match="NaN or inf"):
        AODNetWeights(**arrays)
    arrays["conv4_weight"] = np.zeros((3, 6, 7, 7), np.int64)
    with pytest.raises(TypeError, match="float32 or float64"):
        AODNetWeights(**arrays)


def test_weights_are_read_only_copies(rng):
    source = {k: np.ones(s, np.float32) for k, s in AODNetWeights.SHAPES.items()}
    weights = AODNetWeights(**source)
    source["conv1_weight"][:] = 5.0
    assert np.all(weights.conv1_weight == 1.0)
    with pytest.raises(ValueError, match="read-only"):
        weights.conv1_weight[0, 0, 0, 0] = 2.0


# --- neutral npz ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1])
def test_npz_round_trip_is_exact(small_nets, tmp_path, which):
    method = small_nets[which]
    cls = type(method)
    path = method.save_npz(tmp_path / "w.npz")
    loaded = cls.from_npz(path)
    via_from_file = cls.from_file(path)
    for other in (loaded, via_from_file):
        for name, value in method.weights.arrays().items():
            got = other.weights.arrays()[name]
            assert got.dtype == value.dtype
            np.testing.assert_array_equal(got, value)
    with pytest.raises(FileExistsError):
        method.save_npz(path)
    method.save_npz(path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary left behind


def test_npz_of_the_other_network_is_rejected(small_nets, tmp_path):
    aod, dnet = small_nets
    aod_path = aod.save_npz(tmp_path / "aod.npz")
    dn_path = dnet.save_npz(tmp_path / "dn.npz")
    with pytest.raises(ValueError, match="'aodnet' weights, not 'dehazenet'"):
        DehazeNet.from_npz(aod_path)
    with pytest.raises(ValueError, match="'dehazenet' weights, not 'aodnet'"):
        AODNet.from_file(dn_path)


def test_npz_with_wrong_shape_or_keys_is_rejected(small_nets, tmp_path):
    arrays = {"network": np.array("aodnet"), "format_version": np.array(1)}
    arrays.update(small_nets[0].weights.arrays())
    arrays["conv5_weight"] = np.zeros((3, 12, 5, 5), np.float32)
    bad_shape = tmp_path / "shape.npz"
    np.savez(bad_shape, **arrays)
    with pytest.raises(ValueError, match="conv5_weight must have shape"):
        AODNet.from_npz(bad_shape)
    del arrays["conv5_weight"]
    missing = tmp_path / "missing.npz"
    np.savez(missing, **arrays)
    with pytest.raises(ValueError, match="missing"):
        AODNet.from_npz(missing)
    untagged = tmp_path / "untagged.npz"
    np.savez(untagged, a=np.zeros(3))
    with pytest.raises(ValueError, match="no 'network' tag"):
        AODNet.from_npz(untagged)


def test_save_npz_requires_npz_suffix(small_nets, tmp_path):
    with pytest.raises(ValueError, match=r"\.npz"):
        small_nets[0].save_npz(tmp_path / "weights.bin")


# --- readers ----------------------------------------------------------------------------------


def test_missing_empty_and_garbage_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        AODNet.from_file(tmp_path / "nope.pth")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        AODNet.from_file(empty)
    garbage = tmp_path / "garbage.caffemodel"
    garbage.write_bytes(np.random.default_rng(1).bytes(300))
    for cls in (AODNet, DehazeNet):
        with pytest.raises(ValueError, match=r"garbage\.caffemodel"):
            cls.from_file(garbage)


def legacy_stream(*objects: object) -> bytes:
    magic = pickle.dumps(_formats.TORCH_LEGACY_MAGIC, protocol=2)
    version = pickle.dumps(_formats.TORCH_LEGACY_PROTOCOL, protocol=2)
    info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    return magic + version + info + b"".join(pickle.dumps(o, protocol=2) for o in objects)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_arbitrary_classes(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(legacy_stream(_Evil(), []))
    with pytest.raises(ValueError, match="refusing to load"):
        AODNet.from_file(path)


def test_pickle_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    path.write_bytes(legacy_stream([1, 2, 3], []))
    with pytest.raises(ValueError, match="not a state_dict"):
        AODNet.from_file(path)


def test_wrong_magic_number(tmp_path):
    path = tmp_path / "magic.pth"
    path.write_bytes(pickle.dumps(12345, protocol=2) + pickle.dumps({}, protocol=2))
    with pytest.raises(ValueError, match="magic"):
        AODNet.from_file(path)


def torch_saved(tmp_path: Path, state: dict[str, Any], legacy: bool) -> Path:
    torch = need_torch()
    path = tmp_path / ("legacy.pth" if legacy else "zip.pth")
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    torch.save(tensors, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [True, False])
def test_torch_files_round_trip_without_torch(tmp_path, rng, legacy):
    weights = random_aodnet_weights(rng)
    state = {}
    for name, value in weights.arrays().items():
        layer, kind = name.rsplit("_", 1)
        state[f"e_{layer}.{kind}"] = value
    path = torch_saved(tmp_path, state, legacy)
    loaded = AODNet.from_file(path)
    for name, value in weights.arrays().items():
        np.testing.assert_array_equal(loaded.weights.arrays()[name], value)
    # a non-contiguous tensor (a transposed view) and a DataParallel prefix are read too
    torch = need_torch()
    base = torch.from_numpy(rng.standard_normal((5, 4)))
    other = tmp_path / "view.pth"
    torch.save(
        {"module.t": base.t(), "x": base[1:3]}, other, _use_new_zipfile_serialization=not legacy
    )
    fmt = _formats.detect_format(other.read_bytes())
    arrays = _formats.read_torch(other.read_bytes(), fmt)
    np.testing.assert_array_equal(arrays["module.t"], base.numpy().T)
    np.testing.assert_array_equal(arrays["x"], base.numpy()[1:3])


def test_torch_file_of_another_network(tmp_path):
    path = torch_saved(tmp_path, {"fc.weight": np.zeros((2, 2), np.float32)}, legacy=True)
    # the keys are checked before any storage is read: the message lists what is missing
    with pytest.raises(ValueError, match=r"legacy\.pth: state_dict: missing \['e_conv1\.weight'"):
        AODNet.from_file(path)
    with pytest.raises(ValueError, match="not DehazeNet"):
        DehazeNet.from_file(path)


def test_import_does_not_pull_in_torch():
    code = (
        "import sys, dehaze, dehaze.models; "
        "bad = [m for m in ('torch', 'caffe', 'tensorflow') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- protobuf ---------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_field(number: int, payload: bytes | int, wire: int = 2) -> bytes:
    tag = varint(number << 3 | wire)
    if wire == 0:
        assert isinstance(payload, int)
        return tag + varint(payload)
    assert isinstance(payload, bytes)
    return tag + (varint(len(payload)) + payload if wire == 2 else payload)


def pb_blob(array: np.ndarray, *, packed: bool = True, legacy_dims: bool = False) -> bytes:
    arr = np.asarray(array, "<f4")
    if legacy_dims:
        dims = (1,) * (4 - arr.ndim) + arr.shape
        head = b"".join(pb_field(n, d, 0) for n, d in zip((1, 2, 3, 4), dims, strict=True))
    else:
        head = pb_field(7, pb_field(1, b"".join(varint(d) for d in arr.shape)))
    if packed:
        data = pb_field(5, arr.tobytes())
    else:
        data = b"".join(pb_field(5, struct.pack("<f", v), 5) for v in arr.ravel())
    return head + data


def caffe_aodnet(weights: AODNetWeights, *, v1: bool = False, packed: bool = True) -> bytes:
    layers = []
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        w = getattr(weights, f"{name}_weight")
        b = getattr(weights, f"{name}_bias")
        blobs = pb_blob(w, packed=packed, legacy_dims=v1) + pb_blob(
            b, packed=packed, legacy_dims=v1
        )
        if v1:  # V1LayerParameter: name 4, type 5 (enum, 4 = CONVOLUTION), blobs 6
            body = pb_field(4, name.encode()) + pb_field(5, 4, 0)
            body += b"".join(
                pb_field(6, pb_blob(x, packed=packed, legacy_dims=True)) for x in (w, b)
            )
            layers.append(pb_field(2, body))
        else:
            body = pb_field(1, name.encode()) + pb_field(2, b"Convolution")
            body += b"".join(pb_field(7, pb_blob(x, packed=packed)) for x in (w, b))
            layers.append(pb_field(100, body))
        del blobs
    return pb_field(1, b"AOD") + b"".join(layers)


@pytest.mark.parametrize(("v1", "packed"), [(False, True), (False, False), (True, True)])
def test_caffe_reader_variants(tmp_path, rng, v1, packed):
    weights = random_aodnet_weights(rng)
    path = tmp_path / "net.caffemodel"
    path.write_bytes(caffe_aodnet(weights, v1=v1, packed=packed))
    loaded = AODNet.from_file(path)
    for name, value in weights.arrays().items():
        np.testing.assert_array_equal(loaded.weights.arrays()[name], value)


def test_caffe_wrong_shapes_and_truncation(tmp_path, rng):
    arrays = random_aodnet_weights(rng).arrays()
    good = caffe_aodnet(AODNetWeights(**arrays))
    for cut in (5, len(good) // 2, len(good) - 3):
        path = tmp_path / f"cut{cut}.caffemodel"
        path.write_bytes(good[:cut])
        with pytest.raises(ValueError, match=re.escape(path.name)):
            AODNet.from_file(path)
    # a conv3 with 7x7 kernels: shapes are checked layer by layer
    body = pb_field(1, b"conv3") + pb_field(2, b"Convolution")
    body += pb_field(7, pb_blob(np.zeros((3, 6, 7, 7)))) + pb_field(7, pb_blob(np.zeros(3)))
    swapped = good.replace(b"conv3", b"convX") + pb_field(100, body)
    path = tmp_path / "shape.caffemodel"
    path.write_bytes(swapped)
    with pytest.raises(ValueError, match=r"conv3 has kernels of shape \(3, 6, 7, 7\)"):
        AODNet.from_file(path)


def test_protobuf_blob_size_mismatch():
    blob = pb_field(7, pb_field(1, varint(2) + varint(3))) + pb_field(
        5, np.zeros(5, "<f4").tobytes()
    )
    with pytest.raises(ValueError, match="holds 5 values, expected 6"):
        _protobuf.decode_blob(blob)


# --- published files --------------------------------------------------------------------------


@pytest.mark.data
def test_legacy_reader_matches_torch_load(data_dir):
    torch = need_torch()
    path = data_dir / WEIGHTS["aod_pth"]
    ours = _formats.read_torch_legacy(path.read_bytes())
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == np.float32
        np.testing.assert_array_equal(ours[key], value.numpy())


@pytest.mark.data
def test_published_files_load(data_dir):
    aod = AODNet.from_file(data_dir / WEIGHTS["aod_pth"])
    caffe = AODNet.from_file(data_dir / WEIGHTS["aod_caffe"])
    dn = DehazeNet.from_file(data_dir / WEIGHTS["dn_mat"])
    total = sum(v.size for v in aod.weights.arrays().values())
    assert total == 1761 == sum(v.size for v in caffe.weights.arrays().values())
    # the two AOD-Net releases are different trainings of the same architecture
    assert not np.array_equal(aod.weights.conv4_weight, caffe.weights.conv4_weight)
    mat = scipy.io.loadmat(data_dir / WEIGHTS["dn_mat"])
    # kernel (o, i) is the column-major reshape of row (i, :, o)
    np.testing.assert_array_equal(
        dn.weights.conv5x5_weight[3, 2], mat["weights_conv5x5"][2, :, 3].reshape(5, 5).T
    )
    np.testing.assert_array_equal(
        dn.weights.regression_weight[0, 40].T.ravel(), mat["weights_ip"][40]
    )


@pytest.mark.data
@pytest.mark.parametrize(
    ("cls", "key", "match"),
    [
        (AODNet, "dn_mat", "not AOD-Net weights"),
        (AODNet, "dn_caffe", "is not AOD-Net"),
        (DehazeNet, "aod_pth", "not DehazeNet"),
        (DehazeNet, "aod_caffe", "not supported"),
        (DehazeNet, "dn_caffe", "not supported"),
    ],
)
def test_wrong_network_files_are_rejected(data_dir, cls, key, match):
    with pytest.raises(ValueError, match=match):
        cls.from_file(data_dir / WEIGHTS[key])


@pytest.mark.data
@pytest.mark.parametrize(
    ("cls", "key"), [(AODNet, "aod_pth"), (AODNet, "aod_caffe"), (DehazeNet, "dn_mat")]
)
def test_truncated_published_files_are_rejected(data_dir, tmp_path, cls, key):
    data = (data_dir / WEIGHTS[key]).read_bytes()
    suffix = Path(WEIGHTS[key]).suffix
    for fraction in (0.1, 0.5, 0.9, 0.999):
        path = tmp_path / f"cut{fraction}{suffix}"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(ValueError, match=re.escape(path.name)):
            cls.from_file(path)


@pytest.mark.data
def test_dehazenet_mat_with_wrong_shape(data_dir, tmp_path):
    variables = scipy.io.loadmat(data_dir / WEIGHTS["dn_mat"])
    variables = {k: v for k, v in variables.items() if not k.startswith("__")}
    variables["weights_conv5x5"] = variables["weights_conv5x5"][:, :9, :]
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, variables)
    with pytest.raises(ValueError, match=r"weights_conv5x5 has shape \(4, 9, 16\)"):
        DehazeNet.from_file(path)
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"x": np.zeros(3)})
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="missing"):
        DehazeNet.from_file(path)


# --- reproduction on shared SOTS pairs --------------------------------------------------------


def sots_pairs(data_dir: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from dehaze.io import imread

    hazy_dir = data_dir / "sots" / "indoor" / "hazy"
    names = sorted(p.stem for p in hazy_dir.glob("*.png"))
    chosen = names[:: max(1, len(names) // count)][:count]
    pairs = []
    for name in chosen:
        hazy = imread(hazy_dir / f"{name}.png") / 255.0
        clear = imread(data_dir / "sots" / "indoor" / "gt" / f"{name.split('_')[0]}.png") / 255.0
        pairs.append((hazy, clear))
    return pairs


@pytest.mark.data
@pytest.mark.slow
def test_aodnet_sots_scores_match_pytorch(data_dir):
    """The MIT .pth on 6 shared SOTS pairs: per-image PSNR/SSIM equal the PyTorch forward's."""
    torch = need_torch()
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    net = AODNet.from_file(data_dir / WEIGHTS["aod_pth"])
    pairs = sots_pairs(data_dir, 6)
    assert len(pairs) == 6
    for hazy, clear in pairs:
        ours = net(hazy).image
        theirs = np.clip(torch_aodnet(net.weights, hazy, torch.float32), 0, 1).astype(np.float64)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
        psnr = [peak_signal_noise_ratio(clear, x, data_range=1) for x in (ours, theirs)]
        ssim = [
            structural_similarity(clear, x, channel_axis=-1, data_range=1) for x in (ours, theirs)
        ]
        assert psnr[0] == pytest.approx(psnr[1], abs=1e-4)
        assert ssim[0] == pytest.approx(ssim[1], abs=1e-5)
        # and the network does dehaze: better than the hazy input
        assert peak_signal_noise_ratio(clear, ours, data_range=1) > peak_signal_noise_ratio(
            clear, hazy, data_range=1
        )


# --- hardening: overflow, crafted blobs ---------------------------------------------------------


def test_aodnet_output_overflow_is_an_error_not_nan():
    # finite weights of 1e10 overflow K in float32: this gave an all-NaN image (and a
    # RuntimeWarning), now a ValueError that says why
    huge = AODNetWeights(
        **{k: np.full(s, 1e10, np.float32) for k, s in AODNetWeights.SHAPES.items()}
    )
    with pytest.raises(ValueError, match="not finite in float32"):
        AODNet(huge)(np.full((16, 16, 3), 0.5, np.float32))
    moderate = AODNetWeights(
        **{k: np.full(s, 1e3, np.float32) for k, s in AODNetWeights.SHAPES.items()}
    )
    assert np.all(np.isfinite(AODNet(moderate)(np.full((16, 16, 3), 0.5, np.float32)).image))


def test_caffe_blob_with_huge_declared_shape():
    from dehaze.models._protobuf import ProtobufError, decode_blob

    blob = pb_field(7, pb_field(1, varint(2**62) + varint(2**62))) + pb_field(5, b"\0" * 8)
    with pytest.raises(ProtobufError, match="declares shape"):
        decode_blob(blob)
    blob = pb_field(7, pb_field(1, b"".join(varint(1) for _ in range(9)))) + pb_field(5, b"\0" * 4)
    with pytest.raises(ProtobufError, match="declares shape"):
        decode_blob(blob)
