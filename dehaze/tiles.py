"""Images of any size: exact tiled processing, one tile in memory at a time.

Every method is ``estimate(image) -> scene`` (whole-image statistics) plus
``apply(image, scene)`` (local stages that look at most ``halo`` pixels away). This module runs
both phases tile by tile so that an image never has to be in memory at once, and gives the
whole-image result **bit for bit** for integer images (float images too, in practice; the
promise for them is 1e-6):

* **the scene** by mergeable reductions over tiles, never from a preview. He's rule (the
  brightest of the ``top_fraction`` pixels ranked by the dark channel, CAP's depth, …) needs
  the exact k-th largest value of a map: each tile histograms 16 bits of the map's values
  at a time (an order-preserving integer key), the histograms are added, and the bin holding
  the k-th largest fixes the next 16 bits, until the value is known (2 passes for float32,
  4 for float64); a last pass finds the brightest pixel at or above it. RobustDCP's sky
  measure is a count per tile. :class:`~dehaze.ClearHaze` averages the image over its k × k
  blocks tile by tile (tiles aligned to k) into the small working image that all its
  statistics come from.
* **the local stages** on tiles read with the method's halo around them. Windowed sums are
  exact for float32 data (:mod:`dehaze._kernels.boxfilter`) and the fast guided filter's
  coarse grid is aligned to tiles whose origins are multiples of its factor, so a tile's
  pixels beyond the halo from its read edges are the whole image's. ClearHaze runs every
  windowed stage on its (small) working image once and only its per-pixel full-resolution
  pass per tile (no halo).

The reductions are written as per-tile functions and a merge, so the same code runs serially
here (:func:`serial_mapper`), or as Dask tasks (:mod:`dehaze.distributed`). Sources are
anything with ``shape``, ``dtype`` and 2-D slicing: NumPy arrays and memory maps, a
:class:`dehaze.largeimage.TiffSource`, Zarr or Dask arrays.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._kernels import restore as _rk
from dehaze._parallel import current_threads, fixed_threads, thread_pool
from dehaze._validate import (
    FloatArray,
    as_channels,
    as_float_image,
    as_pixels,
    check_radius,
    working_dtype,
)
from dehaze.atmosphere import first_brightest, pixel_light, window_light
from dehaze.cap import ColorAttenuationPrior, cap_depth
from dehaze.clear import ClearHaze, ClearPlanes
from dehaze.dcp import DarkChannelPrior
from dehaze.filters import min_filter_plane
from dehaze.guided import to_gray
from dehaze.result import ALL_OUTPUTS, DehazeResult, LightScene, Scene, check_outputs
from dehaze.robust import SKY_TEST, RobustDCP, RobustScene
from dehaze.transmission_map import dark_channel_plane, light_luma

__all__ = [
    "DEFAULT_TILE",
    "ImageSource",
    "Prepared",
    "Tile",
    "apply_tile",
    "dehaze_tiled",
    "estimate_tiled",
    "iter_tiles",
    "plan_tiles",
    "prepare",
    "serial_mapper",
    "threaded_mapper",
]

#: Default side of an output tile, in pixels.
DEFAULT_TILE = 1024

#: Bits of the value key fixed per histogram pass (65 536 bins per tile).
KEY_DIGIT_BITS = 16

#: Tiles handed to the mapper at once when their results are large (a histogram is 512 KiB):
#: results are added chunk by chunk, so memory does not grow with the number of tiles.
MAP_CHUNK = 64

T = TypeVar("T")
_Item = TypeVar("_Item")


class ImageSource(Protocol):
    """What the tiled functions read: ``shape``, ``dtype`` and 2-D slicing."""

    @property
    def shape(self) -> tuple[int, ...]:
        """(H, W) or (H, W, C)."""
        ...

    @property
    def dtype(self) -> Any:
        """The pixels' dtype (uint8, uint16, float32 or float64)."""
        ...

    def __getitem__(self, key: tuple[slice, slice], /) -> Any:
        """Return the pixels of a region, as an array-like."""
        ...


