"""Readers of the published weight files, without PyTorch, Caffe or MATLAB.

* PyTorch ``torch.save`` files, both the legacy (pre-1.6) stream of pickles and the zip
  archive of PyTorch ≥ 1.6, read with a restricted unpickler that only admits the classes a
  ``state_dict`` of plain tensors needs; tensors are rebuilt as NumPy arrays.
* Caffe ``.caffemodel`` (protobuf ``NetParameter``): :mod:`dehaze.models._protobuf`.
* MATLAB ``.mat`` (level 5, i.e. saved with ``-v7`` or older): :func:`scipy.io.loadmat`.
* The package's neutral ``.npz`` (``numpy.savez`` without pickles).

Every reader raises ``ValueError`` for a truncated, corrupt or unexpected file, and
checks what a file *declares* (tensor shapes, strides and element counts, archive member
sizes, compressed sizes, ``.npy`` headers, MATLAB array dimensions) against the limits
below *before* allocating anything of that size, so a small crafted file cannot make the
loader allocate gigabytes:

* :data:`MAX_FILE_BYTES` per weight file, :data:`MAX_MEMBER_BYTES` per archive member or
  decompressed MATLAB element (read with bounded reads, never decompressed whole),
* :data:`MAX_TENSOR_ELEMENTS` per tensor, storage or array, at most :data:`MAX_NDIM` axes,
* tensors whose strides make elements overlap (stride 0 included) are refused.

The real networks are tiny (AOD-Net has 1761 parameters, DehazeNet about 8000), so the
limits leave room for any plausible variant.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from dehaze.io import write_bytes_atomic
from dehaze.models._protobuf import CaffeLayer, decode_net

StrPath = str | os.PathLike[str]

Format = Literal["torch-legacy", "torch-zip", "npz", "caffe", "matlab"]

#: Weight files of these small networks are a few kB; anything far larger is not one.
MAX_FILE_BYTES = 64 * 2**20

#: Most bytes one archive member (or one decompressed MATLAB element, or all of them
#: together) may hold.
MAX_MEMBER_BYTES = 64 * 2**20

#: Most elements one tensor, storage or array may declare (16 Mi; the networks have a
#: few thousand parameters).
MAX_TENSOR_ELEMENTS = 16 * 2**20

#: Most axes a tensor or array may declare.
MAX_NDIM = 8

#: Most entries a zip archive (``torch.save`` ≥ 1.6, ``.npz``) may list: a state_dict of
#: these networks has a dozen; 300 000 empty entries (28 MB) cost 170 MB and 4 s to list.
MAX_ZIP_ENTRIES = 1024

T = TypeVar("T")

#: The first pickle of a legacy ``torch.save`` file.
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PROTOCOL = 1001

#: ``torch.<Name>Storage`` classes and the NumPy dtype of their elements.
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


def read_bytes(path: StrPath, what: str) -> bytes:
    """Read a weight file, refusing missing, empty or implausibly large files."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file not found: {p}")
    size = p.stat().st_size
    if size == 0:
        raise ValueError(f"{p} is empty; expected {what} weights")
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"{p} is {size / 2**20:.0f} MiB; {what} weight files are a few kB (not a weight "
            f"file of this network?)"
        )
    return p.read_bytes()


def parse_guarded(path: StrPath, parse: Callable[[], T]) -> T:
    """Run ``parse()``; re-raise any error it raises as ``ValueError`` naming ``path``.

    The readers raise ``ValueError`` for what they check; a corrupt file can still make a
    library they call (``zipfile``, ``pickle``, SciPy, NumPy) raise something else
    (``RuntimeError`` for an "encrypted" zip, ``NotImplementedError``, ``OverflowError``,
    ``tokenize.TokenError``, ...). Whatever it is, a bad file is a ``ValueError`` that
    names the file and says what went wrong.
    """
    try:
        return parse()
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except Exception as exc:  # a corrupt file: any library error is "bad file"
        raise ValueError(f"{path}: corrupt or unsupported weight file ({_describe(exc)})") from exc


