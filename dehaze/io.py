"""Images and videos in RGB order, checked before decoding, written atomically.

This is the one place where ``dehaze`` meets files: OpenCV's BGR order is converted here
only, and every file is written through one atomic writer (a temporary file beside the
target, then link or replace; see :mod:`dehaze._files`).

Reading an image (:func:`imread`) first reads its header with Pillow (no pixel is decoded):
images larger than ``max_pixels`` (a decompression bomb: a 1.2 MB PNG can declare 20000 ×
20000 pixels), animations and multi-page files are refused, and truncated JPEG/PNG data is
refused instead of being decoded with a grey or missing bottom. The pixels are then decoded
by OpenCV in their stored bit depth, the EXIF orientation is applied (phone photos come out
upright; written files carry no EXIF, so no tag can contradict the pixels) and an alpha
channel is kept. Where OpenCV would lose something, the file is read here instead: a TIFF
with alpha (with tifffile: OpenCV drops a gray image's alpha and premultiplies RGBA
colours), the transparent gray value of a gray PNG (tRNS), and PGM/PPM samples scaled
from their maxval. A TIFF's structure is checked with the rules of
:class:`dehaze.largeimage.TiffSource`, so both readers accept the same files.

Videos (:class:`VideoReader`, :class:`VideoWriter`) stream RGB frames through
:class:`cv2.VideoCapture` and :class:`cv2.VideoWriter`; the reader counts the frames it could
decode against the container's declared count, the writer picks the input's codec where
OpenCV can write it. Audio is not read or written: a written clip has no sound.
"""

from __future__ import annotations

import io
import math
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from dehaze._files import AtomicFile, remove_stale_parts, write_bytes_atomic

__all__ = [
    "ALPHA_SUFFIXES",
    "AtomicFile",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "PREMULTIPLIED_REFUSAL",
    "VIDEO_CODECS",
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "header_pixels",
    "imread",
    "imwrite",
    "choose_codecs",
    "merge_alpha",
    "remove_stale_parts",
    "split_alpha",
    "tiff_full_size_pages",
    "write_bytes_atomic",
]

StrPath = str | os.PathLike[str]

#: File suffixes taken as images (folders and globs of the command line, dataset folders).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: File suffixes taken as videos.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")
#: Image suffixes that can store an alpha channel.
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")
#: Default limit of :func:`imread` on width × height (200 megapixels: a 16384 × 12208 image;
#: decoding and dehazing it takes several GB). Raise it with ``max_pixels`` (``--max-pixels``).
DEFAULT_MAX_PIXELS = 200_000_000

#: Output container suffix → codecs (FourCC) tried in order when the input's own codec
#: cannot be written to it. H.264 (``avc1``) plays in browsers but OpenCV's wheels often
#: lack an encoder for it; ``mp4v`` (MPEG-4 Part 2) is always there.
VIDEO_CODECS: dict[str, tuple[str, ...]] = {
    ".mp4": ("avc1", "mp4v"),
    ".m4v": ("avc1", "mp4v"),
    ".mov": ("avc1", "mp4v"),
    ".avi": ("XVID", "MJPG"),
    ".mkv": ("XVID", "MJPG"),
}

_EXIF_ORIENTATION = 0x0112


# --- reading images -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    """What Pillow reads from an image header without decoding pixels."""

    format: str
    width: int
    height: int
    mode: str
    frames: int
    orientation: int


def _read_header(data: bytes) -> _Header | None:
    """Identify ``data`` with Pillow's format plugins, reading the header only.

    ``PIL.Image.open`` would also apply Pillow's own decompression-bomb limit (a warning
    above 89 MP, an error above 179 MP) through process-wide state; the plugins are called
    directly so that :func:`imread`'s ``max_pixels`` is the only limit.
    """
    from PIL import Image

    Image.init()
    prefix = data[:16]
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        try:
            # formats without a signature check (TGA, IM, ...) would take any garbage for
            # an image of some size; OpenCV reads none of them
            if accept is None:
                continue
            accepted = accept(prefix)  # a str is Pillow's "format support missing" note
            if isinstance(accepted, str) or not accepted:
                continue
            image = factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, ValueError, KeyError, EOFError, OSError):
            continue
        except struct.error:
            continue
        try:
            width, height = image.size
            frames = int(getattr(image, "n_frames", 1))
            raw_exif = image.info.get("exif")
            orientation = 1
            if image.format != "TIFF" and isinstance(raw_exif, bytes) and raw_exif:
                orientation = _exif_orientation(raw_exif)
        except (SyntaxError, IndexError, TypeError, ValueError, KeyError, EOFError, OSError):
            continue
        except struct.error:
            continue
        finally:
            image.close()
        return _Header(str(image.format), width, height, image.mode, frames, orientation)
    return _tiff_header(data)


