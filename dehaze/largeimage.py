"""Large TIFF/BigTIFF files dehazed from file to file, one tile in memory at a time.

:class:`TiffSource` reads a TIFF or BigTIFF (uint8/uint16, RGB or gray, optionally with an
alpha channel; tiled or striped; uncompressed, Deflate or LZMA) without loading
the whole image: ``source[y0:y1, x0:x1]`` decodes only the strips or tiles that the region
touches (uncompressed strips, of any size, in blocks of just the rows needed: the file
offset of a row is known without decoding). :func:`write_tiled_tiff` writes a tiled TIFF
from an iterator of tiles in row-major order through the project's atomic writer (a
``.part`` file beside the target, then linked into place; never replacing a file without
``overwrite``).
:func:`dehaze_file_tiled` joins them with :mod:`dehaze.tiles`: the scene is estimated
exactly over the whole image one tile at a time, then each output tile is computed from
its input tile plus the method's halo and written at once.

The halo rule: an output tile depends on the input tile grown by the method's halo on
every side (clipped at the image border), so the result equals ``method(image)`` on the
whole image, bit for bit for integer images.
"""

from __future__ import annotations

import contextlib
import lzma
import math
import os
import queue
import shutil
import struct
import sys
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dehaze._files import AtomicFile
from dehaze._parallel import current_threads
from dehaze.io import PREMULTIPLIED_REFUSAL, merge_alpha, tiff_full_size_pages
from dehaze.result import Method

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "MAX_EXPANSION",
    "MAX_SEGMENT_BYTES",
    "ROW_BLOCK_BYTES",
    "TIFF_SUFFIXES",
    "TIFF_TILE_GRID",
    "TiffSource",
    "check_expansion",
    "dehaze_file_tiled",
    "tiff_pixels",
    "write_tiled_tiff",
]

StrPath = str | os.PathLike[str]

#: File suffixes read by :class:`TiffSource` (and taken by the command line's tiled path).
TIFF_SUFFIXES = (".tif", ".tiff")
#: Largest decoded strip or tile accepted (bytes): a file declaring bigger segments (a
#: crafted header, or a whole compressed image in one strip) is refused before anything
#: is allocated for it.
MAX_SEGMENT_BYTES = 256 * 2**20
#: Decoded strips/tiles kept for reuse by :class:`TiffSource` (bytes); neighbouring
#: output tiles read overlapping input regions (the halo) and striped files share strips
#: between all tiles of a row.
DEFAULT_CACHE_BYTES = 256 * 2**20
#: Bytes of uncompressed strips read at once (whole rows): uncompressed strips of any
#: size, even one strip for the whole image, are read in blocks of rows this large.
ROW_BLOCK_BYTES = 4 * 2**20
#: Largest ratio of a TIFF's declared (uncompressed) sample bytes to its file size that
#: :func:`check_expansion` accepts. Deflate cannot pack more than about 1032:1, so only
#: empty (sparse) strips or tiles, which are read as zeros, or extreme codecs (LZMA on a
#: flat image) get past it: a 131 kB file declaring 65535×65535 empty tiles made a 12.9 GB
#: output in 15 s.
MAX_EXPANSION = 1000
#: TIFF tiles must have sides that are multiples of 16 (TIFF 6.0, section 15).
TIFF_TILE_GRID = 16

# TIFF tags and values used below (TIFF 6.0)
_MINISBLACK, _RGB = 1, 2
_CONTIG, _SEPARATE = 1, 2
_UNSPECIFIED_ALPHA, _ASSOCIATED_ALPHA, _UNASSOCIATED_ALPHA = 0, 1, 2
_NONE, _DEFLATE, _ADOBE_DEFLATE, _LZMA = 1, 8, 32946, 34925
_COMPRESSIONS = {_NONE: "none", _DEFLATE: "Deflate", _ADOBE_DEFLATE: "Deflate", _LZMA: "LZMA"}
_ORIENTATION_TAG = 274
#: Whether the file is read with ``pread``/``preadv`` (no shared file offset: reads from
#: several threads need no lock); elsewhere a seek and a read under the source's lock.
_PREAD = hasattr(os, "pread") and hasattr(os, "preadv")
#: What :meth:`TiffSource._segment` returns for a segment another thread is decoding.
_BUSY = object()


@dataclass(frozen=True)
class _Layout:
    """Where the pixels of a page are: segment grid, sizes and byte ranges."""

    height: int  # stored (not oriented) size
    width: int
    samples: int
    planar: int
    tiled: bool
    segment_rows: int  # tile length, or rows per strip
    segment_cols: int  # tile width, or the image width
    offsets: NDArray[np.int64]
    counts: NDArray[np.int64]

    @property
    def rows_of_segments(self) -> int:
        return math.ceil(self.height / self.segment_rows)

    @property
    def cols_of_segments(self) -> int:
        return math.ceil(self.width / self.segment_cols)

    @property
    def per_plane(self) -> int:
        return self.rows_of_segments * self.cols_of_segments

    @property
    def planes(self) -> int:
        return self.samples if self.planar == _SEPARATE else 1

    @property
    def segment_samples(self) -> int:
        return 1 if self.planar == _SEPARATE else self.samples


def tiff_pixels(path: StrPath) -> int | None:
    """Return width × height of a TIFF file's first image from its header, None if unreadable.

    Only the header is read (no pixel is decoded), so this is cheap for any file size.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    int or None
        The pixel count, or None when the file is not a readable TIFF.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            if not isinstance(page, tifffile.TiffPage):  # pragma: no cover
                return None
            return int(page.imagelength) * int(page.imagewidth)
    except Exception:  # not a TIFF, or a damaged one: the normal reader reports it
        return None


def check_expansion(
    path: StrPath,
    *,
    max_ratio: float | None = None,
    remedy: str = "pass a larger max_ratio to read it anyway",
) -> None:
    """Refuse a TIFF whose declared pixels are far more than its file could hold.

    The uncompressed size of the samples the header declares (width × height × samples
    × bytes per sample) is compared with the file's size; only the header is read. A
    file that is mostly empty (sparse) strips or tiles, read as zeros, or a decompression
    bomb would otherwise make :func:`dehaze_file_tiled` write (and compute) an output
    thousands of times larger than the input. :func:`dehaze_file_tiled` does not call
    this: a program that dehazes files it does not trust calls it first, as the
    ``dehaze`` command does unless ``--max-pixels`` is given.

    Parameters
    ----------
    path : str or path-like
        The TIFF file (see :class:`TiffSource` for what is read).
    max_ratio : float, optional
        Largest accepted ratio of declared bytes to file bytes (default
        :data:`MAX_EXPANSION`).
    remedy : str, optional
        What the error message tells the user to do to process the file anyway.

    Raises
    ------
    ValueError
        If the declared bytes exceed ``max_ratio`` times the file's size (the message
        states the declared size, the file's size and the ratio), or the file cannot be
        read (see :class:`TiffSource`).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.tif"
    >>> tifffile.imwrite(path, np.zeros((256, 256), np.uint8), compression="zlib")
    >>> check_expansion(path)  # 64 kB of zeros in about 0.3 kB: accepted
    >>> check_expansion(path, max_ratio=10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...: declares 256×256 pixels (0.1 megapixels, 65,536 bytes of samples) ...
    """
    limit = MAX_EXPANSION if max_ratio is None else max_ratio
    with TiffSource(path, cache_bytes=0) as source:
        shape, itemsize = source.shape, source.dtype.itemsize
    height, width = shape[:2]
    declared = math.prod(shape) * itemsize
    size = Path(path).stat().st_size
    ratio = declared / max(size, 1)
    if ratio > limit:
        raise ValueError(
            f"{path}: declares {width}×{height} pixels ({width * height / 1e6:.1f} megapixels, "
            f"{declared:,} bytes of samples) in a file of {size:,} bytes, {ratio:,.0f} times "
            f"its size (more than {limit:g} times): it looks like a decompression bomb or a "
            f"mostly empty (sparse) file; {remedy}"
        )


#: Bytes a cache entry costs beyond its pixels (the array object, its buffer, the ordered
#: dict's slot): a file of 1×1-pixel tiles cached a million 1-byte segments as "1 MB" in
#: about 550 MB of memory (an entry costs 400–600 bytes).
_CACHE_ENTRY_BYTES = 512


def _cached_size(segment: NDArray[Any] | None) -> int:
    """Return what a decoded segment (None: an empty one) costs the cache's budget."""
    return _CACHE_ENTRY_BYTES + (0 if segment is None else segment.nbytes)


def _upright(block: NDArray[Any], orientation: int) -> NDArray[Any]:
    """Apply a TIFF/EXIF orientation (1–8) to a stored H×W×C block (a view, no copy).

    The same transform as Pillow's ``exif_transpose`` and :func:`dehaze.io.imread`; here
    on a block whose stored rows and columns :meth:`TiffSource._stored_region` mapped.
    """
    if orientation in (5, 6, 7, 8):
        block = np.swapaxes(block, 0, 1)  # upright rows are stored columns
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]  # then the flips of 1–4
    if orientation == 2:
        return block[:, ::-1]
    if orientation == 3:
        return block[::-1, ::-1]
    if orientation == 4:
        return block[::-1]
    return block