def _describe(exc: BaseException) -> str:
    """``TypeName: message`` (never empty, even when the message is)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_count(count: int, what: str, limit: int = MAX_TENSOR_ELEMENTS) -> int:
    if count < 0 or count > limit:
        raise ValueError(f"{what} declares {count} elements; the limit is {limit}")
    return count


def _check_shape(shape: tuple[int, ...], what: str) -> int:
    """Check a declared shape (axes, sizes, element count); return the element count."""
    if len(shape) > MAX_NDIM:
        raise ValueError(f"{what} has {len(shape)} axes; at most {MAX_NDIM} are read")
    if any(n < 0 for n in shape):
        raise ValueError(f"{what} has a negative size in its shape {shape}")
    if any(n > MAX_TENSOR_ELEMENTS for n in shape):
        raise ValueError(f"{what} has shape {shape}; the limit is {MAX_TENSOR_ELEMENTS} elements")
    return _check_count(math.prod(shape), f"{what} of shape {shape}")


def open_zip(data: bytes) -> zipfile.ZipFile:
    """Open a zip archive held in ``data``, refusing more than :data:`MAX_ZIP_ENTRIES`.

    The entries are counted by their central-directory signatures before ``zipfile``
    builds an object per entry (an upper bound: the signature may also occur by chance
    inside compressed data, which only makes the check stricter).
    """
    entries = data.count(b"PK\x01\x02")
    if entries > MAX_ZIP_ENTRIES:
        raise ValueError(f"zip archive lists {entries} entries; at most {MAX_ZIP_ENTRIES} are read")
    return zipfile.ZipFile(io.BytesIO(data))


def detect_format(data: bytes, suffix: str = "") -> Format:
    """Tell the format of a weight file from its first bytes (``suffix`` breaks ties).

    Raises
    ------
    ValueError
        For MATLAB v7.3 (HDF5) files, zip archives that are neither ``.npz`` nor
        ``torch.save`` archives, and bytes that match no supported format.
    """
    if data.startswith(b"PK\x03\x04"):
        try:
            with open_zip(data) as archive:
                names = archive.namelist()
        except Exception as exc:  # zipfile raises many types for corrupt archives
            raise ValueError(f"corrupt or truncated zip archive ({_describe(exc)})") from exc
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch-zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise ValueError("zip archive that is neither a torch.save file (no data.pkl) nor an .npz")
    if data.startswith(b"MATLAB 7.3") or data.startswith(b"\x89HDF"):
        raise ValueError(
            "MATLAB v7.3 (HDF5) .mat files are not supported; re-save in MATLAB with "
            "save(..., '-v7')"
        )
    if data.startswith(b"MATLAB 5.0") or data.startswith(b"MATLAB 7"):
        return "matlab"
    if data.startswith(b"\x80") and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch-legacy"
    if suffix.lower() in (".pth", ".pt", ".pkl", ".tar"):
        raise ValueError(f"{suffix} file is not a torch.save archive or pickle stream")
    return "caffe"


# --- PyTorch -------------------------------------------------------------------------


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype[Any]
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any
) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records where the data is."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("tensor without a storage")
    try:
        shape = tuple(int(s) for s in size)
        strides = tuple(int(s) for s in stride)
        offset = int(storage_offset)
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"malformed tensor metadata: {exc}") from exc
    if len(shape) != len(strides) or offset < 0 or any(s < 0 for s in shape + strides):
        raise pickle.UnpicklingError(f"malformed tensor: size {shape}, stride {strides}")
    try:
        check_tensor_layout(shape, strides, offset, storage.numel)
    except ValueError as exc:
        raise pickle.UnpicklingError(str(exc)) from exc
    return _TensorRef(storage, offset, shape, strides)


def check_tensor_layout(
    shape: tuple[int, ...], stride: tuple[int, ...], offset: int, storage_numel: int
) -> None:
    """Check a tensor's declared layout against its storage before anything is copied.

    Refused: more than :data:`MAX_NDIM` axes or :data:`MAX_TENSOR_ELEMENTS` elements,
    strides that make two elements share memory (a stride of 0 on an axis longer than 1,
    or overlapping axes; copying such a "tensor" would multiply a small storage into a
    huge array), and elements beyond the end of the storage. The test is the sufficient
    one (sorted by stride, each axis steps over everything the smaller ones span), which
    every permuted or sliced view of a contiguous tensor passes; exotic interleaved
    layouts that happen not to overlap are refused too.
    """
    what = f"tensor of size {shape}, stride {stride}"
    numel = _check_shape(shape, "tensor")
    if numel == 0:
        return
    extent = 1  # elements spanned by the axes placed so far, smallest stride first
    for size, step in sorted(
        ((n, s) for n, s in zip(shape, stride, strict=True) if n > 1), key=lambda p: p[1]
    ):
        if step < extent:
            raise ValueError(
                f"{what}: its strides overlap or interleave (stride {step} < {extent}); "
                f"stride-0 and overlapping views are not stored tensors (only contiguous "
                f"tensors and their permuted or sliced views are read)"
            )
        extent = step * (size - 1) + 1
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
    if last >= storage_numel:
        raise ValueError(
            f"{what} at offset {offset} exceeds its storage of {storage_numel} elements"
        )


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only what a ``state_dict`` of plain tensors contains."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only state_dicts of plain tensors are read"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (torch < 0.4 files) are not supported")
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"malformed storage record {pid!r}")
        if numel > MAX_TENSOR_ELEMENTS:
            raise pickle.UnpicklingError(
                f"storage {key!r} declares {numel} elements; the limit is {MAX_TENSOR_ELEMENTS}"
            )
        return _StorageRef(key, storage_type.dtype, numel)


def _materialize(ref: _TensorRef, storages: Mapping[str, NDArray[Any]]) -> NDArray[Any]:
    data = storages[ref.storage.key]
    # checked when unpickled against the declared storage; again against the data read
    check_tensor_layout(ref.shape, ref.stride, ref.offset, data.size)
    if any(s == 0 for s in ref.shape):
        return np.zeros(ref.shape, dtype=data.dtype)
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * data.itemsize for s in ref.stride),
        writeable=False,
    )
    return np.array(view)


def _state_dict(obj: Any, storages: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    if not isinstance(obj, dict):
        raise ValueError(
            f"the file holds a pickled {type(obj).__name__}, not a state_dict (a mapping "
            f"of parameter names to tensors); save model.state_dict()"
        )
    out: dict[str, NDArray[Any]] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, _TensorRef):
            raise ValueError(f"state_dict entry {key!r} is not a tensor")
        out[key] = _materialize(value, storages)
    return out


def _unpickle(stream: io.BytesIO) -> Any:
    try:
        return _RestrictedUnpickler(stream).load()
    except Exception as exc:  # a corrupt pickle makes the unpickler raise many types
        raise ValueError(f"not a readable torch.save state_dict ({_describe(exc)})") from exc


def check_expected(
    obj: Any, expected: Mapping[str, tuple[int, ...]] | None, source: str = "state_dict"
) -> None:
    """Check a ``state_dict``'s keys and tensor shapes before any tensor is copied.

    ``expected`` maps the parameter names (after removing a ``module.`` prefix) to their
    shapes; ``None`` checks nothing.
    """
    if expected is None or not isinstance(obj, dict):
        return
    names = {str(k).removeprefix("module."): v for k, v in obj.items()}
    missing = [k for k in expected if k not in names]
    extra = sorted(k for k in names if k not in expected)
    if missing or extra:
        parts = ([f"missing {missing}"] if missing else []) + (
            [f"unexpected {extra}"] if extra else []
        )
        raise ValueError(f"{source}: {'; '.join(parts)} (expected exactly {list(expected)})")
    for key, shape in expected.items():
        ref = names[key]
        if isinstance(ref, _TensorRef) and ref.shape != shape:
            raise ValueError(f"{source}: {key} has shape {ref.shape}, expected {shape}")


def read_torch_legacy(
    data: bytes, expected: Mapping[str, tuple[int, ...]] | None = None
) -> dict[str, NDArray[Any]]:
    """Read a legacy (pre-1.6, non-zip) ``torch.save`` file of a ``state_dict``.

    The file is a stream of pickles — magic number, protocol version, system info, the
    object (tensors reference storages through persistent ids), the list of storage keys —
    followed, for each key in that order, by an 8-byte little-endian element count and the
    raw little-endian elements. ``expected`` (names → shapes) is checked before any
    storage is read (:func:`check_expected`).
    """
    stream = io.BytesIO(data)
    magic = _unpickle(stream)
    if magic != TORCH_LEGACY_MAGIC:
        raise ValueError("not a torch.save file (wrong magic number)")
    version = _unpickle(stream)
    if version != TORCH_LEGACY_PROTOCOL:
        raise ValueError(f"unsupported torch.save protocol version {version!r}")
    sys_info = _unpickle(stream)
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise ValueError("big-endian torch.save files are not supported")
    obj = _unpickle(stream)
    keys = _unpickle(stream)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError("corrupt torch.save file: bad storage key list")
    check_expected(obj, expected)
    declared = _declared_storages(obj)
    storages: dict[str, NDArray[Any]] = {}
    for key in keys:
        header = stream.read(8)
        if len(header) != 8:
            raise ValueError(f"truncated torch.save file: storage {key!r} is missing")
        (count,) = struct.unpack("<q", header)
        if key not in declared:
            raise ValueError(f"corrupt torch.save file: unknown storage {key!r}")
        if key in storages:
            raise ValueError(f"corrupt torch.save file: storage {key!r} stored twice")
        _check_count(count, f"storage {key!r}")
        dtype = declared[key].dtype
        if count * dtype.itemsize > len(data) - stream.tell():
            raise ValueError(
                f"truncated torch.save file: storage {key!r} announces {count} elements, "
                f"{(len(data) - stream.tell()) // dtype.itemsize} present"
            )
        raw = stream.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise ValueError(
                f"truncated torch.save file: storage {key!r} announces {count} elements, "
                f"{len(raw) // dtype.itemsize} present"
            )
        storages[key] = np.frombuffer(raw, dtype=dtype)
    missing = set(declared) - set(storages)
    if missing:
        raise ValueError(f"truncated torch.save file: storages {sorted(missing)} missing")
    return _state_dict(obj, storages)


def _declared_storages(obj: Any) -> dict[str, _StorageRef]:
    values = obj.values() if isinstance(obj, dict) else ()
    return {v.storage.key: v.storage for v in values if isinstance(v, _TensorRef)}


def read_member(archive: zipfile.ZipFile, name: str, size: int | None = None) -> bytes:
    """Read a zip member with a bounded read: its first ``size`` bytes, or all of it.

    The declared size is checked against :data:`MAX_MEMBER_BYTES` first, and at most that
    many bytes are ever decompressed (a small member claiming a small size but inflating
    to gigabytes is cut off by ``zipfile`` at the declared size).
    """
    info = archive.getinfo(name)
    if info.file_size > MAX_MEMBER_BYTES:
        raise ValueError(
            f"archive member {name!r} is {info.file_size} bytes uncompressed; the limit is "
            f"{MAX_MEMBER_BYTES}"
        )
    want = info.file_size if size is None else size
    if want > MAX_MEMBER_BYTES:
        raise ValueError(f"{want} bytes requested from {name!r}; the limit is {MAX_MEMBER_BYTES}")
    with archive.open(info) as member:
        return member.read(want)


def read_torch_zip(
    data: bytes, expected: Mapping[str, tuple[int, ...]] | None = None
) -> dict[str, NDArray[Any]]:
    """Read a zip-format (PyTorch ≥ 1.6) ``torch.save`` archive of a ``state_dict``.

    Members are read with bounded reads (:func:`read_member`): a storage only for the bytes
    its declared element count needs. ``expected`` (names → shapes) is checked before any
    storage is read (:func:`check_expected`).
    """
    try:
        with open_zip(data) as archive:
            names = archive.namelist()
            pkl = next(n for n in names if n == "data.pkl" or n.endswith("/data.pkl"))
            prefix = pkl[: -len("data.pkl")]
            order = f"{prefix}byteorder"
            if order in names and read_member(archive, order, 16).strip() != b"little":
                raise ValueError("big-endian torch.save archives are not supported")
            obj = _unpickle(io.BytesIO(read_member(archive, pkl)))
            check_expected(obj, expected)
            storages: dict[str, NDArray[Any]] = {}
            for key, ref in _declared_storages(obj).items():
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise ValueError(f"torch.save archive lacks storage {key!r}")
                need = ref.numel * ref.dtype.itemsize
                raw = read_member(archive, member, need)
                if len(raw) < need:
                    raise ValueError(f"truncated storage {key!r} in torch.save archive")
                storages[key] = np.frombuffer(raw, dtype=ref.dtype)
    except ValueError:
        raise
    except StopIteration as exc:
        raise ValueError("torch.save archive without data.pkl") from exc
    except Exception as exc:  # zipfile raises many types for corrupt archives
        raise ValueError(f"corrupt or truncated torch.save archive ({_describe(exc)})") from exc
    return _state_dict(obj, storages)


def read_torch(
    data: bytes, fmt: Format, expected: Mapping[str, tuple[int, ...]] | None = None
) -> dict[str, NDArray[Any]]:
    """Read either kind of ``torch.save`` file into a dict of NumPy arrays.

    ``expected`` (parameter names → shapes) is checked before any tensor is read.
    """
    if fmt == "torch-legacy":
        return read_torch_legacy(data, expected)
    return read_torch_zip(data, expected)


# --- Caffe, MATLAB, npz --------------------------------------------------------------


def read_caffe(data: bytes) -> tuple[str, list[CaffeLayer]]:
    """Decode a ``.caffemodel``; ``ValueError`` if the bytes are not a Caffe net."""
    try:
        return decode_net(data)
    except ValueError as exc:
        raise ValueError(f"not a readable Caffe .caffemodel: {exc}") from exc


#: MATLAB level-5 data types met by the pre-scan.
_MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 5, 6, 14, 15


def _mat_tag(buf: bytes, pos: int, order: str) -> tuple[int, int, int, int]:
    """Read a data-element tag at ``pos``: (type, byte count, data start, next element)."""
    if pos + 8 > len(buf):
        raise ValueError("truncated MATLAB data element")
    raw_type, nbytes = struct.unpack_from(order + "II", buf, pos)
    if raw_type >> 16:  # small data element: type, count and up to 4 bytes in 8
        return raw_type & 0xFFFF, raw_type >> 16, pos + 4, pos + 8
    end = pos + 8 + nbytes
    padded = end if raw_type == _MI_COMPRESSED else end + (-nbytes % 8)
    if end > len(buf):
        raise ValueError(f"MATLAB data element of {nbytes} bytes overruns the file")
    return raw_type, nbytes, pos + 8, padded


#: Bytes per element of the MATLAB data types numeric array data may be stored in.
_MI_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}

#: ``mxClass`` codes of numeric arrays (double, single, int8 … uint64).
_MX_NUMERIC = range(6, 16)


def _check_mat_matrix(buf: bytes, order: str) -> None:
    """Check one top-level ``miMATRIX`` element (``buf`` starts at its tag) completely.

    Only numeric arrays are accepted (weights are numbers; cells, structs, sparse and
    objects are refused), and their whole structure is checked — flags, dimensions
    (:func:`_check_shape`), name, real and, if flagged complex, imaginary part, each
    holding exactly ``prod(dims)`` elements — because SciPy's reader trusts it: a real
    array flagged complex crashes the interpreter (segmentation fault, SciPy 1.17).
    """
    mtype, nbytes, start, _ = _mat_tag(buf, 0, order)
    if mtype != _MI_MATRIX:
        raise ValueError(f"unexpected MATLAB data element of type {mtype} (not an array)")
    body = buf[start : start + nbytes]
    if len(body) != nbytes:
        raise ValueError("truncated MATLAB array")
    flags_type, flags_bytes, flags_start, pos = _mat_tag(body, 0, order)
    if flags_type != _MI_UINT32 or flags_bytes != 8:
        raise ValueError("malformed MATLAB array flags")
    (flags,) = struct.unpack_from(order + "I", body, flags_start)
    mx_class, is_complex = flags & 0xFF, bool(flags & 0x800)
    if mx_class not in _MX_NUMERIC:
        raise ValueError(
            f"MATLAB array of class {mx_class} is not numeric (cells, structs, sparse "
            f"matrices, text and objects are not weights)"
        )
    dims_type, dims_bytes, dims_start, pos = _mat_tag(body, pos, order)
    if dims_type != _MI_INT32 or dims_bytes % 4 or not 2 <= dims_bytes // 4 <= MAX_NDIM:
        raise ValueError("malformed MATLAB array dimensions")
    dims = struct.unpack_from(f"{order}{dims_bytes // 4}i", body, dims_start)
    count = _check_shape(tuple(dims), "MATLAB array")
    name_type, _, _, pos = _mat_tag(body, pos, order)
    if name_type != 1:
        raise ValueError("malformed MATLAB array name")
    for part in ("real", "imaginary")[: 1 + is_complex]:
        data_type, data_bytes, _, pos = _mat_tag(body, pos, order)
        size = _MI_SIZES.get(data_type)
        if size is None or data_bytes != count * size:
            raise ValueError(
                f"MATLAB array of dimensions {dims}: its {part} part holds {data_bytes} "
                f"bytes of type {data_type}, not {count} numbers"
            )


def check_matlab(data: bytes) -> None:
    """Pre-scan a level-5 ``.mat``: bounded decompression, array dimensions.

    Each ``miCOMPRESSED`` element is inflated with a bound of :data:`MAX_MEMBER_BYTES`
    (a zlib bomb is refused before it expands), and every top-level array's declared
    dimensions are checked (:func:`_check_shape`) before SciPy reads the file.
    """
    if len(data) < 128:
        raise ValueError("truncated MATLAB file (no 128-byte header)")
    endian = data[126:128]
    if endian not in (b"IM", b"MI"):
        raise ValueError(f"MATLAB header has endian indicator {endian!r}, not 'IM' or 'MI'")
    order = "<" if endian == b"IM" else ">"
    pos = 128
    total = 0
    while pos < len(data):
        tag_pos = pos
        mtype, nbytes, start, pos = _mat_tag(data, pos, order)
        element = data[tag_pos:pos]
        if mtype == _MI_COMPRESSED:
            inflater = zlib.decompressobj()
            try:
                element = inflater.decompress(data[start : start + nbytes], MAX_MEMBER_BYTES + 1)
            except zlib.error as exc:
                raise ValueError(f"corrupt compressed MATLAB element ({_describe(exc)})") from exc
            if len(element) > MAX_MEMBER_BYTES or inflater.unconsumed_tail:
                raise ValueError(
                    f"a compressed MATLAB element of {nbytes} bytes expands beyond "
                    f"{MAX_MEMBER_BYTES} bytes (a zlib bomb?)"
                )
        total += len(element)
        if total > MAX_MEMBER_BYTES:
            raise ValueError(f"MATLAB file expands beyond {MAX_MEMBER_BYTES} bytes")
        _check_mat_matrix(element, order)


def read_matlab(data: bytes) -> dict[str, NDArray[Any]]:
    """Read the numeric variables of a MATLAB level-5 ``.mat`` file (pre-scanned first)."""
    import scipy.io

    try:
        check_matlab(data)
        contents = scipy.io.loadmat(io.BytesIO(data))
    except ValueError as exc:
        raise ValueError(f"not a readable MATLAB .mat file: {_describe(exc)}") from exc
    except Exception as exc:  # scipy raises many types for corrupt files
        raise ValueError(f"not a readable MATLAB .mat file ({_describe(exc)})") from exc
    return {k: np.asarray(v) for k, v in contents.items() if not k.startswith("__")}


def _read_npy(archive: zipfile.ZipFile, name: str) -> NDArray[Any]:
    """Read one ``.npy`` member: header checked before its data is read; no pickles."""
    info = archive.getinfo(name)
    if info.file_size > MAX_MEMBER_BYTES:
        raise ValueError(
            f"{name} is {info.file_size} bytes uncompressed; the limit is {MAX_MEMBER_BYTES}"
        )
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"{name}: unsupported .npy format version {version}")
        if dtype.hasobject or dtype.kind not in "biufcUS":
            raise ValueError(f"{name}: dtype {dtype} is not a plain numeric or text dtype")
        count = _check_shape(tuple(shape), name)
        nbytes = count * dtype.itemsize
        if nbytes > MAX_MEMBER_BYTES:
            raise ValueError(f"{name} declares {nbytes} bytes; the limit is {MAX_MEMBER_BYTES}")
        raw = member.read(nbytes)
    if len(raw) != nbytes:
        raise ValueError(f"{name} is truncated: {len(raw)} of {nbytes} bytes")
    flat = np.frombuffer(raw, dtype=dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


def read_npz(data: bytes) -> dict[str, NDArray[Any]]:
    """Read an ``.npz`` archive without allowing pickled objects.

    Every member's ``.npy`` header (shape, dtype) is checked before its data is read, and
    the data is read with a bounded read, never more than the header announces.
    """
    try:
        with open_zip(data) as archive:
            arrays: dict[str, NDArray[Any]] = {}
            for name in archive.namelist():
                if not name.endswith(".npy"):
                    raise ValueError(f"member {name!r} is not an .npy array")
                key = name[: -len(".npy")]
                if key in arrays:
                    raise ValueError(f"array {key!r} stored twice")
                arrays[key] = _read_npy(archive, name)
            return arrays
    except ValueError as exc:
        raise ValueError(f"not a readable .npz archive: {_describe(exc)}") from exc
    except Exception as exc:  # zipfile / numpy header parsing raise many types
        raise ValueError(f"not a readable .npz archive ({_describe(exc)})") from exc


def write_npz(path: StrPath, arrays: Mapping[str, NDArray[Any]], *, overwrite: bool) -> Path:
    """Write ``arrays`` to an ``.npz`` atomically (temporary file, then link or rename).

    An existing ``path`` raises ``FileExistsError`` unless ``overwrite``; the file is never
    rewritten in place, so a reader never sees a half-written archive.
    """
    p = Path(path)
    if p.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {p.name!r}")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    write_bytes_atomic(p, buffer.getvalue(), overwrite=overwrite)
    return p