def _tiff_header(data: bytes) -> _Header | None:
    """Read a TIFF header with tifffile where Pillow has no mode for it (16-bit gray+alpha)."""
    if data[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return None
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page: Any = tiff.pages[0]
            frames = tiff_full_size_pages(tiff.pages)
            width, height = int(page.imagewidth), int(page.imagelength)
            colour = {1: "L", 2: "RGB"}.get(int(page.photometric), "")
            alpha = "A" if colour and len(page.extrasamples) == 1 else ""
    except Exception:  # not a TIFF tifffile reads either
        return None
    return _Header("TIFF", width, height, colour + alpha, frames, 1)


def header_pixels(path: StrPath, *, max_bytes: int = 1 << 20) -> int | None:
    """Pixels (all frames) an image file declares in its header, or None if not found.

    Only the first ``max_bytes`` of the file are read and nothing is decoded: for
    deciding how to process a file before :func:`imread` checks it properly. None for
    an unreadable file, a format Pillow does not know, or a header further in.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes)
    except OSError:
        return None
    header = _read_header(data)
    if header is None:
        return None
    return header.width * header.height * max(1, header.frames)


def _exif_orientation(raw: bytes) -> int:
    """Read the orientation tag (1–8) of an EXIF block; 1 if absent or unreadable."""
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(raw)
        value = int(exif.get(_EXIF_ORIENTATION, 1))
    except Exception:  # a damaged EXIF block does not make the image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _jpeg_is_complete(data: bytes) -> bool:
    """Whether the JPEG stream's markers lead to an end-of-image marker (FF D9).

    Segments are skipped by their lengths and entropy-coded data up to the next marker, so
    an EOI inside an EXIF thumbnail does not count and data appended after the image
    (some cameras add more) is ignored. A truncated file ends before its EOI; libjpeg
    decodes it anyway, with a warning on stderr, and fills the rest grey.
    """
    size = len(data)
    if size < 4 or data[:2] != b"\xff\xd8":
        return False
    pos = 2
    while pos + 1 < size:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > size:
            return False
        length = (data[pos + 2] << 8) | data[pos + 3]
        pos += 2 + length
        if pos > size:
            return False
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= size:
                    return False
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    pos += 1 if following == 0xFF else 2
                    continue
                break
    return False


def _orient(image: NDArray[Any], orientation: int) -> NDArray[Any]:
    """Apply an EXIF orientation (1–8) to an H×W[×C] array, as Pillow's exif_transpose."""
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:
        return np.swapaxes(image, 0, 1)
    if orientation == 6:
        return np.rot90(image, k=-1)
    if orientation == 7:
        return np.swapaxes(image[::-1, ::-1], 0, 1)
    if orientation == 8:
        return np.rot90(image, k=1)
    return image


def _png_is_gray_alpha(data: bytes) -> bool:
    """PNG colour type 4 (gray + alpha), which OpenCV decodes as four channels."""
    return len(data) > 25 and data[12:16] == b"IHDR" and data[25] == 4


def _png_gray_key(data: bytes) -> int | None:
    """Return the transparent gray value of a gray PNG (colour type 0) with tRNS, or None.

    OpenCV decodes such a PNG as gray only, dropping the transparency. The value is
    returned on the scale OpenCV decodes to: 1-, 2- and 4-bit samples are expanded to 8
    bits by bit replication (a 2-bit 1 is 85), 8 and 16 bits stay as stored. A key outside
    the bit depth's range matches no pixel (-1).
    """
    if len(data) < 33 or data[12:16] != b"IHDR" or data[25] != 0:
        return None
    bit_depth = data[24]
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind in (b"IDAT", b"IEND"):  # tRNS must come before the image data
            return None
        if kind == b"tRNS" and length == 2 and pos + 10 <= len(data):
            value = int.from_bytes(data[pos + 8 : pos + 10], "big")
            top = (1 << bit_depth) - 1
            if value > top:
                return -1
            return value * (255 // top) if bit_depth < 8 else value
        pos += 12 + length
    return None


def _with_key_alpha(gray: NDArray[Any], key: int) -> NDArray[Any]:
    """Gray + alpha from a tRNS colour key: alpha 0 where the gray equals it, full elsewhere."""
    opaque = np.iinfo(gray.dtype).max
    alpha = np.where(gray == key, 0, opaque).astype(gray.dtype)
    return np.stack([gray, alpha], axis=2)


#: Pillow modes that carry an alpha channel (premultiplied ones in lower case).
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")

#: The refusal of premultiplied alpha, shared with :class:`dehaze.largeimage.TiffSource` so
#: that both readers say the same.
PREMULTIPLIED_REFUSAL = (
    "has premultiplied (associated) alpha; dehazing premultiplied colours would change them "
    "wrongly: store unassociated alpha instead"
)

_TIFF_MINISBLACK = 1
_TIFF_RGB = 2
_TIFF_ASSOCIATED_ALPHA = 1
_TIFF_ORIENTATION = 274


@dataclass(frozen=True)
class _TiffLayout:
    """What tifffile reads from a TIFF's structure (no pixel decoded)."""

    frames: int  # full-resolution pages; reduced-resolution ones (thumbnails) do not count
    photometric: int
    samples: int
    extrasamples: tuple[int, ...]
    orientation: int
    planar: int = 1  # PlanarConfiguration: 1 interleaved, 2 one plane per sample
    tiled: bool = False
    bits: int = 8


def tiff_full_size_pages(pages: Sequence[Any]) -> int:
    """Count the pages of a TIFF that are images of their own (the rule of both readers).

    The first page is the image; a later page with bit 0 of NewSubfileType set is a
    reduced-resolution version of it (a thumbnail or pyramid level) and does not count.

    Parameters
    ----------
    pages : sequence
        ``tifffile.TiffFile.pages``.

    Returns
    -------
    int
        1 for a single image (with or without reduced pages), more for a multi-page file.
    """
    return 1 + sum(1 for i in range(1, len(pages)) if not getattr(pages[i], "is_reduced", False))


def _tiff_layout(path: Path, data: bytes) -> _TiffLayout:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            pages = tiff.pages
            page: Any = pages[0]
            frames = tiff_full_size_pages(pages)
            orientation_tag = page.tags.get(_TIFF_ORIENTATION)
            return _TiffLayout(
                frames=frames,
                photometric=int(page.photometric),
                samples=int(page.samplesperpixel),
                extrasamples=tuple(int(e) for e in page.extrasamples),
                orientation=1 if orientation_tag is None else int(orientation_tag.value),
                planar=int(page.planarconfig),
                tiled=bool(page.is_tiled),
                bits=int(page.bitspersample),
            )
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error...
        raise ValueError(f"cannot read the TIFF structure of {path} ({exc})") from None


def _check_tiff_alpha(path: Path, layout: _TiffLayout) -> None:
    """Refuse extra samples neither reader carries faithfully (as TiffSource does)."""
    extras = layout.extrasamples
    if len(extras) > 1:
        raise ValueError(
            f"{path}: has {len(extras)} extra samples {extras}; only one alpha channel is carried"
        )
    if extras and extras[0] == _TIFF_ASSOCIATED_ALPHA:
        raise ValueError(f"{path}: {PREMULTIPLIED_REFUSAL}")


def _read_tiff_with_tifffile(
    path: Path, data: bytes, layout: _TiffLayout, *, pillow: bool = False
) -> NDArray[Any]:
    """Decode a TIFF's samples with tifffile, as stored and upright: H×W or H×W×samples.

    For the files OpenCV loses or misreads: it drops the alpha of a gray+alpha TIFF,
    premultiplies the colours of an RGBA one (unassociated alpha) by the alpha, decodes
    16-bit planar-separate RGB as garbage and refuses some valid tiled files. tifffile
    needs the imagecodecs package, which dehaze does not use, for LZW (the usual
    compression of RGBA TIFFs from image editors) and JPEG. With ``pillow`` those are
    decoded by Pillow instead where it has a mode for them (8-bit gray+alpha and RGBA,
    unassociated samples as stored; it has no 16-bit one); otherwise the file raises
    ValueError, and the caller decides what else can read it.
    """
    import tifffile

    if not 1 <= layout.orientation <= 8:
        raise ValueError(f"{path}: has an invalid orientation tag {layout.orientation} (1–8)")
    compression = "?"
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page: Any = tiff.pages[0]
            compression = str(getattr(page.compression, "name", page.compression))
            image = np.asarray(page.asarray())
        if layout.planar == 2 and image.ndim == 3 and layout.samples > 1:
            image = np.moveaxis(image, 0, -1)  # separate planes: samples first
    except Exception as exc:
        fallback = _pillow_alpha_tiff(data, layout) if pillow else None
        if fallback is None:
            raise ValueError(
                f"cannot decode the TIFF {path} (compression {compression}: {exc}); convert "
                "it to uncompressed or Deflate (zip) compression, e.g. with `tiffcp -c zip`"
            ) from None
        image = fallback
    want = (layout.samples,) if layout.samples > 1 else ()
    if image.dtype not in (np.uint8, np.uint16) or image.ndim < 2 or image.shape[2:] != want:
        raise ValueError(
            f"{path}: decoded as {image.dtype} {image.shape} (compression {compression}), "
            f"not 8/16-bit with {layout.samples} samples per pixel"
        )
    image = image.astype(image.dtype.newbyteorder("="), copy=False)
    return _orient(image, layout.orientation)


def _pillow_alpha_tiff(data: bytes, layout: _TiffLayout) -> NDArray[Any] | None:
    """Decode an 8-bit gray+alpha or RGBA TIFF with Pillow (as stored), or return None."""
    from PIL import Image

    want = {2: "LA", 4: "RGBA"}.get(layout.samples)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode != want:  # 16-bit, or a layout Pillow reads otherwise
                return None
            pixels = np.asarray(image)
    except Exception:  # Pillow cannot decode it either
        return None
    return pixels if pixels.ndim == 3 and pixels.shape[2] == layout.samples else None


_PNM_CHANNELS = {b"P2": 1, b"P3": 3, b"P5": 1, b"P6": 3}
_PNM_SPACE = b" \t\n\r\x0b\x0c"


def _pnm_header(path: Path, data: bytes) -> tuple[int, int, int, int]:
    """Parse a PGM/PPM header (P2, P3, P5, P6) from the file's bytes.

    Returns
    -------
    width, height, maxval, start : int
        The image size, the largest sample value the header declares (1–65535) and the
        offset of the first sample (after the single whitespace that ends the header).
    """
    numbers: list[int] = []
    pos = 2
    while len(numbers) < 3:
        while pos < len(data) and (data[pos] in _PNM_SPACE or data[pos] == ord("#")):
            if data[pos] == ord("#"):  # a comment runs to the end of its line
                end = data.find(b"\n", pos)
                pos = len(data) if end < 0 else end
            pos += 1
        start = pos
        while pos < len(data) and data[pos : pos + 1].isdigit():
            pos += 1
        if pos == start:
            raise ValueError(
                f"{path} has a damaged PGM/PPM header (expected width, height and maxval)"
            )
        numbers.append(int(data[start:pos]))
    width, height, maxval = numbers
    if not 1 <= maxval <= 65535:
        raise ValueError(f"{path} declares maxval {maxval}; PGM/PPM allow 1 to 65535")
    if pos >= len(data) or data[pos] not in _PNM_SPACE:
        raise ValueError(f"{path} has a damaged PGM/PPM header (no whitespace after maxval)")
    return width, height, maxval, pos + 1


def _read_pnm(path: Path, data: bytes) -> NDArray[Any]:
    """Decode a PGM/PPM (P2, P3, P5, P6) scaled from its maxval to the full uint8/uint16 range.

    OpenCV returns the raw numbers of a binary file (maxval 100 comes out 2.5× darker) and
    clips values above maxval in a plain (ASCII) file; here a sample ``v`` becomes
    ``round(v × top / maxval)`` with ``top`` 255 for maxval ≤ 255 and 65535 above, which
    keeps distinct values distinct, and a sample above maxval is an error.
    """
    magic = data[:2]
    channels = _PNM_CHANNELS[magic]
    width, height, maxval, start = _pnm_header(path, data)
    count = width * height * channels
    what = f"{width}×{height}{'×3' if channels == 3 else ''}"
    if magic in (b"P5", b"P6"):
        stored = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        end = start + count * stored.itemsize
        if len(data) < end:
            raise ValueError(
                f"{path} is truncated: its PGM/PPM data holds {len(data) - start} of the "
                f"{count * stored.itemsize} bytes of a {what} image"
            )
        if data[end:].strip(_PNM_SPACE):
            raise ValueError(
                f"{path} has {len(data) - end} bytes after its {what} image (several images "
                "in one file?); only single images are read"
            )
        samples = np.frombuffer(data, dtype=stored, count=count, offset=start).astype(np.int64)
    else:
        tokens = data[start:].split()
        if len(tokens) != count or not all(token.isdigit() for token in tokens):
            raise ValueError(
                f"{path} holds {len(tokens)} values where a plain {what} PGM/PPM image has "
                f"{count} decimal numbers (truncated or damaged)"
            )
        samples = np.array([int(token) for token in tokens], dtype=np.int64)
    largest = int(samples.max()) if count else 0
    if largest > maxval:
        raise ValueError(f"{path} has a sample value {largest} above its declared maxval {maxval}")
    dtype = np.uint8 if maxval <= 255 else np.uint16
    top = int(np.iinfo(dtype).max)
    if maxval != top:  # round to nearest, halves up, in exact integers
        samples = (samples * (2 * top) + maxval) // (2 * maxval)
    shape = (height, width) if channels == 1 else (height, width, 3)
    return samples.astype(dtype).reshape(shape)


def _top(image: NDArray[Any]) -> int:
    """Return the largest value of an integer image's dtype (the opaque alpha)."""
    return int(np.iinfo(image.dtype).max)


def _check_max_pixels(max_pixels: object) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")


def _check_size(path: Path, width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuse a declared size above the pixel limit (before anything is decoded)."""
    pixels = width * height
    if pixels > max_pixels:
        raise ValueError(
            f"{path} is {width}×{height} = {pixels:,} pixels per {what}, more than the limit "
            f"of {max_pixels:,} (max_pixels, --max-pixels); raise the limit if the file is "
            "genuine"
        )


def imread(path: StrPath, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> NDArray[Any]:
    """Read an image file as an RGB, RGBA, gray or gray+alpha array in its stored bit depth.

    Parameters
    ----------
    path : str or path-like
        A PNG, JPEG, TIFF, WebP, BMP or PPM/PGM file (formats Pillow can identify and
        OpenCV can decode).
    max_pixels : int, optional
        Largest width × height accepted (default ``DEFAULT_MAX_PIXELS``, 200 megapixels),
        checked from the file's header before any pixel is decoded.

    Returns
    -------
    ndarray
        H×W×3 RGB, H×W×4 RGBA, H×W gray or H×W×2 gray+alpha; uint8 or uint16 as stored.
        The EXIF orientation is applied (the array is upright as a viewer shows it). A gray
        PNG with a tRNS colour key comes back as gray+alpha (alpha 0 where the gray equals
        the key, full elsewhere). PGM/PPM samples are scaled from the header's maxval to
        the full range (uint8 for maxval ≤ 255, uint16 above), rounded to nearest.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be decoded as an image, is larger than ``max_pixels``, holds
        several frames (animated GIF/WebP/PNG, multi-page TIFF; a TIFF's reduced-resolution
        pages such as a thumbnail do not count), is a truncated JPEG, PNG, PGM or PPM, has
        a sample type other than 8 or 16 bits, a PGM/PPM sample above its maxval, a TIFF
        with premultiplied (associated) alpha or more than one extra sample, or a header
        declaring an alpha channel the decoder does not return.

    Notes
    -----
    Truncation is found from the file's structure (a JPEG without its end-of-image
    marker, a PNG without its IEND chunk). Damage that keeps the structure (corrupt
    entropy-coded bytes in a JPEG) is decoded as libjpeg decodes it.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from dehaze.io import imread, imwrite
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.png"
    >>> _ = imwrite(path, np.zeros((4, 6, 3), np.uint8))
    >>> imread(path).shape
    (4, 6, 3)
    """
    p = Path(path)
    _check_max_pixels(max_pixels)
    if not p.is_file():
        raise FileNotFoundError(f"no such image file: {p}")
    data = p.read_bytes()
    header = _read_header(data) if data else None
    if header is None:
        raise ValueError(f"cannot decode {p} as an image (corrupt or unsupported format)")
    _check_size(p, header.width, header.height, max_pixels, "image")
    frames = header.frames
    tiff = _tiff_layout(p, data) if header.format == "TIFF" else None
    if tiff is not None:  # Pillow counts a thumbnail page as a frame; the TIFF rule does not
        frames = tiff.frames
    if frames > 1:
        raise ValueError(
            f"{p} holds {frames} frames ({header.format} animation or multi-page "
            "file); only single images are read: extract the frame or page you want"
        )
    if header.format == "JPEG" and not _jpeg_is_complete(data):
        raise ValueError(f"{p} is truncated: its JPEG data ends before the end-of-image marker")
    if header.format == "PNG" and data.rfind(b"IEND") < 0:
        raise ValueError(f"{p} is truncated: its PNG data ends before the IEND chunk")
    if tiff is not None:
        _check_tiff_alpha(p, tiff)
        colour = {_TIFF_MINISBLACK: 1, _TIFF_RGB: 3}.get(tiff.photometric)
        if tiff.extrasamples and colour is not None and tiff.samples == colour + 1:
            # OpenCV returns a gray+alpha TIFF as gray only, and an RGBA one with its
            # colours premultiplied by the alpha (libtiff's RGBA interface)
            return np.ascontiguousarray(_read_tiff_with_tifffile(p, data, tiff, pillow=True))
        if colour is not None and tiff.samples == colour and (tiff.planar == 2 or tiff.tiled):
            # OpenCV 5 decodes 16-bit planar-separate RGB as garbage and refuses some valid
            # tiled files: tifffile reads them as stored (as TiffSource does)
            try:
                return np.ascontiguousarray(_read_tiff_with_tifffile(p, data, tiff))
            except ValueError:
                if tiff.planar == 2 and tiff.bits == 16:  # OpenCV would give garbage
                    raise
                # a codec tifffile lacks (LZW, JPEG: imagecodecs): OpenCV reads those
    if header.format == "PPM" and data[:2] in _PNM_CHANNELS:
        return _read_pnm(p, data)
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot decode {p} as an image (corrupt or unsupported format)")
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{p} has sample type {img.dtype}; only 8- and 16-bit images are read")
    if img.ndim == 2 and header.format == "PNG":
        key = _png_gray_key(data)
        if key is not None:  # a tRNS colour key, which OpenCV ignores for gray PNGs
            img = _with_key_alpha(img, key)
    if img.ndim == 3:
        channels = img.shape[2]
        if channels == 4 and (header.mode in ("LA", "La") or _png_is_gray_alpha(data)):
            img = np.stack([img[:, :, 0], img[:, :, 3]], axis=2)
        elif channels == 4 and header.mode == "CMYK" and bool((img[:, :, 3] == _top(img)).all()):
            # a CMYK TIFF: OpenCV converts it to colour plus an opaque channel it makes up,
            # which is no alpha (an output format without alpha would then be refused)
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        elif channels == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
        elif channels == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif channels == 1:
            img = img[:, :, 0]
        elif channels != 2:
            raise ValueError(f"{p} has {channels} channels; expected 1, 2, 3 or 4")
    if header.mode in _ALPHA_MODES and not (img.ndim == 3 and img.shape[2] in (2, 4)):
        raise ValueError(
            f"{p}: its {header.format} header declares an alpha channel (mode {header.mode}) "
            "but the decoder returned none; it is refused rather than read without it: "
            "store it as PNG, or as an RGBA or gray + alpha TIFF"
        )
    # OpenCV applies a TIFF's orientation itself; JPEG, PNG and WebP come as stored
    return np.ascontiguousarray(_orient(img, header.orientation))


# --- alpha ------------------------------------------------------------------------------


def split_alpha(image: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any] | None]:
    """Split an image into its colour part and its alpha channel.

    Parameters
    ----------
    image : ndarray
        H×W, H×W×2 (gray+alpha), H×W×3 or H×W×4 (RGBA), as :func:`imread` returns.

    Returns
    -------
    color : ndarray
        H×W gray or H×W×3 RGB (a view of ``image``).
    alpha : ndarray or None
        The H×W alpha channel, or None if the image has none.

    Raises
    ------
    ValueError
        If the image is not 2-D or has a channel count other than 1–4.
    """
    if image.ndim == 2:
        return image, None
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4:
        raise ValueError(f"image must be H×W or H×W×C with C in 1–4, got shape {image.shape}")
    channels = image.shape[2]
    if channels == 1:
        return image[:, :, 0], None
    if channels == 2:
        return image[:, :, 0], image[:, :, 1]
    if channels == 3:
        return image, None
    return image[:, :, :3], image[:, :, 3]


def merge_alpha(color: NDArray[Any], alpha: NDArray[Any] | None) -> NDArray[Any]:
    """Put an alpha channel back beside a colour image (the inverse of :func:`split_alpha`).

    Parameters
    ----------
    color : ndarray
        H×W gray or H×W×3 RGB, uint8, uint16 or float in [0, 1].
    alpha : ndarray or None
        H×W alpha in its own dtype; it is converted to ``color``'s scale (uint8 ↔ uint16
        by 257, float ↔ integer by the integer range) so an unchanged alpha stays
        unchanged when the dtypes agree. None returns ``color`` itself.

    Returns
    -------
    ndarray
        H×W×2 (gray+alpha) or H×W×4 (RGBA) in ``color``'s dtype.

    Raises
    ------
    ValueError
        If the shapes disagree.
    """
    if alpha is None:
        return color
    if alpha.shape != color.shape[:2]:
        raise ValueError(
            f"alpha has shape {alpha.shape}; expected the image's height × width {color.shape[:2]}"
        )
    a = _rescale(alpha, color.dtype)
    planes = [color] if color.ndim == 2 else [color[:, :, c] for c in range(color.shape[2])]
    return np.stack([*planes, a], axis=2)


def _rescale(values: NDArray[Any], dtype: np.dtype[Any]) -> NDArray[Any]:
    """Convert between uint8, uint16 and float [0, 1] scales (alpha only)."""
    if values.dtype == dtype:
        return values
    if values.dtype.kind == "u":
        unit = float(np.iinfo(values.dtype).max)
        as_float = values.astype(np.float64) / unit
    else:
        as_float = values.astype(np.float64)
    if dtype.kind == "u":
        top = float(np.iinfo(dtype).max)
        return np.rint(np.clip(as_float, 0.0, 1.0) * top).astype(dtype)
    return as_float.astype(dtype)


# --- writing images -----------------------------------------------------------------------


def _to_storable(image: NDArray[Any], suffix: str) -> NDArray[Any]:
    arr = np.asarray(image)
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        out = arr
    elif arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise ValueError("a float image must be finite and within [0, 1] to be written")
        out = np.rint(arr * 255.0).astype(np.uint8)
    else:
        raise TypeError(f"cannot write an image of dtype {arr.dtype}; use uint8, uint16 or float")
    if out.dtype == np.uint16 and suffix in (".jpg", ".jpeg", ".bmp"):
        raise ValueError(f"{suffix} cannot store 16-bit images; write .png or .tif instead")
    if out.ndim == 2:
        return out
    if out.ndim != 3 or out.shape[2] not in (2, 3, 4):
        raise ValueError(
            f"image must be H×W, H×W×2 (gray+alpha), H×W×3 (RGB) or H×W×4 (RGBA), "
            f"got shape {out.shape}"
        )
    out = np.ascontiguousarray(out)
    if out.shape[2] == 3:
        return np.asarray(cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    if suffix not in ALPHA_SUFFIXES:
        raise ValueError(
            f"{suffix or 'this format'} cannot store an alpha channel; write "
            f"{', '.join(ALPHA_SUFFIXES)} to keep it (or drop the alpha channel yourself)"
        )
    if out.shape[2] == 2:  # gray+alpha: OpenCV writes four channels, gray in each colour
        gray, alpha = out[:, :, 0], out[:, :, 1]
        return np.stack([gray, gray, gray, alpha], axis=2)
    return np.asarray(cv2.cvtColor(out, cv2.COLOR_RGBA2BGRA))


def _alpha_tiff_bytes(image: NDArray[Any], storable: NDArray[Any]) -> bytes:
    """Encode an image with alpha as a Deflate TIFF that marks it unassociated.

    OpenCV writes four samples with no ExtraSamples tag, which leaves the fourth's meaning
    undefined (:class:`dehaze.largeimage.TiffSource` refuses such files). tifffile writes
    the alpha as unassociated (the stored colours are not premultiplied), gray+alpha as
    two samples.
    """
    import tifffile

    if np.asarray(image).ndim == 3 and np.asarray(image).shape[2] == 2:
        pixels = np.ascontiguousarray(storable[:, :, [0, 3]])  # gray, alpha
        photometric = "minisblack"
    else:
        pixels = np.ascontiguousarray(cv2.cvtColor(storable, cv2.COLOR_BGRA2RGBA))
        photometric = "rgb"
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        pixels,
        photometric=photometric,
        planarconfig="contig",
        extrasamples=["unassalpha"],
        compression="zlib",
    )
    return buffer.getvalue()


def imwrite(path: StrPath, image: NDArray[Any], *, overwrite: bool = False) -> Path:
    """Write an image atomically.

    The image is encoded in memory, written to a temporary file in the target folder and
    linked (or, with ``overwrite``, renamed) into place, so an interrupted write never
    leaves a half-written file and an existing file is never replaced by accident.

    Parameters
    ----------
    path : str or path-like
        Target file; the format follows the suffix (.png, .jpg, .bmp, .tif, .webp, ...).
    image : ndarray
        H×W gray, H×W×2 gray+alpha, H×W×3 RGB or H×W×4 RGBA; uint8, uint16, or float in
        [0, 1] (stored as 8-bit). Alpha needs a suffix in ``ALPHA_SUFFIXES``; gray+alpha
        is stored as RGBA with the gray value in each colour, except in TIFF, which is
        written with tifffile (Deflate) with its alpha marked unassociated and gray+alpha
        as two samples.
    overwrite : bool, optional
        Replace an existing file (default False: raise FileExistsError).

    Returns
    -------
    Path
        The written path.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the image has a bad shape or range, or the format cannot store it (16 bits in
        JPEG/BMP, alpha outside ``ALPHA_SUFFIXES``, an unknown suffix).

    Notes
    -----
    The file carries no EXIF block, so no orientation tag can contradict the pixels
    (:func:`imread` returns images upright).
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    suffix = p.suffix.lower()
    storable = _to_storable(image, suffix)
    if suffix in (".tif", ".tiff") and storable.ndim == 3 and storable.shape[2] == 4:
        write_bytes_atomic(p, _alpha_tiff_bytes(image, storable), overwrite=overwrite)
        return p
    try:
        ok, encoded = cv2.imencode(suffix, storable)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"OpenCV cannot encode images as {suffix!r}")
    write_bytes_atomic(p, encoded.tobytes(), overwrite=overwrite)
    return p