def _name(value: Any) -> str:
    """Return the name of a tifffile enum value (a plain int for values it does not know)."""
    return str(getattr(value, "name", value))


class TiffSource:
    """A TIFF or BigTIFF file read region by region, without loading the whole image.

    ``source[y0:y1, x0:x1]`` (steps of 1 only) returns the pixels of that region as a new
    C-contiguous array in native byte order, decoding only the strips or tiles it touches;
    decoded segments are kept in a small cache (``cache_bytes``) because neighbouring
    tiles overlap by their halo. The image is the one a viewer shows: the TIFF
    orientation tag is applied (rows and columns of the stored image are mapped, nothing
    is decoded twice). Regions may be read from several threads at once.

    Parameters
    ----------
    path : str or path-like
        A TIFF or BigTIFF file holding one image (reduced-resolution pages of a pyramid
        after it are ignored).
    cache_bytes : int, optional
        Bytes of decoded strips/tiles kept for reuse (default ``DEFAULT_CACHE_BYTES``);
        0 keeps none.

    Attributes
    ----------
    shape : tuple of int
        (H, W) gray, (H, W, 3) RGB, (H, W, 2) gray+alpha or (H, W, 4) RGBA, upright.
    dtype : numpy.dtype
        uint8 or uint16 (native byte order).
    has_alpha : bool
        Whether the last channel is an (unassociated) alpha channel.
    extrasample : int or None
        The TIFF ExtraSamples value of the alpha channel (0 unspecified, 2 unassociated),
        None without alpha.
    disjoint_reads : bool
        Set it to True while the regions read do not overlap (tiles without a halo;
        default False): every pixel is then read once, so a strip or tile is dropped from
        the cache as soon as all of its pixels have been read, and one that a region
        covers whole is not cached at all. The cache then holds only the segments cut by
        regions read so far, waiting for their neighbours, instead of filling up with
        segments never read again (reading the 2.7 GB bench file in aligned 1024-px tiles
        took twice the CPU time with them kept: fresh memory and cache misses). Setting
        it starts a new count.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a TIFF, or holds something this reader does not decode (the
        message names the file and the property): several full-size pages, a sample type
        other than unsigned 8/16-bit, a photometric interpretation other than gray
        (MinIsBlack) or RGB, premultiplied (associated) alpha or more than one extra
        sample, a compression other than none, Deflate or LZMA (LZW, JPEG and PackBits
        need the ``imagecodecs`` package, which ``dehaze`` does not use), a predictor
        other than horizontal differencing, bit fill order 2, strips or tiles larger than
        ``MAX_SEGMENT_BYTES`` when decoded, or segments beyond the end of the file
        (truncated).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.tif"
    >>> image = np.arange(48 * 40 * 3, dtype=np.uint16).reshape(48, 40, 3)
    >>> tifffile.imwrite(path, image, tile=(16, 16), compression="zlib")
    >>> with TiffSource(path) as source:
    ...     bool(np.array_equal(source[5:30, 7:33], image[5:30, 7:33]))
    True
    """

    def __init__(self, path: StrPath, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        import tifffile

        self.path = Path(path)
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 0:
            raise ValueError(f"cache_bytes must be an integer ≥ 0, got {cache_bytes!r}")
        if not self.path.is_file():
            raise FileNotFoundError(f"no such TIFF file: {self.path}")
        self._cache_limit = cache_bytes
        self._cache: OrderedDict[int, NDArray[Any] | None] = OrderedDict()
        self._cached_bytes = 0
        # reads may come from several threads (the file path's tiles): the cache and the
        # segments being decoded (so that a segment two tiles share is decoded once) are
        # changed under this lock; the file is read with pread, which has no shared offset
        self._lock = threading.Lock()
        self._decoding: dict[int, threading.Event] = {}
        self._disjoint = False
        self._unread: dict[int, int] = {}  # pixels of a segment not read yet (disjoint reads)
        self._file_size = self.path.stat().st_size
        try:
            self._tiff = tifffile.TiffFile(self.path)
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error...
            raise ValueError(f"cannot read {self.path} as a TIFF file ({exc})") from None
        try:
            self._open_page()
            self._raw = open(self.path, "rb")  # noqa: SIM115 - closed by close()
            if hasattr(os, "posix_fadvise"):
                # tiles are read row after row, mostly forward through the file: a larger
                # read-ahead (measured on a 2.7 GB file not in the page cache: 2.2 → 1.3-1.45 s
                # of system time for the whole run)
                os.posix_fadvise(self._raw.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except BaseException:
            self._tiff.close()
            raise

    # --- validation -------------------------------------------------------------------

    def _refuse(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: {what}")

    def _open_page(self) -> None:
        import tifffile

        tiff = self._tiff
        try:
            pages = tiff.pages
            page = pages[0]
            full_size = tiff_full_size_pages(pages)  # the rule dehaze.io.imread follows
        except Exception as exc:
            raise self._refuse(f"cannot read the TIFF structure ({exc})") from None
        if not isinstance(page, tifffile.TiffPage):  # pragma: no cover - the first is a page
            raise self._refuse("has no readable first page")
        if full_size > 1:
            raise self._refuse(
                f"holds {full_size} full-size pages (a multi-page TIFF); only single "
                "images are read: extract the page you want"
            )
        if page.imagedepth != 1:
            raise self._refuse(f"is a volume ({page.imagedepth} planes deep); only 2-D images")
        if page.sampleformat != 1 or page.bitspersample not in (8, 16):
            raise self._refuse(
                f"has {page.bitspersample}-bit samples of format {int(page.sampleformat)} "
                "(1 = unsigned integer); only unsigned 8- and 16-bit images are read"
            )
        if page.fillorder != 1:
            raise self._refuse("uses bit fill order 2 (LSB first), which is not read")
        photometric = int(page.photometric)
        samples = int(page.samplesperpixel)
        extras = tuple(int(e) for e in page.extrasamples)
        colour = {_MINISBLACK: 1, _RGB: 3}.get(photometric)
        if colour is None:
            raise self._refuse(
                f"has photometric interpretation {photometric} ({_name(page.photometric)}); "
                "only gray (MinIsBlack, 1) and RGB (2) are read: convert it first"
            )
        if samples != colour + len(extras):
            raise self._refuse(
                f"has {samples} samples per pixel for {_name(page.photometric)} with "
                f"{len(extras)} extra samples; expected {colour + len(extras)}"
            )
        if len(extras) > 1:
            raise self._refuse(
                f"has {len(extras)} extra samples {extras}; only one alpha channel is carried"
            )
        if extras and extras[0] == _ASSOCIATED_ALPHA:
            raise self._refuse(PREMULTIPLIED_REFUSAL)
        if extras and extras[0] not in (_UNSPECIFIED_ALPHA, _UNASSOCIATED_ALPHA):
            raise self._refuse(f"has an extra sample of unknown kind {extras[0]}")
        self.has_alpha = bool(extras)
        self.extrasample: int | None = extras[0] if extras else None
        compression = int(page.compression)
        if compression not in _COMPRESSIONS:
            raise self._refuse(
                f"is compressed with {_name(page.compression)} ({compression}); only none, "
                "Deflate (zlib) and LZMA are decoded here (LZW, JPEG and PackBits would "
                "need the imagecodecs package): convert it, e.g. with `tiffcp -c zip`"
            )
        self._compression = compression
        predictor = int(page.predictor)
        if predictor not in (1, 2) or (predictor == 2 and compression == _NONE):
            raise self._refuse(
                f"uses predictor {predictor}; only none (1) and horizontal differencing (2) "
                "with compression are read"
            )
        self._predictor = predictor
        orientation_tag = page.tags.get(_ORIENTATION_TAG)
        orientation = 1 if orientation_tag is None else int(orientation_tag.value)
        if not 1 <= orientation <= 8:
            raise self._refuse(f"has an invalid orientation tag {orientation} (expected 1–8)")
        self.orientation = orientation
        if page.dtype is None:  # pragma: no cover - excluded by the sample checks above
            raise self._refuse("has a sample type tifffile cannot map to a NumPy dtype")
        self._stored_dtype = np.dtype(tiff.byteorder + page.dtype.char)
        self.dtype: np.dtype[Any] = self._stored_dtype.newbyteorder("=")
        self._layout = self._read_layout(page, samples)
        self._page = page
        height, width = self._layout.height, self._layout.width
        if orientation >= 5:
            height, width = width, height
        self.shape: tuple[int, ...] = (height, width) if samples == 1 else (height, width, samples)
        layout = self._layout
        self._row_bytes = layout.width * layout.samples * self._stored_dtype.itemsize
        self._block_rows = max(1, ROW_BLOCK_BYTES // self._row_bytes)

    def _read_layout(self, page: Any, samples: int) -> _Layout:
        height, width = int(page.imagelength), int(page.imagewidth)
        if height < 1 or width < 1:
            raise self._refuse(f"declares an empty image ({width}×{height})")
        planar = int(page.planarconfig)
        if planar not in (_CONTIG, _SEPARATE):
            raise self._refuse(f"has an unknown planar configuration {planar}")
        if page.is_tiled:
            rows, cols = int(page.tilelength), int(page.tilewidth)
        else:
            rows, cols = min(int(page.rowsperstrip), height), width
        if rows < 1 or cols < 1:
            raise self._refuse(f"declares empty strips or tiles ({cols}×{rows})")
        per_segment = samples if planar == _CONTIG else 1
        segment_bytes = rows * cols * per_segment * self._stored_dtype.itemsize
        # uncompressed strips are read in blocks of rows: only a row must fit
        self._row_blocks = self._compression == _NONE and not page.is_tiled and planar == _CONTIG
        decoded = cols * per_segment * self._stored_dtype.itemsize if self._row_blocks else 0
        if max(decoded, 0 if self._row_blocks else segment_bytes) > MAX_SEGMENT_BYTES:
            kind = "tiles" if page.is_tiled else "strips"
            raise self._refuse(
                f"has {kind} of {cols}×{rows} pixels ({segment_bytes / 2**20:.0f} MiB decoded), "
                f"more than the {MAX_SEGMENT_BYTES // 2**20} MiB read at once; write it as a "
                "tiled TIFF (e.g. 512×512 tiles) first"
            )
        # checked as the unsigned values TIFF stores first: a BigTIFF offset or count near
        # 2**64 does not fit an int64 (OverflowError), and one near 2**63 wrapped the end
        # check below; within the file's size they fit, and their sums cannot overflow
        offsets = np.asarray(page.dataoffsets, dtype=np.uint64)
        counts = np.asarray(page.databytecounts, dtype=np.uint64)
        beyond = np.concatenate([offsets, counts])
        beyond = beyond[beyond > self._file_size]
        if beyond.size:
            raise self._refuse(
                f"has a data offset or byte count of {int(beyond[0])}, beyond its "
                f"{self._file_size}-byte file (corrupt header or truncated file)"
            )
        layout = _Layout(
            height,
            width,
            samples,
            planar,
            bool(page.is_tiled),
            rows,
            cols,
            offsets.astype(np.int64),
            counts.astype(np.int64),
        )
        expected = layout.per_plane * layout.planes
        if layout.offsets.size != expected or layout.counts.size != expected:
            raise self._refuse(
                f"lists {layout.offsets.size} data offsets and {layout.counts.size} byte "
                f"counts for an image of {expected} strips/tiles (corrupt header)"
            )
        ends = layout.offsets + layout.counts
        if ends.size and int(ends.max()) > self._file_size:
            raise self._refuse(
                f"is truncated: its image data reaches byte {int(ends.max())} of a "
                f"{self._file_size}-byte file"
            )
        limit = 2 * segment_bytes + 4096  # no valid compressed segment is twice as big
        if int(layout.counts.max(initial=0)) > limit:
            raise self._refuse("declares a strip or tile larger than its pixels could need")
        if self._compression == _NONE:
            short = self._short_uncompressed(layout, segment_bytes)
            if short is not None:
                raise self._refuse(
                    f"is truncated or corrupt: uncompressed strip/tile {short} holds fewer "
                    "bytes than its pixels need"
                )
        return layout

    def _short_uncompressed(self, layout: _Layout, segment_bytes: int) -> int | None:
        """Index of the first non-empty uncompressed segment shorter than its pixels."""
        need = np.full(layout.counts.shape, segment_bytes, dtype=np.int64)
        if not layout.tiled:  # the last strip of each plane may be shorter
            last_rows = layout.height - (layout.rows_of_segments - 1) * layout.segment_rows
            row_bytes = segment_bytes // layout.segment_rows
            need[layout.per_plane - 1 :: layout.per_plane] = last_rows * row_bytes
        short = np.flatnonzero((layout.counts > 0) & (layout.counts < need))
        return int(short[0]) if short.size else None

    # --- the ImageSource protocol -------------------------------------------------------

    @property
    def ndim(self) -> int:
        """Number of dimensions of :attr:`shape`."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> NDArray[Any]:
        """Return the region ``[y0:y1, x0:x1]`` (slices with step 1) of the upright image."""
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 2 or not all(isinstance(k, slice) for k in key):
            raise TypeError(
                f"{type(self).__name__} takes [y0:y1] or [y0:y1, x0:x1] slices, got {key!r}"
            )
        key = key + (slice(None),) * (2 - len(key))
        (y0, y1, ystep), (x0, x1, xstep) = (
            k.indices(n) for k, n in zip(key, self.shape[:2], strict=True)
        )
        if ystep != 1 or xstep != 1:
            raise ValueError(f"{type(self).__name__} reads slices with step 1 only, got {key!r}")
        y1, x1 = max(y1, y0), max(x1, x0)
        rows, cols = self._stored_region(y0, y1, x0, x1)
        block = self._read_stored(*rows, *cols)
        upright = _upright(block, self.orientation)
        out = np.ascontiguousarray(upright)
        return out[:, :, 0] if out.ndim == 3 and self.shape[2:] == () else out

    def _stored_region(
        self, y0: int, y1: int, x0: int, x1: int
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """Map an upright region to the stored rows and columns it comes from."""
        h, w = self._layout.height, self._layout.width
        o = self.orientation
        flip_rows = o in (3, 4, 6, 7)  # stored rows read backwards
        flip_cols = o in (2, 3, 7, 8)
        if o >= 5:  # transposed: upright rows are stored columns
            r, c = (x0, x1), (y0, y1)
        else:
            r, c = (y0, y1), (x0, x1)
        if flip_rows:
            r = (h - r[1], h - r[0])
        if flip_cols:
            c = (w - c[1], w - c[0])
        return r, c

    # --- decoding -----------------------------------------------------------------------

    def _read_stored(self, y0: int, y1: int, x0: int, x1: int) -> NDArray[Any]:
        """Return stored pixels [y0:y1, x0:x1] as an (h, w, samples) native-order array."""
        layout = self._layout
        out = np.empty((y1 - y0, x1 - x0, layout.samples), dtype=self.dtype)
        if out.size == 0:
            return out
        if self._row_blocks:  # blocks of whole rows (uncompressed strips): a 1-wide grid
            rows, cols, across, per_plane = self._block_rows, layout.width, 1, 0
        else:
            rows, cols = layout.segment_rows, layout.segment_cols
            across, per_plane = layout.cols_of_segments, layout.per_plane
        # (plane, index, top, left) of every segment the region touches; one another thread
        # is decoding is left for later, so threads reading the same band of strips (the
        # tiles of a row, at once) decode different segments instead of waiting in turn
        waiting = []
        disjoint = self._disjoint
        for plane in range(layout.planes):
            for sy in range(y0 // rows, (y1 - 1) // rows + 1):
                for sx in range(x0 // cols, (x1 - 1) // cols + 1):
                    index = plane * per_plane + sy * across + sx
                    piece = (plane, index, sy * rows, sx * cols)
                    if not self._copy_segment(out, piece, (y0, y1, x0, x1), disjoint, False):
                        waiting.append(piece)
        for piece in waiting:
            self._copy_segment(out, piece, (y0, y1, x0, x1), disjoint, True)
        return out

    def _copy_segment(
        self,
        out: NDArray[Any],
        piece: tuple[int, int, int, int],
        region: tuple[int, int, int, int],
        disjoint: bool,
        wait: bool,
    ) -> bool:
        """Copy the part of a segment inside ``region`` into ``out``; False if it must wait.

        ``piece`` is (plane, segment index, first stored row, first stored column).
        """
        layout = self._layout
        plane, index, top, left = piece
        y0, y1, x0, x1 = region
        rows, cols = (
            (self._block_rows, layout.width)
            if self._row_blocks
            else (layout.segment_rows, layout.segment_cols)
        )
        a0, a1 = max(y0, top), min(y1, top + rows)
        b0, b1 = max(x0, left), min(x1, left + cols)
        bottom, right = min(layout.height, top + rows), min(layout.width, left + cols)
        area, part = (bottom - top) * (right - left), (a1 - a0) * (b1 - b0)
        found = self._segment(index, keep=not disjoint or part < area, wait=wait)
        if found is _BUSY:
            return False
        channels = slice(plane, plane + 1) if layout.planar == _SEPARATE else slice(None)
        target = out[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0, channels]
        if found is None:
            target[...] = 0  # an empty (sparse) segment: zeros, as tifffile reads it
        else:
            target[...] = found[a0 - top : a1 - top, b0 - left : b1 - left]
        if disjoint and part < area:
            self._count_read(index, area, part)
        return True

    def _read_rows(self, block: int) -> NDArray[Any]:
        """Return rows block·R:(block + 1)·R of uncompressed strips as (rows, W, samples).

        The rows are read straight from the file (a strip is stored row after row), so a
        strip of any size, even one for the whole image, costs no more than these rows.
        """
        layout, row_bytes = self._layout, self._row_bytes
        r0 = block * self._block_rows
        r1 = min(layout.height, r0 + self._block_rows)
        buffer = np.empty((r1 - r0) * row_bytes, dtype=np.uint8)  # not zeroed: all read
        strip_rows = layout.segment_rows
        for strip in range(r0 // strip_rows, (r1 - 1) // strip_rows + 1):
            top = strip * strip_rows
            a0, a1 = max(r0, top), min(r1, top + strip_rows)
            part = buffer[(a0 - r0) * row_bytes : (a1 - r0) * row_bytes]
            if layout.counts[strip] == 0:
                part[...] = 0  # an empty (sparse) strip: zeros, as tifffile reads it
                continue
            if self._read_into(part.data, int(layout.offsets[strip]) + (a0 - top) * row_bytes):
                raise self._refuse(f"is truncated: strip {strip} ends past the end of the file")
        rows = buffer.view(self._stored_dtype).reshape(r1 - r0, layout.width, layout.samples)
        return rows if rows.dtype.isnative else rows.astype(self.dtype)

    def _segment(self, index: int, *, keep: bool = True, wait: bool = True) -> Any:
        """Return strip or tile ``index`` decoded as (rows, cols, samples), through the cache.

        A segment decoded here is kept in the cache if ``keep`` (and it fits). Thread-safe:
        a segment another thread is decoding is waited for, not decoded twice; without
        ``wait``, :data:`_BUSY` is returned instead. None for an empty (sparse) segment.
        """
        while True:
            with self._lock:
                if index in self._cache:
                    self._cache.move_to_end(index)
                    return self._cache[index]
                busy = self._decoding.get(index)
                if busy is None:
                    done = self._decoding[index] = threading.Event()
                    break
            if not wait:
                return _BUSY
            busy.wait()  # then from the cache (or, evicted or failed, decoded here)
        try:
            segment = self._read_rows(index) if self._row_blocks else self._decode(index)
            size = _cached_size(segment)
            with self._lock:
                if keep and size <= self._cache_limit:
                    self._cache[index] = segment
                    self._cached_bytes += size
                    while self._cached_bytes > self._cache_limit:
                        _, dropped = self._cache.popitem(last=False)
                        self._cached_bytes -= _cached_size(dropped)
        finally:
            with self._lock:
                del self._decoding[index]
            done.set()
        return segment

    @property
    def disjoint_reads(self) -> bool:
        """Whether the regions read do not overlap (see the class's attributes)."""
        return self._disjoint

    @disjoint_reads.setter
    def disjoint_reads(self, value: bool) -> None:
        with self._lock:
            self._disjoint = bool(value)
            self._unread.clear()

    def _count_read(self, index: int, area: int, part: int) -> None:
        """Count ``part`` pixels of segment ``index`` read; drop it once all ``area`` are."""
        with self._lock:
            left = self._unread.get(index, area) - part
            if left > 0:
                self._unread[index] = left
                return
            self._unread.pop(index, None)
            if index in self._cache:
                self._cached_bytes -= _cached_size(self._cache.pop(index))

    def _read_at(self, offset: int, count: int) -> bytes:
        """Return ``count`` bytes of the file from ``offset`` (fewer at its end); thread-safe."""
        if _PREAD:
            parts = []
            while count > 0:
                part = os.pread(self._raw.fileno(), count, offset)
                if not part:
                    break
                parts.append(part)
                count -= len(part)
                offset += len(part)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        with self._lock:  # pragma: no cover - not on POSIX
            self._raw.seek(offset)
            return self._raw.read(count)

    def _read_into(self, target: memoryview, offset: int) -> bool:
        """Fill ``target`` from the file at ``offset``; return whether the file was too short."""
        if _PREAD:
            done = 0
            while done < len(target):
                got = os.preadv(self._raw.fileno(), [target[done:]], offset + done)
                if got == 0:
                    return True
                done += got
            return False
        with self._lock:  # pragma: no cover - not on POSIX
            self._raw.seek(offset)
            return self._raw.readinto(target) != len(target)

    def _segment_shape(self, index: int) -> tuple[int, int, int]:
        """Return the (rows, cols, samples) of segment ``index`` (the last strip is shorter)."""
        layout = self._layout
        rows = layout.segment_rows
        if not layout.tiled:
            sy = index % layout.per_plane
            rows = min(rows, layout.height - sy * rows)
        else:  # an edge tile's rows below the image are padding: never decoded (a 1×1
            # image in one 16000×16000 tile would otherwise inflate 256 MB of it)
            across = -(-layout.width // layout.segment_cols)
            ty = (index % layout.per_plane) // across
            rows = min(rows, layout.height - ty * rows)
        return rows, layout.segment_cols, layout.segment_samples

    def _decode(self, index: int) -> NDArray[Any] | None:
        layout = self._layout
        count = int(layout.counts[index])
        if count == 0:
            return None
        data = self._read_at(int(layout.offsets[index]), count)
        if len(data) != count:
            raise self._refuse(f"is truncated: strip/tile {index} ends past the end of the file")
        shape = self._segment_shape(index)
        size = math.prod(shape)
        nbytes = size * self._stored_dtype.itemsize
        if self._compression == _NONE:
            raw: bytes = data[:nbytes]
        elif self._compression in (_DEFLATE, _ADOBE_DEFLATE):
            raw = self._inflate(zlib.decompressobj(), data, nbytes, index)
        else:
            raw = self._inflate(lzma.LZMADecompressor(), data, nbytes, index)
        if len(raw) < nbytes:
            raise self._refuse(
                f"strip/tile {index} decodes to {len(raw)} bytes, fewer than its "
                f"{nbytes} (corrupt or truncated data)"
            )
        segment = np.frombuffer(raw, dtype=self._stored_dtype, count=size).reshape(shape)
        if self._predictor == 2:  # horizontal differencing: a running sum along each row
            segment = np.cumsum(segment, axis=1, dtype=self._stored_dtype)
        # a read-only view of the bytes read when the byte order is native: only copied out
        return segment if segment.dtype.isnative else segment.astype(self.dtype)

    def _inflate(self, decoder: Any, data: bytes, nbytes: int, index: int) -> bytes:
        """Decompress at most ``nbytes`` (a crafted stream cannot allocate more)."""
        try:
            raw: bytes = decoder.decompress(data, nbytes)
        except (zlib.error, lzma.LZMAError) as exc:
            raise self._refuse(f"strip/tile {index} cannot be decompressed ({exc})") from None
        return raw

    # --- views and lifetime -------------------------------------------------------------

    @property
    def color(self) -> _Channels:
        """The colour (or gray) part: (H, W, 3) or (H, W), without the alpha channel."""
        channels = self.shape[2] if len(self.shape) == 3 else 1
        colour = channels - 1 if self.has_alpha else channels
        return _Channels(self, slice(0, 3) if colour == 3 else 0)

    @property
    def alpha(self) -> _Channels | None:
        """The alpha channel as an (H, W) source, or None."""
        return _Channels(self, self.shape[2] - 1) if self.has_alpha else None

    def close(self) -> None:
        """Close the file and drop the cache."""
        self._cache.clear()
        self._cached_bytes = 0
        self._tiff.close()
        self._raw.close()

    def __enter__(self) -> TiffSource:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TiffSource({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


class _Channels:
    """Some channels of a :class:`TiffSource`, itself an image source."""

    def __init__(self, source: TiffSource, channels: slice | int) -> None:
        self.source = source
        self.channels = channels
        picked = np.empty(source.shape[2:], dtype=np.uint8)[channels] if source.ndim == 3 else None
        extra = () if picked is None else picked.shape
        self.shape: tuple[int, ...] = (*source.shape[:2], *extra)
        self.dtype = source.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> NDArray[Any]:
        block = self.source[key]
        if block.ndim == 2:
            return block
        return np.ascontiguousarray(block[:, :, self.channels])


# --- writing --------------------------------------------------------------------------


def write_tiled_tiff(
    path: StrPath,
    tiles: Iterable[NDArray[Any]],
    *,
    shape: tuple[int, ...],
    dtype: Any,
    tile: int | tuple[int, int],
    extrasample: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
) -> Path:
    """Write a tiled TIFF (BigTIFF above 2 GiB) from tiles given in row-major order.

    Parameters
    ----------
    path : str or path-like
        The file to write. It appears complete or not at all: the data goes to a
        temporary ``.NAME.XXXXXXXX.part.tif`` beside it, linked into place at the end.
    tiles : iterable of ndarray
        The tiles, row by row, each of the ``tile`` size (edge tiles may be smaller;
        they are zero-padded in the file as TIFF requires and cropped by readers).
        Consumed lazily: only the tiles of one write are held (uncompressed: copies of
        about ``WRITE_BATCH_BYTES``).
    shape : tuple of int
        (H, W) gray, (H, W, 3) RGB, (H, W, 2) gray+alpha or (H, W, 4) RGBA.
    dtype : dtype
        uint8 or uint16.
    tile : int or (int, int)
        Tile side, or (rows, columns) of a rectangular tile: positive multiples of 16
        (``TIFF_TILE_GRID``). Every tile takes this much room in the file, edge tiles
        too: a tile much larger than the image makes the file (and the writer's buffers)
        that much larger, so :func:`dehaze_file_tiled` caps it to the image.
    extrasample : int, optional
        TIFF ExtraSamples value of the alpha channel (0 unspecified, 2 unassociated,
        default 2) for shapes with an alpha channel.
    overwrite : bool, optional
        Replace an existing file (default False: FileExistsError).
    compression : {None, "zlib"}, optional
        None (default, fastest) or Deflate. Uncompressed tiles are written at offsets
        aligned to ``DIRECT_ALIGN`` bytes, with direct I/O where the file system allows it
        (:data:`USE_DIRECT_IO`), so a large output does not go through the page cache.

    Returns
    -------
    Path
        The written path.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the shape, dtype, tile or compression is not one of the accepted values, or
        the tiles do not match the shape (the temporary file is removed).
    """
    import tifffile

    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    kind = np.dtype(dtype)
    if kind not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise ValueError(f"dtype must be uint8 or uint16, got {kind}")
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (2, 3, 4)):
        raise ValueError(f"shape must be (H, W) or (H, W, C) with C in 2–4, got {shape}")
    if min(shape[:2]) < 1:
        raise ValueError(f"shape must have a positive height and width, got {shape}")
    sides = tile if isinstance(tile, tuple) else (tile, tile)
    if len(sides) != 2 or not all(_is_tile_side(side) for side in sides):
        raise ValueError(
            f"tile must be a positive multiple of {TIFF_TILE_GRID} or a (rows, columns) pair "
            f"of them, got {tile!r}"
        )
    tile_rows, tile_cols = sides
    if compression not in (None, "zlib"):
        raise ValueError(f"compression must be None or 'zlib', got {compression!r}")
    channels = shape[2] if len(shape) == 3 else 1
    photometric = "rgb" if channels >= 3 else "minisblack"
    extras = [2 if extrasample is None else extrasample] if channels in (2, 4) else None
    nbytes = math.prod(shape) * kind.itemsize
    across = math.ceil(shape[1] / tile_cols)
    expected = math.ceil(shape[0] / tile_rows) * across
    tile_shape = (tile_rows, tile_cols) + tuple(shape[2:])

    def checked() -> Iterator[NDArray[Any]]:
        count = 0
        for block in tiles:
            block = np.asarray(block)
            row, col = divmod(count, across)
            want = (
                min(tile_rows, shape[0] - row * tile_rows),
                min(tile_cols, shape[1] - col * tile_cols),
                *shape[2:],
            )
            if block.shape != want or block.dtype != kind:
                raise ValueError(
                    f"tile {count} has shape {block.shape} and dtype {block.dtype}; expected "
                    f"{want} and {kind}"
                )
            if block.shape != tile_shape:
                padded = np.zeros(tile_shape, dtype=kind)
                padded[: want[0], : want[1]] = block
                block = padded
            count += 1
            yield block
        if count != expected:
            raise ValueError(f"got {count} tiles; expected {expected}")

    with AtomicFile(target, overwrite=overwrite, suffix=".tif") as tmp:
        if compression is None:  # the tiles at known offsets: written without a copy
            # the padded edge tiles count too: 32-bit offsets must reach the last one
            padded = expected * math.prod(tile_shape) * kind.itemsize
            big = max(nbytes, padded) > 2**31
            layout = _UncompressedTiles(shape, kind, (tile_rows, tile_cols), extras, bigtiff=big)
            layout.write(tmp.name, checked())
            return target
        with tifffile.TiffWriter(tmp.name, bigtiff=nbytes > 2**31) as writer:
            writer.write(
                checked(),
                shape=tuple(shape),
                dtype=kind,
                tile=(tile_rows, tile_cols),
                photometric=photometric,
                planarconfig="contig",
                extrasamples=extras,
                compression=compression,
                metadata=None,
            )
    return target


def _is_tile_side(side: Any) -> bool:
    """Whether ``side`` is a valid TIFF tile side: a positive multiple of 16."""
    return (
        not isinstance(side, bool)
        and isinstance(side, int)
        and side >= 1
        and side % TIFF_TILE_GRID == 0
    )


#: Alignment (bytes) of the uncompressed tiles' offsets and of their buffers in memory:
#: direct I/O needs the device's logical block size, which 4096 covers.
DIRECT_ALIGN = 4096
#: Bytes of consecutive uncompressed tiles written at once (direct writes of 3 MB tiles
#: reached 1.6–2.0 GB/s on the bench machine, of 12 MB 2.7–3.3 GB/s).
WRITE_BATCH_BYTES = 16 * 2**20
#: Whether uncompressed tiles are written with direct I/O (``O_DIRECT``) where the file
#: system allows it; otherwise (or when it refuses) through the page cache.
USE_DIRECT_IO = hasattr(os, "O_DIRECT")

# TIFF field types: SHORT, LONG, LONG8 (BigTIFF)
_SHORT, _LONG, _LONG8 = 3, 4, 16


def _aligned_empty(nbytes: int) -> NDArray[np.uint8]:
    """Return ``nbytes`` uninitialised bytes whose address is a multiple of DIRECT_ALIGN."""
    raw = np.empty(nbytes + DIRECT_ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % DIRECT_ALIGN
    return raw[start : start + nbytes]


class _UncompressedTiles:
    """An uncompressed tiled TIFF/BigTIFF written by hand: header, one IFD, then the tiles.

    Every tile (edge tiles zero-padded, as TIFF requires) has the same size, so the IFD
    with every tile's offset is known before any pixel: it is written first, and the tiles
    follow at offsets that are multiples of :data:`DIRECT_ALIGN`. Tiles are copied into
    an aligned buffer and written with ``pwrite`` a few at a time
    (:data:`WRITE_BATCH_BYTES`, by a second thread while the next are copied), with direct
    I/O when the file system allows it (:data:`USE_DIRECT_IO`): a multi-gigabyte output
    then does not go through the page cache, whose copies and write-back cost about 4
    times the CPU time (measured on ext4: 2.5–2.9 s of system time for 2.7 GB, against
    0.6–0.8 s direct).
    Native byte order (II or MM), as the tiles are in memory. Readers (tifffile, OpenCV,
    :class:`TiffSource`) see the same file tifffile would write.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        tile: tuple[int, int],
        extras: list[int] | None,
        *,
        bigtiff: bool,
    ) -> None:
        self.shape = tuple(int(v) for v in shape)
        self.dtype = dtype
        tile_rows, tile_cols = tile
        height, width = self.shape[:2]
        samples = self.shape[2] if len(self.shape) == 3 else 1
        self.tile_shape = (tile_rows, tile_cols, samples)
        self.tile_bytes = tile_rows * tile_cols * samples * dtype.itemsize
        self.count = math.ceil(height / tile_rows) * math.ceil(width / tile_cols)
        order = "<" if sys.byteorder == "little" else ">"
        size = 8 if bigtiff else 4  # offsets and counts
        offset_type = _LONG8 if bigtiff else _LONG
        entry_size = 20 if bigtiff else 12
        fields: list[tuple[int, int, list[int]]] = [
            (256, _LONG, [width]),
            (257, _LONG, [height]),
            (258, _SHORT, [dtype.itemsize * 8] * samples),
            (259, _SHORT, [1]),  # no compression
            (262, _SHORT, [_RGB if samples >= 3 else _MINISBLACK]),
            (277, _SHORT, [samples]),
            (284, _SHORT, [_CONTIG]),
            (322, _LONG, [tile_cols]),  # TileWidth
            (323, _LONG, [tile_rows]),  # TileLength
            (324, offset_type, [0] * self.count),  # filled in below
            (325, offset_type, [self.tile_bytes] * self.count),
        ]
        if extras:
            fields.append((338, _SHORT, list(extras)))
        fields.append((339, _SHORT, [1] * samples))  # unsigned integers
        header_size = 16 if bigtiff else 8
        ifd_size = (8 if bigtiff else 2) + entry_size * len(fields) + size
        item = {_SHORT: 2, _LONG: 4, _LONG8: 8}
        outside = sum(
            item[kind] * len(values)
            for _, kind, values in fields
            if item[kind] * len(values) > size
        )
        end = header_size + ifd_size + outside
        self.data_start = -(-end // DIRECT_ALIGN) * DIRECT_ALIGN
        fields[9] = (
            324,
            offset_type,
            [self.data_start + i * self.tile_bytes for i in range(self.count)],
        )
        code = {_SHORT: "H", _LONG: "I", _LONG8: "Q"}
        head = bytearray()
        if bigtiff:
            head += struct.pack(order + "2sHHHQ", b"II" if order == "<" else b"MM", 43, 8, 0, 16)
            head += struct.pack(order + "Q", len(fields))
        else:
            head += struct.pack(order + "2sHI", b"II" if order == "<" else b"MM", 42, 8)
            head += struct.pack(order + "H", len(fields))
        values_at = header_size + ifd_size
        values = bytearray()
        for tag, kind, items in fields:
            packed = struct.pack(f"{order}{len(items)}{code[kind]}", *items)
            head += struct.pack(order + ("HHQ" if bigtiff else "HHI"), tag, kind, len(items))
            if len(packed) <= size:
                head += packed.ljust(size, b"\0")
            else:
                head += struct.pack(order + ("Q" if bigtiff else "I"), values_at + len(values))
                values += packed
        head += bytes(size)  # no next IFD
        self.header = bytes(head + values)

    def write(self, name: str, tiles: Iterable[NDArray[Any]]) -> None:
        """Write the header and ``count`` tiles (row-major, each at most a tile) to ``name``.

        Consecutive tiles are consecutive in the file: they are copied into one aligned
        buffer of about :data:`WRITE_BATCH_BYTES` (edge tiles zero-padded) and written
        together, by a second thread while the next tiles are copied into a second buffer.
        """
        batch = max(1, min(self.count, WRITE_BATCH_BYTES // self.tile_bytes))
        buffers = [_aligned_empty(batch * self.tile_bytes) for _ in range(2)]
        fd = os.open(name, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_BINARY", 0))
        direct = -1
        writing: Future[None] | None = None  # the write of the other buffer

        def write_batch(buffer: NDArray[np.uint8], first: int, filled: int) -> None:
            nonlocal direct
            data = buffer.data[: filled * self.tile_bytes]  # the aligned bytes, no copy
            offset = self.data_start + first * self.tile_bytes
            if direct >= 0:
                try:
                    _write_all(direct, data, offset)
                    return
                except OSError:  # direct I/O refused after all: the page cache
                    os.close(direct)
                    direct = -1
            _write_all(fd, data, offset)

        def finish_writing() -> None:
            nonlocal writing
            if writing is not None:
                done, writing = writing, None
                done.result()  # its error, if any, raised here

        io = ThreadPoolExecutor(1, thread_name_prefix="dehaze-tiff-io")
        try:
            _write_all(fd, memoryview(self.header), 0)
            if USE_DIRECT_IO and self.tile_bytes % DIRECT_ALIGN == 0:
                try:
                    direct = os.open(name, os.O_WRONLY | os.O_DIRECT)
                except OSError:  # e.g. tmpfs: through the page cache
                    direct = -1
            written = 0
            for block in tiles:
                slots = buffers[(written // batch) % 2].view(self.dtype)
                slot = slots.reshape(batch, *self.tile_shape)[written % batch]
                rows, cols = block.shape[:2]
                if (rows, cols) != self.tile_shape[:2]:
                    slot[...] = 0
                slot[:rows, :cols] = block.reshape(rows, cols, -1)
                written += 1
                filled = written % batch or batch
                if filled == batch or written == self.count:
                    finish_writing()  # the other buffer is free again
                    buffer = buffers[((written - 1) // batch) % 2]
                    writing = io.submit(write_batch, buffer, written - filled, filled)
            finish_writing()
            if written != self.count:  # pragma: no cover - checked() raises first
                raise ValueError(f"got {written} tiles; expected {self.count}")
        finally:
            io.shutdown(wait=True)  # no write in flight when the files are closed
            if direct >= 0:
                os.close(direct)
            os.close(fd)


def _write_all(fd: int, data: memoryview, offset: int) -> None:
    """``pwrite`` all of ``data`` at ``offset`` (a write may be short).

    Where ``os.pwrite`` does not exist (Windows), a seek and writes instead.
    """
    done = 0
    while done < len(data):
        if hasattr(os, "pwrite"):
            done += os.pwrite(fd, data[done:], offset + done)
        else:  # pragma: no cover - not on POSIX
            os.lseek(fd, offset + done, os.SEEK_SET)
            done += os.write(fd, data[done:])


# --- file to file ----------------------------------------------------------------------

#: ``progress(phase, done, total)``: phase is "estimate" (the scene pass over the image)
#: or "dehaze" (the output tiles).
Progress = Callable[[str, int, int], None]


def dehaze_file_tiled(
    method: Method[Any],
    src: StrPath,
    dst: StrPath,
    *,
    tile: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    compression: str | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    compare: Callable[[NDArray[Any], NDArray[Any]], None] | None = None,
) -> Path:
    """Dehaze a TIFF file into a tiled TIFF, holding about one tile per thread.

    The scene (atmospheric light, …; ClearHaze's small working planes) is computed exactly
    over the whole image by :func:`dehaze.tiles.prepare`, reading it tile by tile; then
    every output tile is computed from its input tile grown by the method's halo
    (:func:`dehaze.tiles.apply_tile`) and written at once, in order, by a writer thread.
    The tiles of both passes run on :func:`dehaze.get_num_threads` threads, one tile per
    thread (its kernels on that thread), so at most that many input tiles are in memory
    at once. The result equals ``method(image)`` on the whole image, bit for bit (the
    output dtype is the input's), whatever the thread count. An alpha channel is carried
    through unchanged.

    Parameters
    ----------
    method : Method
        A two-phase method (``estimate``/``apply``/``halo``): every registered one.
    src : str or path-like
        The input TIFF/BigTIFF (see :class:`TiffSource` for what is read).
    dst : str or path-like
        The output TIFF (tiled, uncompressed unless ``compression``; BigTIFF above 2 GiB),
        written atomically.
    tile : int, optional
        Output tile side, a positive multiple of 16 (default: ``dehaze.tiles.DEFAULT_TILE``);
        rounded up to a multiple of the method's alignment (the fast guided filter's
        ``subsample``) when that does not divide it. It is also the written file's tile,
        capped to the image: a side longer than the image's (rounded up to 16) is cut to
        it, so the file and the memory follow the image, not the option (a 96×128 image
        with ``tile=32768`` made a 6.4 GB file of padding). The result is the same.
    overwrite : bool, optional
        Replace an existing ``dst`` (default False: FileExistsError before any work).
    progress : callable, optional
        Called as ``progress(phase, done, total)`` after every tile: phase ``"estimate"``
        while the scene is computed (one pass over the image for ClearHaze, a few for the
        dark-channel methods; ``done`` counts the tiles read, ``total`` is 0: not known in
        advance), then ``"dehaze"`` for the ``total`` output tiles.
    compression : {None, "zlib"}, optional
        Compression of the output.
    cache_bytes : int, optional
        Decoded input strips/tiles kept for reuse (see :class:`TiffSource`).
    compare : callable, optional
        Called as ``compare(before, after)`` for every output tile with its input and
        output colour (or gray) pixels, the same shape and dtype, alpha left out: the
        command line sums the change of the image with it, without a second pass over
        the file. It is called on the tile threads, several at once (it must be
        thread-safe), in no fixed order; it must not change the arrays.

    Returns
    -------
    Path
        ``dst``.

    Raises
    ------
    FileExistsError
        If ``dst`` exists and ``overwrite`` is False.
    ValueError
        If the input cannot be read (see :class:`TiffSource`), ``tile`` is not a positive
        multiple of 16, or the output folder lacks the space for the uncompressed result.
    """
    from dehaze import tiles as _tiles

    side = _tiles.DEFAULT_TILE if tile is None else tile
    if isinstance(side, bool) or not isinstance(side, int) or side < 1 or side % TIFF_TILE_GRID:
        raise ValueError(f"tile must be a positive multiple of {TIFF_TILE_GRID}, got {tile!r}")
    target = Path(dst)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    report = progress if progress is not None else (lambda phase, done, total: None)
    with TiffSource(src, cache_bytes=cache_bytes) as source:
        _check_space(source, target, compression)
        color, alpha = source.color, source.alpha
        height, width = source.shape[:2]
        # no tile larger than the image: the scene passes read no more, the output file
        # (every tile padded to full size) and the writer's buffers hold no padding
        side = min(side, _round_up(max(height, width), TIFF_TILE_GRID))

        threads = current_threads()
        read = [0]  # tiles read by the scene passes so far (tiles hands them over in chunks)

        def mapper(func: Callable[[Any, Any], Any], image: Any, plan: Sequence[Any]) -> list[Any]:
            def one(piece: Any) -> Any:
                return func(piece, _tiles.read_block(image, piece.read))

            # tiles read without a halo do not overlap: each segment is read once
            source.disjoint_reads = all(piece.read == piece.out for piece in plan)
            results = []  # small per-tile statistics; a block per thread in memory
            for result in _tiles.in_order(one, plan, threads):
                results.append(result)
                read[0] += 1
                report("estimate", read[0], 0)
            return results

        # the scene (and ClearHaze's working planes), exactly, one tile at a time
        prepared = _tiles.prepare(method, color, tile=side, mapper=mapper)
        # output tiles on the file's tile grid and on the method's (the fast guided filter)
        step = _round_up(side, math.lcm(TIFF_TILE_GRID, int(prepared.align)))
        plan = _tiles.plan_tiles(source.shape, step, prepared.halo, prepared.align)
        # the file's tile cut to the image along each side, on the same grid: a side
        # capped holds one tile, as the plan does (a 16×100000 image, say, gets 16-row tiles)
        file_tile = (
            min(step, _round_up(height, TIFF_TILE_GRID)),
            min(step, _round_up(width, TIFF_TILE_GRID)),
        )

        def dehazed(piece: Any) -> NDArray[Any]:
            kept = None
            if alpha is None:
                block = _tiles.read_block(color, piece.read)
            else:
                pixels = _tiles.read_block(source, piece.read)  # colour and alpha read once
                block = np.ascontiguousarray(pixels[:, :, color.channels])
                kept = np.ascontiguousarray(pixels[piece.inner][:, :, -1])
                del pixels
            image = _tiles.apply_tile(prepared, block, piece).image
            if compare is not None:
                compare(block[piece.inner], image)
            return image if kept is None else merge_alpha(image, kept)

        source.disjoint_reads = prepared.halo == 0

        def blocks() -> Generator[NDArray[Any], None, None]:
            for number, image in enumerate(_tiles.in_order(dehazed, plan, threads), start=1):
                report("dehaze", number, len(plan))  # computed; written as it is taken
                yield image

        def write(tiles: Iterable[NDArray[Any]]) -> Path:
            return write_tiled_tiff(
                target,
                tiles,
                shape=source.shape,
                dtype=source.dtype,
                tile=file_tile,
                extrasample=source.extrasample,
                overwrite=overwrite,
                compression=compression,
            )

        # closed before the source is: no tile is still being read when it closes
        with contextlib.closing(blocks()) as tiles:
            return _write_behind(write, tiles)


class _Aborted(Exception):
    """Stops the writer thread when the tiles' producer failed."""


#: Output tiles waiting for the writer thread at most.
_WRITE_QUEUE = 2


def _write_behind(write: Callable[[Iterable[NDArray[Any]]], Path], tiles: Iterator[Any]) -> Path:
    """Run ``write`` on ``tiles`` in a thread while this thread takes the next tiles.

    Writing (a copy into an aligned buffer and a direct write) then overlaps the
    computation of the next tiles instead of adding to it; at most ``_WRITE_QUEUE`` tiles
    wait. Whatever fails first, the other side stops: a failing producer (a method error,
    SIGTERM's exception, Ctrl-C) makes the writer raise, so the temporary file is removed;
    a failing writer (a full disk) stops the producer. The producer's exception, else the
    writer's, is raised here.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=_WRITE_QUEUE)
    end, abort = object(), object()
    outcome: dict[str, Any] = {}

    def items() -> Iterator[NDArray[Any]]:
        while True:
            item = handoff.get()
            if item is end:
                return
            if item is abort:
                raise _Aborted("the tiles' producer failed")
            yield item

    def run() -> None:
        try:
            outcome["path"] = write(items())
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    def hand(item: Any) -> bool:
        """Queue ``item`` unless the writer has stopped; return whether it was queued."""
        while writer.is_alive():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    writer = threading.Thread(target=run, name="dehaze-tiff-writer", daemon=True)
    writer.start()
    try:
        for tile in tiles:
            if not hand(tile):
                break  # the writer failed: its error is raised below
            del tile
        else:
            hand(end)
    except BaseException:
        hand(abort)
        writer.join()
        raise
    writer.join()
    if "error" in outcome:
        raise outcome["error"]
    path: Path = outcome["path"]
    return path


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _check_space(source: TiffSource, target: Path, compression: str | None) -> None:
    """Refuse an uncompressed output that the target's file system cannot hold."""
    if compression is not None:
        return
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    need = math.prod(source.shape) * source.dtype.itemsize
    if need > free:
        raise ValueError(
            f"{source.path} needs {need / 1e9:.2f} GB for its output but {folder} has "
            f"{free / 1e9:.2f} GB free"
        )
