"""Weight loaders against files written by the formats' own libraries.

Every file here is produced by an independent writer with known random weights: protobuf's
Python package (``.caffemodel``, messages built from the field numbers of Caffe's
``caffe.proto``), ``torch.save`` (``.pth``, zip and legacy formats, with shared and strided
storages), and ``scipy.io.savemat`` (``.mat``, MATLAB's column-major layout written out by
index below). The loaded weights are compared element by element with what was written;
the reader is never compared with itself.

torch and protobuf are optional here; in CI (``CI`` set) they are installed, and a missing
one fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import scipy.io

from dehaze.models import AODNet, AODNetWeights, DehazeNet, DehazeNetWeights

AOD_SHAPES = {
    "conv1": (3, 3, 1, 1),
    "conv2": (3, 3, 3, 3),
    "conv3": (3, 6, 5, 5),
    "conv4": (3, 6, 7, 7),
    "conv5": (3, 12, 3, 3),
}
AOD_PADDING = {"conv1": 0, "conv2": 1, "conv3": 2, "conv4": 3, "conv5": 1}
DEHAZENET_LAYERS = {  # field name: ((out, in, k, k), MATLAB variable suffix)
    "conv1": ((16, 3, 5, 5), "conv1"),
    "conv3x3": ((16, 4, 3, 3), "conv3x3"),
    "conv5x5": ((16, 4, 5, 5), "conv5x5"),
    "conv7x7": ((16, 4, 7, 7), "conv7x7"),
    "regression": ((1, 48, 6, 6), "ip"),
}


def need(module: str) -> ModuleType:
    """Import an optional test dependency: skip without it, except in CI where it must be."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} must be installed in CI (see .ci/run and the test extra)")
        pytest.skip(f"{module} is not installed")


def random_aod_weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for layer, shape in AOD_SHAPES.items():
        weights[f"{layer}_weight"] = rng.normal(0, 0.3, shape).astype(np.float32)
        weights[f"{layer}_bias"] = rng.normal(0, 0.1, shape[0]).astype(np.float32)
    return weights


def assert_weights_equal(loaded: dict[str, np.ndarray], written: dict[str, np.ndarray]) -> None:
    assert sorted(loaded) == sorted(written)
    for name, value in written.items():
        assert loaded[name].shape == value.shape, name
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)


# --- .caffemodel through protobuf's own encoder -----------------------------------------

#: V1LayerParameter.LayerType values (caffe.proto) of the layers written below.
V1_TYPES = {"Data": 5, "Concat": 3, "Convolution": 4, "ReLU": 18, "Split": 22}


