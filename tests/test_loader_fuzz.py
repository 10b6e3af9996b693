"""Weight loaders under attack: byte flips, truncations and crafted files.

Every file is generated here (hand-built ``torch.save`` streams and archives in the
pickle protocol the loader reads, ``.npz`` through the package's own writer, ``.mat``
through :func:`scipy.io.savemat`, ``.caffemodel`` through the protobuf encoder of
``test_models``). A malformed file must give a ``ValueError`` naming the file, never
another exception, and never a large allocation: the memory checks run in a
subprocess under ``resource.setrlimit(RLIMIT_AS)``.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from test_models import (
    caffe_aodnet,
    dehazenet_as_matlab,
    random_aodnet_weights,
    random_dehazenet_weights,
)

from dehaze.models import AODNet, AODNetWeights, DehazeNet, DehazeNetWeights, _formats

# --- hand-built torch.save files -------------------------------------------------------


def frag(value: object) -> bytes:
    """Pickle opcodes that push ``value`` (ints, strings, tuples of them)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def tensor_opcodes(
    key: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...], offset: int = 0
) -> bytes:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False)``."""
    pid = (
        b"("
        + frag("storage")
        + b"ctorch\nFloatStorage\n"
        + frag(key)
        + frag("cpu")
        + frag(numel)
        + b"Nt"
    )
    return (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + pid
        + b"Q"
        + frag(offset)
        + frag(shape)
        + frag(stride)
        + b"\x89tR"
    )


def state_dict_pickle(tensors: dict[str, tuple[str, int, tuple, tuple, int]]) -> bytes:
    body = b"".join(frag(name) + tensor_opcodes(*spec) for name, spec in tensors.items())
    return b"\x80\x02}(" + body + b"u."


def contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    stride, step = [], 1
    for n in reversed(shape):
        stride.append(step)
        step *= n
    return tuple(reversed(stride))


def aodnet_state(weights: AODNetWeights) -> dict[str, np.ndarray]:
    state = {}
    for name, value in weights.arrays().items():
        layer, kind = name.rsplit("_", 1)
        state[f"e_{layer}.{kind}"] = np.ascontiguousarray(value, dtype="<f4")
    return state


def _specs(state: dict[str, np.ndarray]) -> dict[str, tuple[str, int, tuple, tuple, int]]:
    return {
        name: (str(k), arr.size, arr.shape, contiguous_stride(arr.shape), 0)
        for k, (name, arr) in enumerate(state.items())
    }


def legacy_pth(state: dict[str, np.ndarray]) -> bytes:
    """A pre-1.6 ``torch.save`` stream of ``state`` (float32 tensors)."""
    head = b"".join(
        pickle.dumps(v, protocol=2)
        for v in (
            _formats.TORCH_LEGACY_MAGIC,
            _formats.TORCH_LEGACY_PROTOCOL,
            {"protocol_version": 1001, "little_endian": True},
        )
    )
    keys = [str(k) for k in range(len(state))]
    data = b"".join(
        struct.pack("<q", arr.size) + arr.astype("<f4").tobytes() for arr in state.values()
    )
    return head + state_dict_pickle(_specs(state)) + pickle.dumps(keys, protocol=2) + data


def zip_pth(state: dict[str, np.ndarray]) -> bytes:
    """A PyTorch ≥ 1.6 ``torch.save`` zip archive of ``state`` (float32 tensors)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", state_dict_pickle(_specs(state)))
        archive.writestr("archive/byteorder", "little")
        for k, arr in enumerate(state.values()):
            archive.writestr(f"archive/data/{k}", arr.astype("<f4").tobytes())
    return buffer.getvalue()


# --- the valid files every case starts from ---------------------------------------------


def _valid_files(tmp_path: Path) -> dict[str, tuple[type, bytes]]:
    rng = np.random.default_rng(12)
    aod = random_aodnet_weights(rng)
    dn = random_dehazenet_weights(rng)
    AODNet(aod).save_npz(tmp_path / "aod.npz")
    mat = io.BytesIO()
    scipy.io.savemat(mat, dehazenet_as_matlab(dn), do_compression=False)
    mat_z = io.BytesIO()
    scipy.io.savemat(mat_z, dehazenet_as_matlab(dn), do_compression=True)
    return {
        "legacy.pth": (AODNet, legacy_pth(aodnet_state(aod))),
        "zip.pth": (AODNet, zip_pth(aodnet_state(aod))),
        "aod.npz": (AODNet, (tmp_path / "aod.npz").read_bytes()),
        "aod.caffemodel": (AODNet, caffe_aodnet(aod)),
        "plain.mat": (DehazeNet, mat.getvalue()),
        "zlib.mat": (DehazeNet, mat_z.getvalue()),
    }


