"""A minimal reader of the Caffe ``NetParameter`` protobuf (only the fields the adapters use).

Protocol-buffer wire format: a message is a sequence of (tag, value) records, tag =
``field_number << 3 | wire_type``; wire types 0 (varint), 1 (64-bit), 2 (length-delimited:
strings, sub-messages, packed repeated numbers) and 5 (32-bit). Unknown fields are skipped,
so any Caffe version's file decodes; a truncated or corrupt file raises ``ValueError``.

Fields read (from ``caffe.proto``):

* ``NetParameter``: ``name`` = 1, ``layers`` = 2 (``V1LayerParameter``), ``layer`` = 100
  (``LayerParameter``).
* ``LayerParameter``: ``name`` = 1, ``type`` = 2 (string), ``bottom`` = 3, ``top`` = 4,
  ``blobs`` = 7. ``V1LayerParameter``: ``bottom`` = 2, ``top`` = 3, ``name`` = 4,
  ``type`` = 5 (enum), ``blobs`` = 6.
* ``BlobProto``: ``num`` = 1, ``channels`` = 2, ``height`` = 3, ``width`` = 4, ``data`` = 5
  (float, packed or not), ``shape`` = 7 (``BlobShape``: ``dim`` = 1, int64, packed or not),
  ``double_data`` = 8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5

#: ``V1LayerParameter.LayerType`` values of the layer types the adapters meet.
_V1_LAYER_TYPES = {
    1: "Accuracy",
    3: "Concat",
    4: "Convolution",
    5: "Data",
    6: "Dropout",
    18: "ReLU",
    22: "Split",
    25: "Eltwise",
    33: "Slice",
    17: "Pooling",
    7: "EuclideanLoss",
    19: "Sigmoid",
    14: "InnerProduct",
    26: "Power",
}


#: Most axes and elements per axis a blob may declare (the data must be present too, so
#: this only keeps the shape arithmetic small).
MAX_BLOB_NDIM = 8
MAX_BLOB_ELEMENTS = 16 * 2**20


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """Split one message into ``(field_number, wire_type, value)`` records.

    ``value`` is an int for varints, ``bytes`` for the other wire types (8 or 4 raw bytes
    for fixed-width fields). Groups (wire types 3/4, deprecated) are rejected.
    """
    records: list[tuple[int, int, Any]] = []
    pos = 0
    end = len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            records.append((number, wire, value))
        elif wire == _FIXED64 or wire == _FIXED32:
            size = 8 if wire == _FIXED64 else 4
            if pos + size > end:
                raise ProtobufError("truncated fixed-width field")
            records.append((number, wire, buf[pos : pos + size]))
            pos += size
        elif wire == _LENGTH:
            length, pos = _read_varint(buf, pos)
            if pos + length > end:
                raise ProtobufError(
                    f"truncated length-delimited field {number} ({length} bytes announced, "
                    f"{end - pos} left)"
                )
            records.append((number, wire, buf[pos : pos + length]))
            pos += length
        else:
            raise ProtobufError(f"unsupported wire type {wire} (field {number})")
    return records


def _floats(records: list[tuple[int, int, Any]], number: int, dtype: str) -> NDArray[Any]:
    """Collect a repeated float/double field, packed (wire type 2) or not."""
    width = np.dtype(dtype).itemsize
    chunks: list[bytes] = []
    for num, wire, value in records:
        if num != number:
            continue
        if wire == _LENGTH:
            if len(value) % width:
                raise ProtobufError(f"packed field {number} is not a multiple of {width} bytes")
            chunks.append(value)
        elif (wire == _FIXED32 and width == 4) or (wire == _FIXED64 and width == 8):
            chunks.append(value)
        else:
            raise ProtobufError(f"field {number} has wire type {wire}, expected {dtype}")
    return np.frombuffer(b"".join(chunks), dtype=np.dtype(dtype).newbyteorder("<")).copy()


def _ints(records: list[tuple[int, int, Any]], number: int) -> list[int]:
    """Collect a repeated integer field, packed or not."""
    out: list[int] = []
    for num, wire, value in records:
        if num != number:
            continue
        if wire == _VARINT:
            out.append(int(value))
        elif wire == _LENGTH:
            pos = 0
            while pos < len(value):
                item, pos = _read_varint(value, pos)
                out.append(item)
        else:
            raise ProtobufError(f"field {number} has wire type {wire}, expected an integer")
    return out


def _string(records: list[tuple[int, int, Any]], number: int) -> str:
    values = [v for n, w, v in records if n == number and w == _LENGTH]
    if not values:
        return ""
    try:
        return bytes(values[-1]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"field {number} is not UTF-8 text") from exc


def _strings(records: list[tuple[int, int, Any]], number: int) -> list[str]:
    try:
        return [bytes(v).decode("utf-8") for n, w, v in records if n == number and w == _LENGTH]
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"field {number} is not UTF-8 text") from exc


def decode_blob(buf: bytes) -> NDArray[np.float32] | NDArray[np.float64]:
    """Decode a ``BlobProto`` into an array of its declared shape."""
    records = iter_fields(buf)
    shape_msgs = [v for n, w, v in records if n == 7 and w == _LENGTH]
    if shape_msgs:
        shape = tuple(_ints(iter_fields(shape_msgs[-1]), 1))
    else:
        legacy = {n: v for n, w, v in records if n in (1, 2, 3, 4) and w == _VARINT}
        shape = tuple(legacy.get(n, 1) for n in (1, 2, 3, 4)) if legacy else ()
    if len(shape) > MAX_BLOB_NDIM or any(d > MAX_BLOB_ELEMENTS for d in shape):
        raise ProtobufError(
            f"blob declares shape {shape}; at most {MAX_BLOB_NDIM} axes of "
            f"{MAX_BLOB_ELEMENTS} elements are read"
        )
    data = _floats(records, 5, "f4")
    if data.size == 0:
        data = _floats(records, 8, "f8")
    expected = math.prod(shape) if shape else data.size
    if data.size != expected:
        raise ProtobufError(f"blob of shape {shape} holds {data.size} values, expected {expected}")
    return data.reshape(shape) if shape else data


@dataclass(frozen=True)
class CaffeLayer:
    """One layer of a Caffe net: name, type, bottoms, tops and parameter blobs."""

    name: str
    type: str
    bottom: tuple[str, ...]
    top: tuple[str, ...]
    blobs: tuple[NDArray[Any], ...] = field(default=())


def decode_net(buf: bytes) -> tuple[str, list[CaffeLayer]]:
    """Decode a ``.caffemodel`` (``NetParameter``) into its name and layers.

    Raises
    ------
    ValueError
        If the bytes are not a well-formed ``NetParameter`` with at least one layer.
    """
    records = iter_fields(buf)
    layers: list[CaffeLayer] = []
    for number, wire, value in records:
        if wire != _LENGTH or number not in (2, 100):
            continue
        fields = iter_fields(value)
        if number == 100:
            name, kind = _string(fields, 1), _string(fields, 2)
            bottom, top, blob_field = _strings(fields, 3), _strings(fields, 4), 7
        else:
            name = _string(fields, 4)
            kinds = [v for n, w, v in fields if n == 5 and w == _VARINT]
            kind = _V1_LAYER_TYPES.get(kinds[-1], f"V1:{kinds[-1]}") if kinds else ""
            bottom, top, blob_field = _strings(fields, 2), _strings(fields, 3), 6
        blobs = tuple(decode_blob(v) for n, w, v in fields if n == blob_field and w == _LENGTH)
        layers.append(CaffeLayer(name, kind, tuple(bottom), tuple(top), blobs))
    if not layers:
        raise ProtobufError("no layers found (not a Caffe NetParameter)")
    return _string(records, 1), layers