@dataclass(frozen=True)
class Tile:
    """One output tile of a plan, and the region of the input it reads.

    Attributes
    ----------
    index : int
        Position in the plan (row-major).
    out : (slice, slice)
        The output region, in image coordinates.
    read : (slice, slice)
        The input region: ``out`` widened by the halo, clipped to the image.
    """

    index: int
    out: tuple[slice, slice]
    read: tuple[slice, slice]

    @property
    def inner(self) -> tuple[slice, slice]:
        """``out`` relative to the read block."""
        (oy, ox), (ry, rx) = self.out, self.read
        return (
            slice(oy.start - ry.start, oy.stop - ry.start),
            slice(ox.start - rx.start, ox.stop - rx.start),
        )

    @property
    def origin(self) -> tuple[int, int]:
        """Row and column of the output region's first pixel."""
        return int(self.out[0].start), int(self.out[1].start)


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def plan_tiles(
    shape: Sequence[int], tile: int, halo: int, align: int = 1, *, strips: bool = False
) -> list[Tile]:
    """Cut an image of ``shape`` into output tiles of side ``tile`` read with ``halo``.

    Tile sides and the halo are rounded up to multiples of ``align`` (the fast guided
    filter's factor, ClearHaze's block size), so every read region starts on the aligned
    grid. Tiles at the right and bottom edges are cut by the image. With ``strips`` the
    tiles span the image's width, with about tile × tile pixels each: a strip of a C-ordered
    array is contiguous, so reading it copies nothing (for methods without a halo).

    Examples
    --------
    >>> [(t.out, t.read) for t in plan_tiles((5, 4), 3, 1)][:2]
    [((slice(0, 3, None), slice(0, 3, None)), (slice(0, 4, None), slice(0, 4, None))), \
((slice(0, 3, None), slice(3, 4, None)), (slice(0, 4, None), slice(2, 4, None)))]
    """
    if len(shape) < 2 or min(int(shape[0]), int(shape[1])) < 1:
        raise ValueError(f"shape must be (H, W, ...) with H, W >= 1, got {tuple(shape)}")
    height, width = int(shape[0]), int(shape[1])
    step = _round_up(check_radius(tile, "tile", minimum=1), check_radius(align, "align", minimum=1))
    margin = _round_up(check_radius(halo, "halo"), align)
    step_y, step_x = step, step
    if strips:
        step_y, step_x = _round_up(max(1, step * step // width), align), width
    tiles: list[Tile] = []
    for y0 in range(0, height, step_y):
        y1 = min(y0 + step_y, height)
        for x0 in range(0, width, step_x):
            x1 = min(x0 + step_x, width)
            read = (
                slice(max(0, y0 - margin), min(height, y1 + margin)),
                slice(max(0, x0 - margin), min(width, x1 + margin)),
            )
            tiles.append(Tile(len(tiles), (slice(y0, y1), slice(x0, x1)), read))
    return tiles


def read_block(image: ImageSource, region: tuple[slice, slice]) -> NDArray[Any]:
    """Read a region of a source as a NumPy array (Dask and Zarr arrays are computed)."""
    block = image[region]
    compute = getattr(block, "compute", None)
    if callable(compute):  # a dask array
        block = compute()
    return np.asarray(block)


def serial_mapper(
    func: Callable[[Tile, NDArray[Any]], T], image: ImageSource, tiles: Sequence[Tile]
) -> list[T]:
    """Run ``func(tile, block)`` on every tile in order, one block in memory at a time."""
    return [func(tile, read_block(image, tile.read)) for tile in tiles]


def _tile_threads(image: ImageSource, count: int) -> int:
    """Threads to run ``count`` tiles of ``image`` on: 1 unless its reads are thread-safe.

    A NumPy array (or memory map) is sliced safely from several threads; other sources
    (a TIFF reader with its cache, a counting wrapper, Zarr) are read from one thread.
    """
    if not isinstance(image, np.ndarray):
        return 1
    return max(1, min(current_threads(), count))


def in_order(
    func: Callable[[_Item], T], items: Sequence[_Item], threads: int, *, ahead: int | None = None
) -> Generator[T, None, None]:
    """Yield ``func(item)`` for every item in order, ``threads`` items computed at once.

    With ``threads`` ≥ 2 the items run on the tile pool
    (:func:`dehaze._parallel.thread_pool`), each on one thread with its kernels pinned to it
    (:func:`dehaze._parallel.fixed_threads` at 1): the threads take items as they become
    free, so there is one wait per item taken instead of one per kernel for the band
    threads of every item, and a thread slowed by other jobs on the machine holds up no
    other. At most ``ahead`` items (default ``threads + 1``: one waits in the pool's queue
    so that no thread idles while the oldest is taken) are started and not yet taken, so
    memory stays bounded. When the caller stops early (an error, Ctrl-C, or the generator
    closed), the items not started are cancelled and the running ones are waited for
    before this generator returns. With one thread the items run in order on the calling
    thread, each with the band threads.
    """
    if threads <= 1 or len(items) <= 1:
        for item in items:
            yield func(item)
        return

    def one(item: _Item) -> T:
        with fixed_threads(1):
            return func(item)

    limit = threads + 1 if ahead is None else max(ahead, threads)
    # a persistent pool: its tasks never submit to a pool (pinned to 1 thread), so callers
    # sharing it cannot deadlock, their items queue
    pool = thread_pool("dehaze-tile", threads)
    pending: deque[Future[T]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(one, item))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        futures.wait(pending)


def _for_each_tile(func: Callable[[Tile], T], tiles: Sequence[Tile], threads: int) -> list[T]:
    """Return ``[func(t) for t in tiles]``, the tiles run on ``threads`` threads at once.

    Every tile is handed to the pool at once (:func:`in_order` with no bound: the tiles of
    an array in memory), so no thread waits for the oldest tile to be taken.
    """
    return list(in_order(func, tiles, threads, ahead=len(tiles)))


def threaded_mapper(
    func: Callable[[Tile, NDArray[Any]], T], image: ImageSource, tiles: Sequence[Tile]
) -> list[T]:
    """Run ``func(tile, block)`` on every tile, tiles in parallel when reads are thread-safe.

    For a NumPy array (or memory map), the tiles run on the kernels' thread count
    (:func:`dehaze.get_num_threads`), each tile on one thread, about one block per thread
    in memory; any other source is read tile after tile (:func:`serial_mapper`). Results
    are in the order of ``tiles``. The default mapper of :func:`estimate_tiled` and
    :func:`prepare`.
    """
    threads = _tile_threads(image, len(tiles))
    return _for_each_tile(lambda t: func(t, read_block(image, t.read)), tiles, threads)


Mapper = Callable[[Callable[[Tile, NDArray[Any]], Any], ImageSource, Sequence[Tile]], list[Any]]


def _reads_free(image: ImageSource) -> bool:
    """Whether full-width strips of ``image`` are views (a C-ordered array in memory)."""
    return isinstance(image, np.ndarray) and bool(image.flags.c_contiguous)


def _check_source(image: ImageSource) -> tuple[int, int, int]:
    if not (hasattr(image, "shape") and hasattr(image, "dtype") and hasattr(image, "__getitem__")):
        raise TypeError(
            f"image must be an array read in blocks by slicing (a NumPy array, a memmap, a "
            f"TiffSource), got {type(image).__name__}; pass np.asarray(image)"
        )
    shape = tuple(int(v) for v in image.shape)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ValueError(f"image must be H×W or H×W×3, got shape {shape}")
    if min(shape[:2]) < 1:
        raise ValueError(f"image must have at least one pixel, got shape {shape}")
    dtype = np.dtype(image.dtype)
    if dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise TypeError(f"image dtype must be uint8, uint16, float32 or float64, got {dtype}")
    return shape[0], shape[1], 1 if len(shape) == 2 else shape[2]


# --- He's rule over tiles --------------------------------------------------------------------


def _keys(values: NDArray[Any]) -> NDArray[Any]:
    """Unsigned integer keys in the order of the float ``values`` (−0 just below +0).

    The float's bits with the sign bit set for positive values and all bits flipped for
    negative ones: ``bits ^ (0x80…0 | sign · 0x7F…F)``, three whole-array integer
    operations of the float's width (np.where with its temporaries took twice as long).
    """
    if values.dtype == np.float32:
        bits32 = np.ascontiguousarray(values).view(np.uint32)
        mask32 = (bits32 >> np.uint32(31)) * np.uint32(0x7FFFFFFF)
        mask32 |= np.uint32(1 << 31)
        np.bitwise_xor(bits32, mask32, out=mask32)
        return mask32
    bits = np.ascontiguousarray(values, np.float64).view(np.uint64)
    mask = (bits >> np.uint64(63)) * np.uint64(0x7FFFFFFFFFFFFFFF)
    mask |= np.uint64(1 << 63)
    np.bitwise_xor(bits, mask, out=mask)
    return mask


def _value_of_key(key: int, dtype: np.dtype[Any]) -> float:
    """Return the float whose :func:`_keys` key is ``key``."""
    nbits = dtype.itemsize * 8
    sign = 1 << (nbits - 1)
    bits = key & ~sign if key & sign else ~key & ((1 << nbits) - 1)
    utype = np.uint32 if nbits == 32 else np.uint64
    return float(np.array([bits], dtype=utype).view(dtype)[0])


# A ranking map: (validated pixels, unit) -> the map He's rule ranks, over the whole block.
RankMap = Callable[[NDArray[Any], float], FloatArray]


def _dark_map(
    patch_radius: int, guard_radius: int, step: int, px: NDArray[Any], unit: float
) -> FloatArray:
    dark = dark_channel_plane(px, patch_radius, unit=unit, step=step)
    return min_filter_plane(dark, guard_radius) if guard_radius > 0 else dark


def _cap_map(patch_radius: int, px: NDArray[Any], unit: float) -> FloatArray:
    return cap_depth(as_float_image(px), patch_radius)


def _coarse(region: tuple[slice, slice], step: int) -> tuple[slice, slice]:
    """Return a region (starts multiples of ``step``) on the grid of every step-th pixel."""
    return (
        slice(region[0].start // step, -(-region[0].stop // step)),
        slice(region[1].start // step, -(-region[1].stop // step)),
    )


#: Bytes of ranking maps kept between He's passes over an in-memory image (the first
#: tiles' maps; the whole map of a 4K image is 33 MB): those passes then compute the map
#: of those tiles once instead of 3 times.
MAP_CACHE_BYTES = 64 * 2**20


class _MapCache:
    """The ranking maps of the first tiles of one He's-rule search, up to a byte limit.

    Used with the local mappers only (the maps stay in this process): passes after the
    first take a kept map instead of computing the dark channel of the tile again.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.maps: dict[int, FloatArray] = {}
        self.nbytes = 0
        self.lock = threading.Lock()

    def get(self, index: int) -> FloatArray | None:
        return self.maps.get(index)

    def keep(self, index: int, plane: FloatArray) -> None:
        with self.lock:
            if self.nbytes + plane.nbytes <= self.limit and index not in self.maps:
                self.maps[index] = plane
                self.nbytes += plane.nbytes


def _ranked(
    rank: RankMap,
    float_pixels: bool,
    step: int,
    cache: _MapCache | None,
    tile: Tile,
    block: NDArray[Any],
) -> Any:
    """Return the pixels and the ranking map of the tile's output region (coarse grid)."""
    px, unit = as_pixels(block)
    if float_pixels:
        px, unit = as_float_image(px), 1.0
    inner = _coarse(tile.inner, step)
    pixels = as_channels(px)[::step, ::step][inner]
    plane = None if cache is None else cache.get(tile.index)
    if plane is None:
        plane = np.ascontiguousarray(rank(px, unit)[inner], dtype=working_dtype(px.dtype))
        if cache is not None:
            cache.keep(tile.index, plane)
    return pixels, plane


def _digit_histogram(
    rank: RankMap,
    float_pixels: bool,
    step: int,
    cache: _MapCache | None,
    level: int,
    prefix: int,
    tile: Tile,
    block: NDArray[Any],
) -> NDArray[np.int64]:
    plane = _ranked(rank, float_pixels, step, cache, tile, block)[1]
    keys = _keys(plane).ravel()  # uint32 for float32 maps, uint64 for float64
    kind = keys.dtype.type
    shift = keys.dtype.itemsize * 8 - KEY_DIGIT_BITS * (level + 1)
    if level > 0:
        keys = keys[(keys >> kind(shift + KEY_DIGIT_BITS)) == kind(prefix)]
    digits = keys >> kind(shift) if shift else keys
    if shift + KEY_DIGIT_BITS < keys.dtype.itemsize * 8:
        digits = digits & kind(0xFFFF)
    # digits < 2**16: as intp without loss (what bincount counts)
    counts = np.bincount(digits.astype(np.intp), minlength=1 << KEY_DIGIT_BITS)
    return counts.astype(np.int64, copy=False)


def _brightest_at_least(
    rank: RankMap,
    float_pixels: bool,
    step: int,
    cache: _MapCache | None,
    threshold: float,
    width: int,
    tile: Tile,
    block: NDArray[Any],
) -> tuple[float, int]:
    """(channel sum, flat index on the coarse grid of ``width``) of the tile's brightest."""
    pixels, plane = _ranked(rank, float_pixels, step, cache, tile, block)
    rows, cols = np.nonzero(plane >= plane.dtype.type(threshold))  # row-major order
    if rows.size == 0:
        return -np.inf, -1
    chosen = pixels[rows, cols]
    sums = chosen[:, 0].astype(np.float64)  # channel by channel, as the kernel adds them
    for c in range(1, chosen.shape[1]):
        sums += chosen[:, c]
    pick = int(np.argmax(sums))  # the first of equal maxima
    y0, x0 = (v // step for v in tile.origin)
    return float(sums[pick]), (y0 + int(rows[pick])) * width + x0 + int(cols[pick])


def _he_index(
    image: ImageSource,
    rank: RankMap,
    halo: int,
    top_fraction: float,
    float_pixels: bool,
    tile: int,
    mapper: Mapper,
    step: int = 1,
) -> int:
    """Return the flat index of the pixel He's rule picks on the map ``rank``, as in memory.

    With ``step`` > 1 the map covers every step-th row and column only (``rank`` returns
    it for a block) and the index is on that coarse grid.
    """
    height, width, _ = _check_source(image)
    tiles = plan_tiles((height, width), tile, halo, align=step)
    coarse_h, coarse_w = -(-height // step), -(-width // step)
    k = max(1, int(coarse_h * coarse_w * top_fraction))
    dtype = working_dtype(np.dtype(image.dtype))  # the map's dtype, as in memory
    levels = dtype.itemsize * 8 // KEY_DIGIT_BITS
    prefix, remaining = 0, k
    # maps kept between the passes only when they run in this process
    cache = _MapCache(MAP_CACHE_BYTES) if mapper in (threaded_mapper, serial_mapper) else None
    for level in range(levels):
        func = functools.partial(_digit_histogram, rank, float_pixels, step, cache, level, prefix)
        hist = np.zeros(1 << KEY_DIGIT_BITS, dtype=np.int64)
        for start in range(0, len(tiles), MAP_CHUNK):  # bounded memory: add as they come
            for part in mapper(func, image, tiles[start : start + MAP_CHUNK]):
                hist += part
        from_top = np.cumsum(hist[::-1])
        pos = int(np.searchsorted(from_top, remaining))  # first digit from the top reaching it
        digit = (1 << KEY_DIGIT_BITS) - 1 - pos
        remaining -= int(from_top[pos] - hist[digit])
        prefix = (prefix << KEY_DIGIT_BITS) | digit
    threshold = _value_of_key(prefix, dtype)
    func2 = functools.partial(
        _brightest_at_least, rank, float_pixels, step, cache, threshold, coarse_w
    )
    return first_brightest(mapper(func2, image, tiles))[1]


def _pixel_at(image: ImageSource, index: int, radius: int = 0) -> tuple[NDArray[Any], float]:
    """Read the (clipped) window of ``radius`` around a flat index: H×W×C pixels, unit."""
    height, width, _ = _check_source(image)
    i, j = divmod(index, width)
    region = (
        slice(max(0, i - radius), min(height, i + radius + 1)),
        slice(max(0, j - radius), min(width, j + radius + 1)),
    )
    px, unit = as_pixels(read_block(image, region))
    return as_channels(px), unit


# --- the scene of each method ----------------------------------------------------------------


def _dcp_scene(method: DarkChannelPrior, image: ImageSource, tile: int, mapper: Mapper) -> Scene:
    if method.atmospheric_light is not None:  # needs only the channel count
        return method.estimate(read_block(image, (slice(0, 1), slice(0, 1))))
    step = method.subsample  # fast mode: He's rule on the coarse grid
    rank = functools.partial(_dark_map, method.patch_radius, 0, step)
    index = _he_index(
        image, rank, method.patch_radius, method.top_fraction, False, tile, mapper, step
    )
    row, col = divmod(index, -(-int(image.shape[1]) // step))
    full_index = row * step * int(image.shape[1]) + col * step
    pixel, unit = _pixel_at(image, full_index)
    light = pixel_light(pixel[0, 0], unit)
    return LightScene(light.astype(np.float64))


def _sky_count(luma_of_light: float, rows_top: int, tile: Tile, block: NDArray[Any]) -> int:
    """Sky pixels (RobustDCP's test) of the tile's output rows above ``rows_top``."""
    radius, max_std, max_distance = SKY_TEST
    y0, _ = tile.origin
    start = tile.out[0].start - tile.read[0].start
    stop = min(tile.out[0].stop, rows_top) - tile.read[0].start
    if stop <= start:
        return 0
    px, unit = as_pixels(block)
    gray = np.ascontiguousarray(to_gray(px, unit) if px.ndim == 3 else as_float_image(px))
    r = min(radius, max(gray.shape))
    j0, j1 = tile.inner[1].start, tile.inner[1].stop
    variance = max_std * max_std

    def count(rows: int) -> int:
        if rows == 0:
            return 0
        return int(_rk.sky_count(gray, rows, r, variance, luma_of_light, max_distance, j0, j1))

    return count(stop) - count(start)


def _robust_scene(method: RobustDCP, image: ImageSource, tile: int, mapper: Mapper) -> Scene:
    if method.light != "he":
        raise ValueError(
            "a tiled estimate of RobustDCP needs light='he' (the quad-tree search compares "
            f"whole quadrants); got light={method.light!r}: pass scene= from an estimate"
        )
    height, width, _ = _check_source(image)
    g = method.guard_radius
    rank = functools.partial(_dark_map, method.patch_radius, g, 1)
    index = _he_index(
        image, rank, method.patch_radius + g, method.top_fraction, False, tile, mapper
    )
    window, unit = _pixel_at(image, index, g)  # the pixel itself for g = 0
    light = window_light(window, unit) if g > 0 else pixel_light(window[0, 0], unit)
    tolerance = None
    if method.tolerance is not None:
        rows_top = max(1, height // 3)
        tiles = [
            t for t in plan_tiles((height, width), tile, SKY_TEST[0]) if t.origin[0] < rows_top
        ]
        func = functools.partial(_sky_count, light_luma(light), rows_top)
        total = sum(mapper(func, image, tiles))
        tolerance = method.tolerance_for_fraction(float(total) / float(rows_top * width))
    return RobustScene(light.astype(np.float64), tolerance)


def _cap_scene(
    method: ColorAttenuationPrior, image: ImageSource, tile: int, mapper: Mapper
) -> Scene:
    rank = functools.partial(_cap_map, method.patch_radius)
    index = _he_index(image, rank, method.patch_radius, 0.001, True, tile, mapper)
    pixel, unit = _pixel_at(image, index)  # scaled as CAP's float pixels are
    return LightScene(pixel_light(pixel[0, 0], unit).astype(np.float64))


def _block_part(method: ClearHaze, factor: int, tile: Tile, block: NDArray[Any]) -> FloatArray:
    return method.working_image(block, factor)


def _working_image(
    method: ClearHaze, image: ImageSource, tile: int, mapper: Mapper
) -> tuple[FloatArray, int]:
    height, width, channels = _check_source(image)
    factor = method.working_factor((height, width))
    if _reads_free(image):
        # a C-ordered array in memory is read in bands without a copy: the block means of
        # the whole image at once are the same numbers (each block summed in the same
        # order) without a copy of every part
        return method.working_image(cast(NDArray[Any], image), factor), factor
    # any other source: square tiles (its full-width strips would be copies anyway)
    tiles = plan_tiles((height, width), tile, 0, align=factor)
    parts = mapper(functools.partial(_block_part, method, factor), image, tiles)
    small = (-(-height // factor), -(-width // factor))
    work = np.empty(small + ((channels,) if len(image.shape) == 3 else ()), parts[0].dtype)
    for t, part in zip(tiles, parts, strict=True):
        y0, x0 = t.origin[0] // factor, t.origin[1] // factor
        work[y0 : y0 + part.shape[0], x0 : x0 + part.shape[1]] = part
    return work, factor


def _network_scene(method: Any, image: ImageSource, tile: int, mapper: Mapper) -> Scene:
    # AOD-Net's scene holds nothing: its estimate only validates the input
    scene: Scene = method.estimate(read_block(image, (slice(0, 1), slice(0, 1))))
    return scene


def estimate_tiled(
    method: Any, image: ImageSource, *, tile: int = DEFAULT_TILE, mapper: Mapper | None = None
) -> Scene:
    """Return ``method.estimate(image)``, computed reading one tile at a time.

    Exact: the same scene, bit for bit, as the whole-image estimate. Supported:
    :class:`~dehaze.DarkChannelPrior`, :class:`~dehaze.RobustDCP` (``light="he"``),
    :class:`~dehaze.ColorAttenuationPrior`, :class:`~dehaze.ClearHaze` and AOD-Net.

    Parameters
    ----------
    method : method object
        The dehazer whose scene to estimate.
    image : ImageSource
        Anything with ``shape``, ``dtype`` and 2-D slicing (NumPy array, memory map, TIFF
        source, Dask array).
    tile : int, optional
        Side of the tiles read, in pixels.
    mapper : callable, optional
        ``mapper(func, image, tiles) -> list`` running ``func(tile, block)`` on every tile
        (default :func:`threaded_mapper`: the tiles of an array in memory in parallel, other
        sources one tile at a time; :mod:`dehaze.distributed` passes one that runs them as
        Dask tasks).

    Returns
    -------
    Scene
        What ``method.estimate`` returns for the whole image.
    """
    run = threaded_mapper if mapper is None else mapper
    _check_source(image)
    if isinstance(method, ClearHaze):
        work, factor = _working_image(method, image, tile, run)
        return method.estimate_working(work, factor)
    if isinstance(method, DarkChannelPrior):
        return _dcp_scene(method, image, tile, run)
    if isinstance(method, RobustDCP):
        return _robust_scene(method, image, tile, run)
    if isinstance(method, ColorAttenuationPrior):
        return _cap_scene(method, image, tile, run)
    from dehaze.models.aodnet import AODNet  # the models package only when asked for

    if isinstance(method, AODNet):
        return _network_scene(method, image, tile, run)
    from dehaze.registry import Identity

    if isinstance(method, Identity):  # its scene reads no pixel
        return method.estimate(np.empty((1, 1), np.uint8))
    raise TypeError(
        f"no tiled estimate for {type(method).__name__} (supported: DarkChannelPrior, "
        "RobustDCP, ColorAttenuationPrior, ClearHaze, AODNet, Identity); pass scene= from "
        "method.estimate"
    )


# --- applying ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Prepared:
    """What applying a method to tiles needs besides the pixels (picklable).

    Attributes
    ----------
    method : method object
        The dehazer.
    scene : Scene
        The whole image's scene.
    shape : (int, int)
        The whole image's height and width.
    halo : int
        Context a tile is read with, in pixels (0 for ClearHaze's full-resolution pass).
    align : int
        Tile origins must be multiples of this (the fast guided filter's factor).
    planes : ClearPlanes or None
        ClearHaze's working-scale maps of the whole image.
    strips : bool
        Plan full-width strips instead of square tiles: set when there is no halo and the
        source is a C-ordered array in memory, whose strips are read without a copy.
    """

    method: Any
    scene: Scene
    shape: tuple[int, int]
    halo: int
    align: int
    planes: ClearPlanes | None = None
    strips: bool = False

    def plan(self, tile: int = DEFAULT_TILE) -> list[Tile]:
        """Return the tiles of the whole image, read with this halo and alignment.

        Full-width strips of about tile × tile pixels when :attr:`strips` is set.
        """
        return plan_tiles(self.shape, tile, self.halo, self.align, strips=self.strips)


def prepare(
    method: Any,
    image: ImageSource,
    scene: Scene | None = None,
    *,
    tile: int = DEFAULT_TILE,
    mapper: Mapper | None = None,
    reuse: bool = False,
) -> Prepared:
    """Estimate the scene (unless given) and everything else tiles share.

    For ClearHaze this reads the image once to build its working image and computes the
    working-scale maps (small: about working_size × working_size pixels, whatever the
    image's size); with ``reuse`` in the calling thread's scratch buffer
    (:meth:`dehaze.ClearHaze.working_planes`), for a caller that is done with the
    result before it calls ClearHaze again in this thread.
    """
    run = threaded_mapper if mapper is None else mapper
    height, width, _ = _check_source(image)
    if isinstance(method, ClearHaze):
        work, factor = _working_image(method, image, tile, run)
        if scene is None:
            scene = method.estimate_working(work, factor)
        planes = method.working_planes(work, scene, reuse=reuse)  # type: ignore[arg-type]
        return Prepared(method, scene, (height, width), 0, 1, planes, _reads_free(image))
    if scene is None:
        scene = estimate_tiled(method, image, tile=tile, mapper=run)
    align = int(getattr(method, "subsample", 1))
    return Prepared(method, scene, (height, width), int(method.halo_for(scene)), align)


def _crop(result: DehazeResult, inner: tuple[slice, slice]) -> DehazeResult:
    def cut(plane: NDArray[Any] | None) -> NDArray[Any] | None:
        return None if plane is None else np.ascontiguousarray(plane[inner])

    return DehazeResult(
        image=np.ascontiguousarray(result.image[inner]),
        transmission=cut(result.transmission),
        atmospheric_light=result.atmospheric_light,
        dark_channel=cut(result.dark_channel),
        depth=cut(result.depth),
    )


def apply_tile(
    prepared: Prepared,
    block: ArrayLike,
    tile: Tile,
    *,
    outputs: Collection[str] = frozenset(),
    out: NDArray[Any] | None = None,
) -> DehazeResult:
    """Dehaze one tile: ``block`` is the input read over ``tile.read``.

    Returns the fields of the whole-image result over ``tile.out`` (bit for bit). ``out``
    (ClearHaze only, where the tile reads no halo): a C-contiguous array of the tile's shape
    and dtype that receives the image, which is then ``result.image``.
    """
    wanted = check_outputs(outputs)
    arr = np.asarray(block)
    (ry, rx) = tile.read
    if arr.shape[:2] != (ry.stop - ry.start, rx.stop - rx.start):
        raise ValueError(
            f"block has shape {arr.shape[:2]} but the tile reads "
            f"{(ry.stop - ry.start, rx.stop - rx.start)}"
        )
    if prepared.planes is not None:
        result = prepared.method.apply_planes(
            arr,
            prepared.planes,
            origin=(ry.start, rx.start),
            shape=prepared.shape,
            outputs=wanted,
            out=out,
        )
    else:
        if out is not None:
            raise ValueError("out is accepted for methods without a halo (ClearHaze) only")
        result = prepared.method.apply(arr, prepared.scene, outputs=wanted)
    return _crop(result, tile.inner)


def iter_tiles(
    method: Any,
    image: ImageSource,
    *,
    scene: Scene | None = None,
    tile: int = DEFAULT_TILE,
    outputs: Collection[str] = frozenset(),
    mapper: Mapper | None = None,
    out: NDArray[Any] | None = None,
) -> Iterator[tuple[Tile, DehazeResult]]:
    """Yield ``(tile, result)`` over the image in row-major order, one tile at a time.

    ``result`` holds the whole-image result's fields over ``tile.out``. The scene is
    estimated by :func:`estimate_tiled` unless given. ``out``, an array of the image's
    shape and dtype, receives each tile's image as it is made (written in place where the
    tile's part of ``out`` is contiguous: ClearHaze's strips).
    """
    wanted = check_outputs(outputs)
    prepared = prepare(method, image, scene, tile=tile, mapper=mapper)
    for t in prepared.plan(tile):
        target = None if out is None else out[t.out]
        direct = target is not None and prepared.planes is not None and target.flags.c_contiguous
        block = read_block(image, t.read)
        part = apply_tile(prepared, block, t, outputs=wanted, out=target if direct else None)
        if target is not None and not direct:
            target[...] = part.image
        yield t, part


def dehaze_tiled(
    method: Any,
    image: ImageSource,
    *,
    scene: Scene | None = None,
    tile: int = DEFAULT_TILE,
    outputs: Collection[str] = ALL_OUTPUTS,
) -> DehazeResult:
    """Dehaze ``image`` tile by tile into arrays in memory: ``method(image)``.

    Bit for bit for integer images (and for ClearHaze in any dtype); float images of the
    other methods agree to 1e-6 (measured: about 1e-14, from summation order).

    The input is read one tile (plus halo) at a time, so a memory-mapped or out-of-core
    source never has to be loaded whole; the outputs are allocated whole. The tiles of a
    NumPy array run in parallel on the kernels' threads (one tile per thread, see
    :func:`threaded_mapper`); other sources are read one tile at a time.
    """
    wanted = check_outputs(outputs)
    height, width, _ = _check_source(image)
    # the planes are read by the tiles and dropped before this returns
    prepared = prepare(method, image, scene, tile=tile, reuse=True)
    plan = prepared.plan(tile)
    result = np.empty(tuple(image.shape), dtype=np.dtype(image.dtype))
    planes: dict[str, NDArray[Any] | None] = {}
    lights: list[Any] = []
    lock = threading.Lock()

    def one(t: Tile) -> None:
        target = result[t.out]
        direct = prepared.planes is not None and target.flags.c_contiguous
        block = read_block(image, t.read)
        part = apply_tile(prepared, block, t, outputs=wanted, out=target if direct else None)
        if not direct:
            target[...] = part.image
        with lock:
            if not planes:  # the first tile done says which planes the method gives
                for name in ("transmission", "dark_channel", "depth"):
                    plane = getattr(part, name)
                    shape = (height, width)
                    planes[name] = None if plane is None else np.empty(shape, plane.dtype)
                lights.append(part.atmospheric_light)
        for name, whole in planes.items():
            if whole is not None:
                whole[t.out] = getattr(part, name)

    _for_each_tile(one, plan, _tile_threads(image, len(plan)))
    return DehazeResult(
        image=result,
        transmission=planes["transmission"],
        atmospheric_light=lights[0],
        dark_channel=planes["dark_channel"],
        depth=planes["depth"],
    )