FORMATS = ["legacy.pth", "zip.pth", "aod.npz", "aod.caffemodel", "plain.mat", "zlib.mat"]


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    return _valid_files(tmp_path_factory.mktemp("valid"))


@pytest.mark.parametrize("name", FORMATS)
def test_generated_files_load(valid_files, tmp_path, name):
    cls, data = valid_files[name]
    path = tmp_path / name
    path.write_bytes(data)
    net = cls.from_file(path)
    assert isinstance(net, cls)


# Loads every file named on the command line; a ValueError that names the file is the
# expected refusal. Anything else (another exception, or a crash: SciPy's .mat reader
# segfaulted on a flipped flag) ends the subprocess with a non-zero status.
_FUZZ_SCRIPT = textwrap.dedent(
    """
    import sys, traceback
    from pathlib import Path
    from dehaze.models import AODNet, DehazeNet
    cls = DehazeNet if sys.argv[1] == "DehazeNet" else AODNet
    counts = {"loaded": 0, "ValueError": 0}
    for name in sys.argv[2:]:
        path = Path(name)
        try:
            cls.from_file(path)
            counts["loaded"] += 1
        except ValueError as exc:
            message = str(exc)
            if str(path) not in message or not message.split(str(path) + ":", 1)[-1].strip():
                print("ValueError without the file name or a reason:", message)
                sys.exit(4)
            counts["ValueError"] += 1
        except BaseException:
            print("case", name)
            traceback.print_exc(file=sys.stdout)
            sys.exit(3)
    print(counts["loaded"], counts["ValueError"])
    """
)


def _mutations(data: bytes, seed: int, flips: int, header_flips: int, cuts: int) -> list[bytes]:
    """Copies of ``data`` with random bytes replaced, header bits flipped, or truncated."""
    rng = np.random.default_rng(seed)
    cases: list[bytes] = []
    for _ in range(flips):  # one to three random bytes anywhere
        buf = bytearray(data)
        for pos in rng.integers(len(buf), size=int(rng.integers(1, 4))):
            buf[int(pos)] = int(rng.integers(256))
        cases.append(bytes(buf))
    for _ in range(header_flips):  # bit flips in the first 200 bytes: headers, pickles, tags
        buf = bytearray(data)
        for pos in rng.integers(min(200, len(buf)), size=int(rng.integers(1, 4))):
            buf[int(pos)] ^= 1 << int(rng.integers(8))
        cases.append(bytes(buf))
    for cut in sorted(set(rng.integers(1, len(data), cuts).tolist())):
        cases.append(data[:cut])
    return cases