# --- videos -------------------------------------------------------------------------------

_MPEG4_PART2 = {"FMP4", "XVID", "DIVX", "DX50", "MP4V"}
_H264 = {"AVC1", "H264", "X264", "DAVC"}
_MP4_LIKE = (".mp4", ".m4v", ".mov")

#: (FourCC, suffix) pairs OpenCV failed to open a writer for; tried once per process.
_UNWRITABLE: set[tuple[str, str]] = set()
_UNWRITABLE_LOCK = threading.Lock()


def _fourcc_text(code: float) -> str:
    value = int(code) & 0xFFFFFFFF
    text = value.to_bytes(4, "little").decode("latin-1")
    return text if value and text.isprintable() and text.strip() else ""


def _avi_fourcc(path: Path) -> str:
    """Read the video stream's compression FourCC from an AVI header (strf, else strh).

    OpenCV reports the codec (MPEG-4 Part 2 is always ``FMP4``), not the tag stored in the
    file, so an XVID clip would otherwise come back tagged FMP4.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return ""
    strh = head.find(b"strh")
    while strh >= 0 and head[strh + 8 : strh + 12] != b"vids":
        strh = head.find(b"strh", strh + 4)
    if strh < 0:
        return ""
    strf = head.find(b"strf", strh)
    for start in ((strf + 24) if strf >= 0 else -1, strh + 12):
        tag = head[start : start + 4] if start >= 0 else b""
        text = tag.decode("latin-1") if len(tag) == 4 else ""
        if text.isalnum():
            return text
    return ""


def _codec_candidates(source_codec: str, suffix: str) -> list[str]:
    """List the codecs to try for ``suffix``: the source's own (normalised), then defaults."""
    ordered: list[str] = []
    code = source_codec.upper()
    if code:
        if suffix in _MP4_LIKE and code in _MPEG4_PART2:
            ordered.append("mp4v")
        elif code in _H264:
            ordered.append("avc1")
        else:
            ordered.append(source_codec)
    for fallback in VIDEO_CODECS[suffix]:
        if fallback not in ordered:
            ordered.append(fallback)
    return ordered