def caffe_messages():
    """NetParameter / LayerParameter / BlobProto / BlobShape with caffe.proto's numbers."""
    descriptor_pb2 = need("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="caffe_subset.proto", package="caffe")
    fdp.syntax = "proto2"
    f = descriptor_pb2.FieldDescriptorProto
    opt, rep = f.LABEL_OPTIONAL, f.LABEL_REPEATED

    def message(name, fields):
        msg = fdp.message_type.add(name=name)
        for field_name, number, label, kind, type_name, packed in fields:
            field = msg.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name:
                field.type_name = type_name
            if packed:
                field.options.packed = True

    message("BlobShape", [("dim", 1, rep, f.TYPE_INT64, None, True)])
    message(
        "BlobProto",
        [
            ("shape", 7, opt, f.TYPE_MESSAGE, ".caffe.BlobShape", False),
            ("data", 5, rep, f.TYPE_FLOAT, None, True),
            ("double_data", 8, rep, f.TYPE_DOUBLE, None, True),
            ("num", 1, opt, f.TYPE_INT64, None, False),
            ("channels", 2, opt, f.TYPE_INT64, None, False),
            ("height", 3, opt, f.TYPE_INT64, None, False),
            ("width", 4, opt, f.TYPE_INT64, None, False),
        ],
    )
    message(
        "LayerParameter",
        [
            ("name", 1, opt, f.TYPE_STRING, None, False),
            ("type", 2, opt, f.TYPE_STRING, None, False),
            ("bottom", 3, rep, f.TYPE_STRING, None, False),
            ("top", 4, rep, f.TYPE_STRING, None, False),
            ("blobs", 7, rep, f.TYPE_MESSAGE, ".caffe.BlobProto", False),
        ],
    )
    message(
        "V1LayerParameter",
        [
            ("bottom", 2, rep, f.TYPE_STRING, None, False),
            ("top", 3, rep, f.TYPE_STRING, None, False),
            ("name", 4, opt, f.TYPE_STRING, None, False),
            ("type", 5, opt, f.TYPE_ENUM, ".caffe.V1LayerParameter.LayerType", False),
            ("blobs", 6, rep, f.TYPE_MESSAGE, ".caffe.BlobProto", False),
        ],
    )
    layer_type = fdp.message_type[-1].enum_type.add(name="LayerType")
    for type_name, number in V1_TYPES.items():
        layer_type.value.add(name=type_name.upper(), number=number)
    message(
        "NetParameter",
        [
            ("name", 1, opt, f.TYPE_STRING, None, False),
            ("layer", 100, rep, f.TYPE_MESSAGE, ".caffe.LayerParameter", False),
            ("layers", 2, rep, f.TYPE_MESSAGE, ".caffe.V1LayerParameter", False),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}"))
        for name in ("NetParameter", "BlobProto")
    }


def aod_layers() -> list[tuple[str, str, list[str], list[str]]]:
    """AOD-Net's graph as Caffe writes it: (name, type, bottoms, tops).

    As in the authors' file, ReLUs work in place and a Split layer fans each conv output
    out to its consumers (which then name the split's tops, not the conv).
    """
    consumers = {  # conv output -> the layers reading it, in order
        "conv1": ["conv2", "concat1", "concat3"],
        "conv2": ["concat1", "concat2", "concat3"],
        "conv3": ["concat2", "concat3"],
        "conv4": ["concat3"],
    }
    inputs = {
        "conv1": ["data"],
        "conv2": ["conv1"],
        "concat1": ["conv1", "conv2"],
        "conv3": ["concat1"],
        "concat2": ["conv2", "conv3"],
        "conv4": ["concat2"],
        "concat3": ["conv1", "conv2", "conv3", "conv4"],
        "conv5": ["concat3"],
    }
    split_top = {
        (conv, reader): f"{conv}_split_{k}"
        for conv, readers in consumers.items()
        for k, reader in enumerate(readers)
    }
    layers = [("data", "Data", [], ["data"])]
    for name, bottoms in inputs.items():
        kind = "Concat" if name.startswith("concat") else "Convolution"
        bottoms = [split_top.get((b, name), b) for b in bottoms]
        layers.append((name, kind, bottoms, [name]))
        if kind == "Convolution":
            layers.append((f"relu_{name}", "ReLU", [name], [name]))
            if name in consumers:
                tops = [split_top[(name, reader)] for reader in consumers[name]]
                layers.append((f"{name}_split", "Split", [name], tops))
    return layers


def aod_caffemodel(
    weights: dict[str, np.ndarray], *, legacy_shape: bool, double: bool, v1: bool = False
) -> bytes:
    """AOD-Net as a serialised NetParameter: ``layer`` (100) or V1 ``layers`` (2)."""
    messages = caffe_messages()
    net = messages["NetParameter"](name="AOD-Net")
    for name, kind, bottoms, tops in aod_layers():
        if v1:
            layer = net.layers.add(name=name, type=V1_TYPES[kind])
        else:
            layer = net.layer.add(name=name, type=kind)
        layer.bottom.extend(bottoms)
        layer.top.extend(tops)
        if kind != "Convolution":
            continue
        for part in ("weight", "bias"):
            value = weights[f"{name}_{part}"]
            blob = layer.blobs.add()
            if legacy_shape:  # pre-2015 Caffe: num, channels, height, width
                dims = value.shape if value.ndim == 4 else (1, 1, 1, value.shape[0])
                blob.num, blob.channels, blob.height, blob.width = dims
            else:
                blob.shape.dim.extend(value.shape)
            # C order: Caffe stores blobs row-major (num, channels, height, width)
            flat = [float(v) for v in value.ravel(order="C")]
            (blob.double_data if double else blob.data).extend(flat)
    return net.SerializeToString()


@pytest.mark.parametrize("legacy_shape", [False, True], ids=["shape", "nchw"])
@pytest.mark.parametrize("double", [False, True], ids=["float", "double"])
@pytest.mark.parametrize("v1", [False, True], ids=["layer", "v1-layers"])
def test_aodnet_caffemodel_written_by_protobuf(tmp_path: Path, legacy_shape, double, v1):
    weights = random_aod_weights(1)
    path = tmp_path / "aod.caffemodel"
    path.write_bytes(aod_caffemodel(weights, legacy_shape=legacy_shape, double=double, v1=v1))
    loaded = AODNet.from_file(path).weights.arrays()
    if legacy_shape:  # biases were written as 1×1×1×n blobs
        loaded = {
            k: v.reshape(weights[k].shape) if k.endswith("bias") else v for k, v in loaded.items()
        }
    assert_weights_equal(loaded, weights)


def test_aodnet_caffemodel_with_swapped_concat_is_refused(tmp_path: Path):
    messages = caffe_messages()
    net = messages["NetParameter"]()
    net.ParseFromString(aod_caffemodel(random_aod_weights(2), legacy_shape=False, double=False))
    concat = next(layer for layer in net.layer if layer.name == "concat2")
    assert list(concat.bottom) == ["conv2_split_1", "conv3_split_0"]  # through the splits
    concat.bottom[0], concat.bottom[1] = concat.bottom[1], concat.bottom[0]
    path = tmp_path / "swapped.caffemodel"
    path.write_bytes(net.SerializeToString())
    with pytest.raises(ValueError, match="concatenates"):
        AODNet.from_file(path)


# --- .pth through torch.save --------------------------------------------------------------


def aod_state_dict(torch, weights: dict[str, np.ndarray], *, strided: bool, prefix: str = ""):
    """A state_dict of the given values; ``strided``: tensors are views into shared storage,
    transposed or offset, as torch.save writes them (storage + offset + strides)."""
    state = {}
    if strided:
        total = sum(v.size for v in weights.values())
        pool = torch.zeros(total + 7, dtype=torch.float32)
        offset = 7
    for name, value in weights.items():
        key = f"{prefix}e_{name.replace('_weight', '.weight').replace('_bias', '.bias')}"
        tensor = torch.from_numpy(value.copy())
        if strided:
            n = value.size
            if value.ndim == 4:
                # stored transposed (kw, kh swapped) then viewed back: non-contiguous strides
                swapped = pool[offset : offset + n].view(
                    value.shape[0], value.shape[1], value.shape[3], value.shape[2]
                )
                swapped.copy_(tensor.transpose(2, 3))
                tensor = swapped.transpose(2, 3)
                assert value.shape[2] == 1 or not tensor.is_contiguous()
            else:
                view = pool[offset : offset + n]
                view.copy_(tensor)
                tensor = view
            offset += n
        state[key] = tensor
    return state


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "shared-strided"])
def test_aodnet_pth_written_by_torch(tmp_path: Path, zipfile, strided):
    torch = need("torch")
    weights = random_aod_weights(3)
    path = tmp_path / "aod.pth"
    state = aod_state_dict(torch, weights, strided=strided, prefix="module.")
    torch.save(state, path, _use_new_zipfile_serialization=zipfile)
    assert_weights_equal(AODNet.from_file(path).weights.arrays(), weights)