def _run_fuzz(cls: type, cases: list[bytes], folder: Path, suffix: str) -> tuple[int, int]:
    """Load every case in a subprocess; return (loaded, refused), fail on anything else."""
    paths = []
    for k, case in enumerate(cases):
        path = folder / f"case{k:03d}{suffix}"
        path.write_bytes(case)
        paths.append(str(path))
    proc = subprocess.run(
        [sys.executable, "-c", _FUZZ_SCRIPT, cls.__name__, *paths],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    loaded, refused = (int(v) for v in proc.stdout.split())
    assert loaded + refused == len(cases)
    return loaded, refused


@pytest.mark.parametrize("name", FORMATS)
def test_byte_flips_and_truncations_give_value_errors(valid_files, tmp_path, name):
    # any other exception (AttributeError, OverflowError, NotImplementedError,
    # RuntimeError, TokenError, MemoryError, ...) or a crash fails the test
    cls, data = valid_files[name]
    cases = _mutations(data, zlib.crc32(name.encode()), 250, 60, 60)
    _, refused = _run_fuzz(cls, cases, tmp_path, Path(name).suffix)
    assert refused > 0  # the fuzzing does reach the checks


@pytest.mark.data
@pytest.mark.parametrize(
    ("file", "cls"),
    [
        ("aodnet_pytorch_MayankSingal_dehazer.pth", AODNet),
        ("aodnet_caffe_Boyiliee_AOD_Net.caffemodel", AODNet),
        ("dehazenet_matlab_caibolun_dehaze.mat", DehazeNet),
        ("dehazenet_caffe_zlinker_DehazeNet.caffemodel", DehazeNet),
    ],
)
def test_published_weights_under_byte_flips(data_dir, tmp_path, file, cls):
    data = (data_dir / "weights" / file).read_bytes()
    cases = _mutations(data, zlib.crc32(file.encode()), 150, 40, 30)
    _, refused = _run_fuzz(cls, cases, tmp_path, Path(file).suffix)
    assert refused > 0


# --- crafted files: layouts, limits ---------------------------------------------------------


def _aod_expected_specs(shape_of=None):
    rng = np.random.default_rng(3)
    return aodnet_state(random_aodnet_weights(rng))


def _legacy_with(specs, keys_data: list[tuple[str, int, bytes]]) -> bytes:
    head = b"".join(
        pickle.dumps(v, protocol=2)
        for v in (
            _formats.TORCH_LEGACY_MAGIC,
            _formats.TORCH_LEGACY_PROTOCOL,
            {"protocol_version": 1001, "little_endian": True},
        )
    )
    tail = b"".join(struct.pack("<q", n) + raw for _, n, raw in keys_data)
    keys = [k for k, _, _ in keys_data]
    return head + state_dict_pickle(specs) + pickle.dumps(keys, protocol=2) + tail


def stride0_pth(shape: tuple[int, int]) -> bytes:
    """The issue's ~400-byte file: one float, viewed as a huge stride-0 tensor."""
    specs = {"e_conv1.weight": ("0", 1, shape, (0, 0), 0)}
    return _legacy_with(specs, [("0", 1, b"\0\0\0\0")])


@pytest.mark.parametrize(
    ("specs", "storage", "match"),
    [
        ({"w": ("0", 1, (2000, 2000), (0, 0), 0)}, 1, "overlap"),
        ({"w": ("0", 1, (20000, 20000), (0, 0), 0)}, 1, "limit"),
        ({"w": ("0", 12, (3, 4), (1, 1), 0)}, 12, "overlap"),
        ({"w": ("0", 12, (4, 3), (3, 2), 0)}, 12, "overlap"),
        ({"w": ("0", 12, (3, 4), (4, 1), 1)}, 12, "exceeds its storage"),
        ({"w": ("0", 2**31, (2**31,), (1,), 0)}, 1, "limit"),
        ({"w": ("0", 4, (2,) * 9, (1,) * 9, 0)}, 4, "axes"),
    ],
)
def test_bad_tensor_layouts_are_refused(tmp_path, specs, storage, match):
    path = tmp_path / "bad.pth"
    path.write_bytes(_legacy_with(specs, [("0", storage, b"\0" * 4 * storage)]))
    with pytest.raises(ValueError, match=match) as info:
        AODNet.from_file(path)
    assert str(path) in str(info.value)


def test_legal_views_still_load(tmp_path):
    # a transposed view (strides (1, 4)) and an offset slice are real torch tensors
    base = np.arange(12, dtype="<f4")
    specs = {"t": ("0", 12, (4, 3), (1, 4), 0), "s": ("0", 12, (2, 4), (4, 1), 4)}
    data = _legacy_with(specs, [("0", 12, base.tobytes())])
    arrays = _formats.read_torch(data, "torch-legacy")
    np.testing.assert_array_equal(arrays["t"], base.reshape(3, 4).T)
    np.testing.assert_array_equal(arrays["s"], base[4:].reshape(2, 4))


def test_keys_and_shapes_are_checked_before_storages_are_read(tmp_path):
    state = aodnet_state(random_aodnet_weights(np.random.default_rng(5)))
    specs = _specs(state)
    # storage data is missing altogether: the key/shape check must fire first
    name, spec = next(iter(specs.items()))
    wrong = {**specs, name: (spec[0], spec[1], (spec[2][0],) + spec[2][1:][::-1], spec[3], 0)}
    for bad, match in (
        ({**specs, "extra.weight": ("99", 1, (1,), (1,), 0)}, "unexpected"),
        ({k: v for k, v in specs.items() if k != name}, "missing"),
    ):
        path = tmp_path / "keys.pth"
        path.write_bytes(_legacy_with(bad, []))
        with pytest.raises(ValueError, match=match):
            AODNet.from_file(path)
    del wrong


def test_declared_storage_size_is_checked_before_reading(tmp_path):
    specs = {"w": ("0", 4, (4,), (1,), 0)}
    data = _legacy_with(specs, [("0", 2**40, b"\0" * 16)])
    with pytest.raises(ValueError, match="limit"):
        _formats.read_torch(data, "torch-legacy")


def npy_header_only(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def npz_declaring(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("network.npy", _npy(np.array("AOD-Net")))
        archive.writestr("format_version.npy", _npy(np.array(1)))
        archive.writestr("conv1_weight.npy", npy_header_only(shape))
    return buffer.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, arr, allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(10**12,), (2**20, 2**20), (-1, 4)])
def test_npz_headers_declaring_huge_arrays_are_refused(tmp_path, shape):
    path = tmp_path / "huge.npz"
    path.write_bytes(npz_declaring(shape))
    with pytest.raises(ValueError, match=r"huge\.npz") as info:
        AODNet.from_file(path)
    assert "limit" in str(info.value) or "negative" in str(info.value)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        inner = io.BytesIO()
        np.save(inner, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        archive.writestr("network.npy", inner.getvalue())
    path = tmp_path / "obj.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="dtype object"):
        AODNet.from_file(path)


def zip_member_bomb(size: int) -> bytes:
    """A torch zip archive whose one storage member inflates to ``size`` zero bytes."""
    specs = {"w": ("0", 4, (4,), (1,), 0)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", state_dict_pickle(specs))
        with archive.open("archive/data/0", "w", force_zip64=True) as member:
            chunk = bytes(2**24)
            for _ in range(size // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def _declare_member_size(data: bytes, name: bytes, size: int) -> bytes:
    """Make the zip headers of member ``name`` claim ``size`` uncompressed bytes."""
    buf = bytearray(data)
    for sig, size_at, name_len_at, name_at in (
        (b"PK\x01\x02", 24, 28, 46),
        (b"PK\x03\x04", 22, 26, 30),
    ):
        pos = buf.find(sig)
        while pos >= 0:
            n = struct.unpack_from("<H", buf, pos + name_len_at)[0]
            if bytes(buf[pos + name_at : pos + name_at + n]) == name:
                struct.pack_into("<I", buf, pos + size_at, size)
            pos = buf.find(sig, pos + 4)
    return bytes(buf)


def test_zip_members_are_read_with_bounded_reads(tmp_path):
    # a member declaring more than the limit is refused before anything is inflated
    data = zip_member_bomb(2**27)  # 128 MiB of zeros, ~130 kB compressed
    with pytest.raises(ValueError, match="limit"):
        _formats.read_torch(data, "torch-zip")
    # a member whose headers understate it is inflated only as far as they claim (16
    # bytes), and then fails its CRC check: refused, without inflating 32 MiB
    specs = {"w": ("0", 4, (4,), (1,), 0)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", state_dict_pickle(specs))
        archive.writestr("archive/data/0", bytes(2**25))
    lying = _declare_member_size(buffer.getvalue(), b"archive/data/0", 16)
    with pytest.raises(ValueError, match="CRC"):
        _formats.read_torch(lying, "torch-zip")
    honest = _declare_member_size(buffer.getvalue(), b"archive/data/0", 2**25)
    np.testing.assert_array_equal(_formats.read_torch(honest, "torch-zip")["w"], np.zeros(4))


def mat_zlib_bomb(rows: int, cols: int) -> bytes:
    """A level-5 .mat whose one compressed element inflates to a rows×cols double matrix."""
    name = b"weights_conv1"
    flags = struct.pack("<IIII", 6, 8, 6, 0)  # miUINT32, 8 bytes, class double
    dims = struct.pack("<IIii", 5, 8, rows, cols)  # miINT32 dimensions
    name_el = struct.pack("<II", 1, len(name)) + name + b"\0" * (-len(name) % 8)
    nbytes = rows * cols * 8
    data_tag = struct.pack("<II", 9, nbytes)  # miDOUBLE
    body_len = len(flags) + len(dims) + len(name_el) + len(data_tag) + nbytes
    compressor = zlib.compressobj(9)
    parts = [
        compressor.compress(struct.pack("<II", 14, body_len) + flags + dims + name_el + data_tag)
    ]
    chunk = bytes(2**24)
    left = nbytes
    while left:
        step = min(left, len(chunk))
        parts.append(compressor.compress(chunk[:step]))
        left -= step
    parts.append(compressor.flush())
    compressed = b"".join(parts)
    header = b"MATLAB 5.0 MAT-file, crafted".ljust(116, b" ") + b"\0" * 8 + b"\x00\x01IM"
    return header + struct.pack("<II", 15, len(compressed)) + compressed


def test_mat_zlib_bomb_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "bomb.mat"
    path.write_bytes(mat_zlib_bomb(4096, 4096))  # 128 MiB inflated, ~130 kB on disk
    with pytest.raises(ValueError, match="expands beyond") as info:
        DehazeNet.from_file(path)
    assert str(path) in str(info.value)


def test_mat_declaring_huge_dimensions_is_refused(tmp_path):
    data = mat_zlib_bomb(4, 4)
    # rewrite the dimensions inside the (uncompressed) element: inflate, patch, deflate
    inner = zlib.decompress(data[136:])
    inner = inner[:32] + struct.pack("<ii", 100000, 100000) + inner[40:]
    deflated = zlib.compress(inner)
    path = tmp_path / "dims.mat"
    path.write_bytes(data[:128] + struct.pack("<II", 15, len(deflated)) + deflated)
    with pytest.raises(ValueError, match="limit"):
        DehazeNet.from_file(path)


# --- memory: the attacks under an address-space limit -------------------------------

_MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from dehaze.models import AODNet, DehazeNet
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for name in sys.argv[2:]:
        cls = DehazeNet if name.endswith(".mat") else AODNet
        try:
            cls.from_file(Path(name))
            print(name, "loaded")
        except ValueError as exc:
            print(name, "ValueError", str(exc)[:200].replace("\\n", " "))
        except BaseException as exc:
            print(name, type(exc).__name__, str(exc)[:200].replace("\\n", " "))
    """
)


def _address_space_after_import() -> int:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    probe = (
        "import dehaze.models, scipy.io, resource;"
        "print(int(open('/proc/self/status').read().split('VmPeak:')[1].split()[0]) * 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux")
def test_crafted_files_fail_cleanly_under_a_memory_limit(tmp_path):
    files = {
        "stride0.pth": stride0_pth((20000, 20000)),  # 1.6 GB if copied
        "stride0_6gb.pth": stride0_pth((40000, 40000)),  # 6.4 GB
        "bomb.pth": zip_member_bomb(2**29),  # a 512 MiB member
        "huge.npz": npz_declaring((10**12,)),  # 8 TB declared
        "bomb.mat": mat_zlib_bomb(8192, 8192),  # 512 MiB inflated
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert len(files["stride0.pth"]) < 600 and len(files["stride0_6gb.pth"]) < 600
    # what the interpreter and the imports need, plus 256 MiB: far below every attack
    limit = _address_space_after_import() + 2**28
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(limit)] + [str(tmp_path / n) for n in files],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(files), proc.stdout + proc.stderr
    for line in lines:
        assert line.split()[1] == "ValueError", line


# --- repr ---------------------------------------------------------------------------------


def test_reprs_are_short_summaries():
    rng = np.random.default_rng(1)
    for net, params in (
        (AODNet(random_aodnet_weights(rng)), 1761),
        (DehazeNet(random_dehazenet_weights(rng)), None),
    ):
        text = repr(net)
        assert len(text) < 400, text
        assert "array(" not in text and "[[" not in text
        weights_cls = AODNetWeights if isinstance(net, AODNet) else DehazeNetWeights
        count = sum(int(np.prod(s)) for s in weights_cls.SHAPES.values())
        if params is not None:
            assert count == params
        assert f"{count} parameters" in text
        assert "(16, 3, 5, 5)" in repr(net.weights) or "(3, 3, 1, 1)" in repr(net.weights)


@pytest.mark.parametrize("suffix", [".npz", ".pth"])
def test_zip_with_too_many_entries_is_refused_before_listing(tmp_path, suffix):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k in range(_formats.MAX_ZIP_ENTRIES + 1):
            archive.writestr(f"archive/data/{k}" if suffix == ".pth" else f"a{k}.npy", b"")
        if suffix == ".pth":
            archive.writestr("archive/data.pkl", state_dict_pickle({}))
    path = tmp_path / f"many{suffix}"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="entries; at most 1024"):
        AODNet.from_file(path)
    for read in (_formats.read_npz, lambda d: _formats.read_torch(d, "torch-zip")):
        with pytest.raises(ValueError, match="entries"):
            read(buffer.getvalue())