@dataclass(frozen=True)
class VideoInfo:
    """What a video container says about its video stream.

    Attributes
    ----------
    fps : float
        Frame rate.
    width, height : int
        Frame size in pixels (of the first decoded frame).
    declared_frames : int
        The frame count the container reports (0 when it reports none).
    codec : str
        The codec's FourCC as stored (empty when unknown).
    """

    fps: float
    width: int
    height: int
    declared_frames: int
    codec: str


class VideoReader:
    """RGB frames of a video file, read one at a time.

    Parameters
    ----------
    path : str or path-like
        Any clip OpenCV's FFmpeg backend decodes.
    max_pixels : int, optional
        Largest frame width × height accepted (default ``DEFAULT_MAX_PIXELS``), checked
        from the container before the first frame is decoded.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If no frame can be decoded, the frames are larger than ``max_pixels`` or the clip
        reports no frame rate.

    Notes
    -----
    Use as a context manager. After :meth:`frames` is exhausted, :meth:`check_complete`
    raises if fewer frames were decoded than the container declares (a truncated file or a
    frame that fails to decode ends the stream early). Audio is not read.
    """

    def __init__(self, path: StrPath, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.path = Path(path)
        _check_max_pixels(max_pixels)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such video file: {self.path}")
        self._capture: Any = cv2.VideoCapture(str(self.path))
        try:
            opened = self._capture.isOpened()
            if opened:  # the container's frame size, before any frame is decoded
                width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
                height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
                _check_size(self.path, width, height, max_pixels, "frame")
            ok, first = self._capture.read() if opened else (False, None)
            if not ok or first is None:
                raise ValueError(
                    f"cannot decode {self.path} as a video (corrupt, empty or unsupported)"
                )
            fps = float(self._capture.get(cv2.CAP_PROP_FPS))
            if not math.isfinite(fps) or fps <= 0.0:
                raise ValueError(f"{self.path} does not report a frame rate; cannot keep it")
            declared = max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)))
            codec = _avi_fourcc(self.path) if self.path.suffix.lower() == ".avi" else ""
            codec = codec or _fourcc_text(self._capture.get(cv2.CAP_PROP_FOURCC))
        except BaseException:
            self._capture.release()
            raise
        self._first: NDArray[Any] | None = first
        height, width = first.shape[:2]
        self.info = VideoInfo(fps, width, height, declared, codec)
        self.frames_read = 0

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        """Yield the frames as H×W×3 RGB uint8, in order; ``frames_read`` counts them."""
        if self._first is not None:
            first, self._first = self._first, None
            self.frames_read = 1
            yield np.asarray(cv2.cvtColor(first, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        while True:
            ok, bgr = self._capture.read()
            if not ok or bgr is None:
                return
            self.frames_read += 1
            yield np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)

    def check_complete(self) -> None:
        """Raise ValueError if fewer frames were read than the container declares.

        Raises
        ------
        ValueError
            Naming both counts; nothing is raised when the container declares no count.
        """
        declared = self.info.declared_frames
        if declared and self.frames_read < declared:
            raise ValueError(
                f"{self.path}: decoded only {self.frames_read} of the {declared} frames the "
                f"file declares (truncated, or frame {self.frames_read} cannot be decoded)"
            )

    def close(self) -> None:
        """Release the capture."""
        self._capture.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class VideoWriter:
    """Write RGB frames to a video file atomically, in the source's codec where possible.

    Parameters
    ----------
    path : str or path-like
        Output clip; its suffix must be a key of ``VIDEO_CODECS``.
    fps : float
        Frame rate.
    size : (int, int)
        Frame width and height.
    codecs : sequence of str
        FourCCs to try in order (see :func:`choose_codecs`); the first one OpenCV opens
        a writer for is used (``codec``). A FourCC that fails once is not tried again in
        this process.
    overwrite : bool, optional
        Replace an existing file (default False: FileExistsError at :meth:`commit`).

    Raises
    ------
    ValueError
        If OpenCV cannot open a writer with any of the codecs.

    Attributes
    ----------
    written_size : (int, int)
        The width and height written: ``size``, each rounded up to even (below).

    Notes
    -----
    Frames go to a temporary file beside ``path``; :meth:`commit` moves it into place and
    leaving the ``with`` block without committing removes it. No audio is written.

    OpenCV's FFmpeg writer rounds an odd width or height *down* for every codec (a 127×95
    clip came out 126×94, its last column and row dropped). A frame of odd size is
    therefore written one column or row larger, the last one repeated: every pixel is
    kept, and ``written_size`` says what the clip's size is.
    """

    def __init__(
        self,
        path: StrPath,
        fps: float,
        size: tuple[int, int],
        codecs: Sequence[str],
        *,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        self._file = AtomicFile(self.path, overwrite=overwrite, suffix=suffix)
        self._writer: Any = None
        self.codec = ""
        width, height = (int(v) for v in size)
        self.written_size = (width + width % 2, height + height % 2)
        self._pad = (self.written_size[1] - height, self.written_size[0] - width)
        try:
            for code in codecs:
                with _UNWRITABLE_LOCK:
                    if (code, suffix) in _UNWRITABLE:
                        continue
                with _opencv_quiet():  # a codec it cannot open is an expected answer
                    writer = cv2.VideoWriter(
                        self._file.name, cv2.VideoWriter.fourcc(*code), fps, self.written_size
                    )
                if writer.isOpened():
                    self._writer, self.codec = writer, code
                    break
                writer.release()
                with _UNWRITABLE_LOCK:
                    _UNWRITABLE.add((code, suffix))
            if self._writer is None:
                raise ValueError(
                    f"OpenCV cannot write any of the codecs {', '.join(codecs)} to {self.path.name}"
                )
        except BaseException:
            self._file.discard()
            raise

    def write(self, frame: NDArray[Any]) -> None:
        """Append one H×W×3 RGB uint8 frame (of the ``size`` given)."""
        bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
        if any(self._pad):  # odd size: repeat the last row / column (class notes)
            bgr = cv2.copyMakeBorder(bgr, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_REPLICATE)
        self._writer.write(bgr)

    def commit(self) -> None:
        """Finish the file and move it into place."""
        self._writer.release()
        self._writer = None
        self._file.commit()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._writer is not None:  # not committed: drop the temporary file
            self._writer.release()
            self._writer = None
        self._file.discard()


_LOG_LOCK = threading.Lock()


@contextmanager
def _opencv_quiet() -> Iterator[None]:
    """Silence OpenCV's own log lines for a block (restored after; threads in turn).

    Trying a codec OpenCV cannot open (H.264 in the pip wheels) printed "[ERROR] ... Could
    not open codec" lines beside the command's messages, for a fallback that then works.
    """
    logging = cv2.utils.logging
    with _LOG_LOCK:
        level = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
        try:
            yield
        finally:
            logging.setLogLevel(level)


def choose_codecs(source_codec: str, output: StrPath) -> list[str]:
    """Return the FourCCs :class:`VideoWriter` tries for ``output``, best first.

    The source's codec comes first, normalised for the container (MPEG-4 Part 2 as
    ``mp4v`` in .mp4/.m4v/.mov, H.264 as ``avc1``; an AVI's own tag such as ``XVID`` as
    stored), then the container's defaults from ``VIDEO_CODECS``.

    Parameters
    ----------
    source_codec : str
        FourCC of the input (empty when unknown).
    output : str or path-like
        The output clip; its suffix must be a key of ``VIDEO_CODECS``.

    Returns
    -------
    list of str
        FourCCs in the order tried.

    Raises
    ------
    ValueError
        If the suffix is not a key of ``VIDEO_CODECS``.
    """
    suffix = Path(output).suffix.lower()
    if suffix not in VIDEO_CODECS:
        raise ValueError(f"output must end with one of {', '.join(VIDEO_CODECS)}, got {output}")
    return _codec_candidates(source_codec, suffix)
