"""Readers of the published weight files, without PyTorch, Caffe or MATLAB.

* PyTorch ``torch.save`` files, both the legacy (pre-1.6) stream of pickles and the zip
  archive of PyTorch ≥ 1.6, read with a restricted unpickler that only admits the classes a
  ``state_dict`` of plain tensors needs; tensors are rebuilt as NumPy arrays.
* Caffe ``.caffemodel`` (protobuf ``NetParameter``): :mod:`dehaze.models._protobuf`.
* MATLAB ``.mat`` (level 5, i.e. saved with ``-v7`` or older): :func:`scipy.io.loadmat`.
* The package's neutral ``.npz`` (``numpy.savez`` without pickles).

Every reader raises ``ValueError`` for a truncated, corrupt or unexpected file.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from dehaze.io import write_bytes_atomic
from dehaze.models._protobuf import CaffeLayer, decode_net

StrPath = str | os.PathLike[str]

Format = Literal["torch-legacy", "torch-zip", "npz", "caffe", "matlab"]

#: Weight files of these small networks are a few kB; anything far larger is not one.
MAX_FILE_BYTES = 64 * 2**20

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
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as exc:
            raise ValueError(f"corrupt or truncated zip archive: {exc}") from exc
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
    return _TensorRef(storage, offset, shape, strides)


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
        return _StorageRef(key, storage_type.dtype, numel)


def _materialize(ref: _TensorRef, storages: Mapping[str, NDArray[Any]]) -> NDArray[Any]:
    data = storages[ref.storage.key]
    if any(s == 0 for s in ref.shape):
        return np.zeros(ref.shape, dtype=data.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if last >= data.size:
        raise ValueError(
            f"tensor of size {ref.shape} at offset {ref.offset} exceeds its storage of "
            f"{data.size} elements (corrupt file)"
        )
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
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"not a readable torch.save state_dict: {exc}") from exc


def read_torch_legacy(data: bytes) -> dict[str, NDArray[Any]]:
    """Read a legacy (pre-1.6, non-zip) ``torch.save`` file of a ``state_dict``.

    The file is a stream of pickles — magic number, protocol version, system info, the
    object (tensors reference storages through persistent ids), the list of storage keys —
    followed, for each key in that order, by an 8-byte little-endian element count and the
    raw little-endian elements.
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
    declared = _declared_storages(obj)
    storages: dict[str, NDArray[Any]] = {}
    for key in keys:
        header = stream.read(8)
        if len(header) != 8:
            raise ValueError(f"truncated torch.save file: storage {key!r} is missing")
        (count,) = struct.unpack("<q", header)
        if key not in declared:
            raise ValueError(f"corrupt torch.save file: unknown storage {key!r}")
        dtype = declared[key].dtype
        raw = stream.read(count * dtype.itemsize)
        if count < 0 or len(raw) != count * dtype.itemsize:
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


def read_torch_zip(data: bytes) -> dict[str, NDArray[Any]]:
    """Read a zip-format (PyTorch ≥ 1.6) ``torch.save`` archive of a ``state_dict``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            pkl = next(n for n in names if n == "data.pkl" or n.endswith("/data.pkl"))
            prefix = pkl[: -len("data.pkl")]
            order = f"{prefix}byteorder"
            if order in names and archive.read(order).strip() != b"little":
                raise ValueError("big-endian torch.save archives are not supported")
            obj = _unpickle(io.BytesIO(archive.read(pkl)))
            storages: dict[str, NDArray[Any]] = {}
            for key, ref in _declared_storages(obj).items():
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise ValueError(f"torch.save archive lacks storage {key!r}")
                raw = archive.read(member)
                need = ref.numel * ref.dtype.itemsize
                if len(raw) < need:
                    raise ValueError(f"truncated storage {key!r} in torch.save archive")
                storages[key] = np.frombuffer(raw[:need], dtype=ref.dtype)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ValueError(f"corrupt or truncated torch.save archive: {exc}") from exc
    return _state_dict(obj, storages)


def read_torch(data: bytes, fmt: Format) -> dict[str, NDArray[Any]]:
    """Read either kind of ``torch.save`` file into a dict of NumPy arrays."""
    return read_torch_legacy(data) if fmt == "torch-legacy" else read_torch_zip(data)


# --- Caffe, MATLAB, npz --------------------------------------------------------------


def read_caffe(data: bytes) -> tuple[str, list[CaffeLayer]]:
    """Decode a ``.caffemodel``; ``ValueError`` if the bytes are not a Caffe net."""
    try:
        return decode_net(data)
    except ValueError as exc:
        raise ValueError(f"not a readable Caffe .caffemodel: {exc}") from exc


def read_matlab(data: bytes) -> dict[str, NDArray[Any]]:
    """Read the numeric variables of a MATLAB level-5 ``.mat`` file."""
    import scipy.io

    try:
        contents = scipy.io.loadmat(io.BytesIO(data))
    except Exception as exc:  # scipy raises many types for corrupt files
        raise ValueError(f"not a readable MATLAB .mat file: {exc}") from exc
    return {k: np.asarray(v) for k, v in contents.items() if not k.startswith("__")}


def read_npz(data: bytes) -> dict[str, NDArray[Any]]:
    """Read an ``.npz`` archive without allowing pickled objects."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"not a readable .npz archive: {exc}") from exc


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