def test_aodnet_from_protobuf_file_runs_like_torch(tmp_path: Path):
    """End to end: weights written by protobuf, network run by torch with the same values."""
    torch = need("torch")
    functional = torch.nn.functional
    weights = random_aod_weights(4)
    path = tmp_path / "aod.caffemodel"
    path.write_bytes(aod_caffemodel(weights, legacy_shape=False, double=False))
    image = np.random.default_rng(5).random((13, 17, 3)).astype(np.float32)
    got = AODNet.from_file(path).forward(image)

    def conv(x, layer):
        w = torch.from_numpy(weights[f"{layer}_weight"])
        b = torch.from_numpy(weights[f"{layer}_bias"])
        return functional.relu(functional.conv2d(x, w, b, padding=AOD_PADDING[layer]))

    with torch.no_grad():
        x = torch.from_numpy(image).permute(2, 0, 1)[None]
        x1 = conv(x, "conv1")
        x2 = conv(x1, "conv2")
        x3 = conv(torch.cat((x1, x2), 1), "conv3")
        x4 = conv(torch.cat((x2, x3), 1), "conv4")
        k = conv(torch.cat((x1, x2, x3, x4), 1), "conv5")
        want = functional.relu(k * x - k + 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)


# --- .mat through scipy.io.savemat ---------------------------------------------------------


def dehazenet_matlab_variables(seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Random kernels K[o, i, y, x] and the authors' dehaze.mat variables holding them.

    ``weights_<layer>`` is (in, k·k, out) with row (i, :, o) the k × k kernel in MATLAB's
    column-major order: element y + k·x is K[o, i, y, x] (y the row). The last layer's
    single output is dropped (48 × 36), as MATLAB does; ``biases_<layer>`` is (out, 1).
    """
    rng = np.random.default_rng(seed)
    kernels: dict[str, np.ndarray] = {}
    variables: dict[str, np.ndarray] = {}
    for name, ((n_out, n_in, k, _), mat) in DEHAZENET_LAYERS.items():
        kernel = rng.normal(0, 0.2, (n_out, n_in, k, k))
        bias = rng.normal(0, 0.1, n_out)
        stored = np.zeros((n_in, k * k, n_out))
        for o in range(n_out):
            for i in range(n_in):
                for y in range(k):
                    for x in range(k):
                        stored[i, y + k * x, o] = kernel[o, i, y, x]
        variables[f"weights_{mat}"] = stored[:, :, 0] if n_out == 1 else stored
        variables[f"biases_{mat}"] = bias[:, None]
        kernels[f"{name}_weight"] = kernel
        kernels[f"{name}_bias"] = bias
    return kernels, variables


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dehazenet_mat_written_by_scipy(tmp_path: Path, dtype):
    kernels, variables = dehazenet_matlab_variables(6)
    path = tmp_path / "dehaze.mat"
    scipy.io.savemat(path, {k: v.astype(dtype) for k, v in variables.items()})
    loaded = DehazeNet.from_file(path).weights.arrays()
    assert_weights_equal(
        {k: np.asarray(v, dtype=np.float64) for k, v in loaded.items()},
        {k: v.astype(dtype).astype(np.float64) for k, v in kernels.items()},
    )


def test_dehazenet_mat_kernel_orientation_is_not_symmetric(tmp_path: Path):
    # the comparison above could not tell K from its transpose if the kernels were
    # symmetric: they are not, and the transposed reading differs
    kernels, _ = dehazenet_matlab_variables(6)
    k = kernels["conv7x7_weight"]
    assert np.abs(k - np.swapaxes(k, 2, 3)).max() > 0.1


def test_weight_classes_hold_what_the_files_hold():
    # the loaded objects are the public weight classes with the documented shapes
    assert {k: v for k, v in AODNetWeights.SHAPES.items() if k.endswith("weight")} == {
        f"{k}_weight": v for k, v in AOD_SHAPES.items()
    }
    assert {k: v for k, v in DehazeNetWeights.SHAPES.items() if k.endswith("weight")} == {
        f"{k}_weight": v[0] for k, v in DEHAZENET_LAYERS.items()
    }
