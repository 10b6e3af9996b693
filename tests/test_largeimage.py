"""Large TIFF files: region reader, tiled writer, file-to-file dehazing and the CLI path."""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import tracemalloc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import dehaze
from dehaze import clear as clear_module
from dehaze import cli, largeimage
from dehaze.io import _orient, imread, imwrite
from dehaze.largeimage import TiffSource, dehaze_file_tiled, tiff_pixels, write_tiled_tiff

from helpers import random_image

#: Small parameters, so that the halo (patch + guided radius) is a few pixels and a small
#: image spans many tiles.
DCP = dehaze.DarkChannelPrior(patch_radius=2, guided_radius=5)

LAYOUTS: dict[str, dict[str, Any]] = {
    "tiled": {"tile": (16, 32)},
    "striped": {"rowsperstrip": 7},
    "one-strip": {},
    "tiled-zlib-predictor": {"tile": (16, 16), "compression": "zlib", "predictor": True},
    "striped-lzma": {"rowsperstrip": 5, "compression": "lzma"},
    "striped-separate": {"rowsperstrip": 5, "planarconfig": "separate"},
    "tiled-separate-zlib": {"tile": (32, 16), "planarconfig": "separate", "compression": "zlib"},
    "big-endian": {"rowsperstrip": 9, "byteorder": ">"},
    "bigtiff-tiled": {"tile": (16, 16), "bigtiff": True},
}
REGIONS = [(0, 53, 0, 71), (3, 20, 5, 60), (16, 17, 31, 33), (50, 53, 0, 71), (7, 7, 3, 9)]


def write_tiff(path: Path, image: np.ndarray, **options: Any) -> Path:
    """Write ``image`` (H×W or H×W×C) as a TIFF; alpha as an unassociated extra sample."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    extra = {"extrasamples": ["unassalpha"]} if channels in (2, 4) else {}
    photometric = "rgb" if channels >= 3 else "minisblack"
    data = image
    if options.get("planarconfig") == "separate":
        if channels == 1:
            options = {k: v for k, v in options.items() if k != "planarconfig"}
        else:
            data = np.moveaxis(image, -1, 0)
    tifffile.imwrite(path, data, photometric=photometric, metadata=None, **options, **extra)
    return path


# --- the reader -------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("channels", [1, 3, 4, 2])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_regions_equal_tifffile(
    tmp_path: Path,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    channels: int,
    dtype: type,
) -> None:
    shape = (53, 71) if channels == 1 else (53, 71, channels)
    image = random_image(rng, shape, dtype)
    path = write_tiff(tmp_path / "a.tif", image, **LAYOUTS[layout])
    whole = tifffile.imread(path)
    if whole.shape != image.shape:  # tifffile gives separate planes first
        whole = np.moveaxis(whole, 0, -1)
    assert np.array_equal(whole, image)  # the file holds what we meant to write
    # small row blocks (uncompressed strips) that cross strip borders, a small cache
    monkeypatch.setattr(largeimage, "ROW_BLOCK_BYTES", 1000)
    with TiffSource(path, cache_bytes=2000) as source:
        assert source.shape == image.shape and source.dtype == np.dtype(dtype)
        assert source.has_alpha == (channels in (2, 4))
        for y0, y1, x0, x1 in REGIONS:
            block = source[y0:y1, x0:x1]
            assert block.dtype == np.dtype(dtype) and block.dtype.isnative
            assert block.flags.c_contiguous
            np.testing.assert_array_equal(block, whole[y0:y1, x0:x1])
        np.testing.assert_array_equal(source[40:], whole[40:])
        np.testing.assert_array_equal(source[-10:, -20:-3], whole[-10:, -20:-3])
        color, alpha = source.color, source.alpha
        colour = 3 if channels >= 3 else 1
        expected_color = whole if channels in (1, 3) else whole[..., :colour]
        if colour == 1 and expected_color.ndim == 3:
            expected_color = expected_color[..., 0]
        assert color.shape == expected_color.shape
        np.testing.assert_array_equal(color[5:40, 9:70], expected_color[5:40, 9:70])
        if channels in (2, 4):
            assert alpha is not None and alpha.shape == shape[:2]
            np.testing.assert_array_equal(alpha[1:50, 2:3], whole[1:50, 2:3, -1])
        else:
            assert alpha is None


def test_uncompressed_strips_are_read_in_row_blocks_of_any_strip_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One strip for a whole image is common; only the rows a region needs are read."""
    image = np.arange(40 * 30 * 3, dtype=np.uint16).reshape(40, 30, 3)
    monkeypatch.setattr(largeimage, "MAX_SEGMENT_BYTES", 1000)  # the image is 7200 bytes
    monkeypatch.setattr(largeimage, "ROW_BLOCK_BYTES", 1000)  # 5 rows of 180 bytes a block
    with TiffSource(write_tiff(tmp_path / "one.tif", image)) as source:
        assert source._row_blocks and source._block_rows == 5
        np.testing.assert_array_equal(source[3:37, 1:29], image[3:37, 1:29])
        assert all(block.shape[0] <= 5 for block in source._cache.values() if block is not None)
    with pytest.raises(ValueError, match="MiB decoded"):  # a compressed strip is decoded whole
        TiffSource(write_tiff(tmp_path / "z.tif", image, compression="zlib"))
    sparse = write_tiff(tmp_path / "sparse.tif", image, rowsperstrip=8)
    with tifffile.TiffFile(sparse, mode="r+") as tiff:
        counts = list(tiff.pages[0].databytecounts)
        counts[1] = 0  # rows 8-15 not stored: read as zeros, as tifffile does
        tiff.pages[0].tags[279].overwrite(counts)
    expected = image.copy()
    expected[8:16] = 0
    with TiffSource(sparse) as source:
        np.testing.assert_array_equal(source[:, :], expected)


def test_region_keys(tmp_path: Path) -> None:
    image = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    with TiffSource(write_tiff(tmp_path / "a.tif", image)) as source:
        assert source.ndim == 2 and len(source) == 20
        np.testing.assert_array_equal(source[5:100, 25:], image[5:, 25:])  # clipped as numpy
        assert source[8:3, 2:9].shape == (0, 7)
        with pytest.raises(ValueError, match="step 1"):
            source[::2, :]
        with pytest.raises(TypeError, match="slices"):
            source[3, 4]
        with pytest.raises(TypeError, match="slices"):
            source[1:2, 1:2, 0:1]


@pytest.mark.parametrize(
    "layout", ["tiled", "striped", "tiled-zlib-predictor", "striped-lzma", "big-endian"]
)
@pytest.mark.parametrize("cache_bytes", [0, 3000, 10**6])
@pytest.mark.parametrize("disjoint", [False, True])
def test_regions_read_from_many_threads_at_once(
    tmp_path: Path,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    cache_bytes: int,
    disjoint: bool,
) -> None:
    """Reads from several threads (the file path's tiles) give what one thread reads."""
    image = random_image(rng, (97, 83, 3), np.uint16)
    path = write_tiff(tmp_path / "a.tif", image, **LAYOUTS[layout])
    monkeypatch.setattr(largeimage, "ROW_BLOCK_BYTES", 1000)
    regions = [
        (int(y0), int(y0 + h), int(x0), int(x0 + w))
        for y0, x0, h, w in zip(
            rng.integers(0, 90, 400),
            rng.integers(0, 80, 400),
            rng.integers(1, 40, 400),
            rng.integers(1, 40, 400),
            strict=True,
        )
    ]
    start = threading.Barrier(4)
    with TiffSource(path, cache_bytes=cache_bytes) as source:
        source.disjoint_reads = disjoint  # (they overlap: dropped early, decoded again)

        def read(part: int) -> list[np.ndarray]:
            start.wait()  # all threads begin together, on the same regions
            return [source[y0:y1, x0:x1] for y0, y1, x0, x1 in regions[part::2]]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(read, [0, 1, 0, 1]))
        assert not source._decoding  # no segment left marked as being decoded
        assert source._cached_bytes <= cache_bytes
    for part, blocks in zip([0, 1, 0, 1], results, strict=True):
        for (y0, y1, x0, x1), block in zip(regions[part::2], blocks, strict=True):
            np.testing.assert_array_equal(block, image[y0:y1, x0:x1])


def test_segments_are_decoded_once_and_dropped_once_read_when_reads_are_disjoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = np.arange(64 * 64 * 3, dtype=np.uint16).reshape(64, 64, 3)
    path = write_tiff(tmp_path / "a.tif", image, tile=(16, 16), compression="zlib")
    decoded: list[int] = []
    real_decode = TiffSource._decode

    def counting(self: TiffSource, index: int) -> Any:
        decoded.append(index)
        return real_decode(self, index)

    monkeypatch.setattr(TiffSource, "_decode", counting)
    with TiffSource(path) as source:
        assert not source.disjoint_reads  # the default: every segment read is kept
        np.testing.assert_array_equal(source[0:32, 0:32], image[0:32, 0:32])
        np.testing.assert_array_equal(source[0:32, 0:32], image[0:32, 0:32])
        assert sorted(decoded) == [0, 1, 4, 5] and sorted(source._cache) == [0, 1, 4, 5]
    decoded.clear()
    with TiffSource(path) as source:
        source.disjoint_reads = True  # tiles without halo: regions do not overlap
        np.testing.assert_array_equal(source[8:40, 0:32], image[8:40, 0:32])
        # rows 8–16 and 32–40 cut tiles 0, 1, 8, 9, kept for the neighbours; 4, 5 are covered
        assert sorted(source._cache) == [0, 1, 8, 9]
        np.testing.assert_array_equal(source[40:64, 0:32], image[40:64, 0:32])
        assert sorted(source._cache) == [0, 1]  # all of 8 and 9 read: dropped
        np.testing.assert_array_equal(source[0:8, 0:40], image[0:8, 0:40])
        assert sorted(source._cache) == [2]  # cut by column 40
        assert sorted(decoded) == [0, 1, 2, 4, 5, 8, 9, 12, 13]  # 0, 1, 8, 9 decoded once
        assert source._cached_bytes == 16 * 16 * 3 * 2 + largeimage._CACHE_ENTRY_BYTES
        source.disjoint_reads = False  # a new pass: everything read is kept again
        source[16:17, 0:1]
        assert sorted(source._cache) == [2, 4]

    # a segment two threads want at once is decoded by one of them, the other waits
    decoded.clear()
    both = threading.Barrier(2)
    with TiffSource(path) as source:

        def read(_: int) -> np.ndarray:
            both.wait()
            return source[0:16, 0:16]

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            blocks = list(pool.map(read, range(8)))
    assert decoded == [0]
    for block in blocks:
        np.testing.assert_array_equal(block, image[0:16, 0:16])


def test_a_segment_another_thread_decodes_is_taken_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While tile 0 is being decoded elsewhere, a region over tiles 0 and 1 decodes 1 first."""
    image = np.arange(16 * 32 * 3, dtype=np.uint8).reshape(16, 32, 3)
    path = write_tiff(tmp_path / "a.tif", image, tile=(16, 16))
    decoded: list[int] = []
    second = threading.Event()
    real_decode = TiffSource._decode

    def counting(self: TiffSource, index: int) -> Any:
        decoded.append(index)
        if index == 1:
            second.set()
        return real_decode(self, index)

    monkeypatch.setattr(TiffSource, "_decode", counting)
    with TiffSource(path) as source:
        elsewhere = source._decoding[0] = threading.Event()  # "another thread" decodes 0
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            reading = pool.submit(lambda: source[0:16, 0:32])
            try:
                assert second.wait(timeout=30)  # tile 1 decoded while tile 0 is busy
                assert not reading.done()  # and the read waits for tile 0
                with source._lock:  # the other thread finishes: tile 0 in the cache
                    source._cache[0] = real_decode(source, 0)
            finally:  # as the decoding thread does, whatever happened
                with source._lock:
                    del source._decoding[0]
                elsewhere.set()
            np.testing.assert_array_equal(reading.result(timeout=30), image)
    assert decoded == [1]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied_as_the_in_memory_reader_does(
    tmp_path: Path, rng: np.random.Generator, orientation: int
) -> None:
    image = random_image(rng, (37, 50, 3), np.uint8)
    tag = [(274, "H", 1, orientation, True)]
    striped = write_tiff(tmp_path / "s.tif", image, rowsperstrip=4, extratags=tag)
    tiled = write_tiff(tmp_path / "t.tif", image, tile=(16, 16), extratags=tag)
    upright = imread(striped)  # OpenCV applies the TIFF orientation itself
    np.testing.assert_array_equal(upright, _orient(image, orientation))
    for path in (striped, tiled):
        with TiffSource(path) as source:
            assert source.shape == upright.shape
            np.testing.assert_array_equal(source[:, :], upright)
            h, w = upright.shape[:2]
            np.testing.assert_array_equal(
                source[3 : h - 5, 7 : w - 2], upright[3 : h - 5, 7 : w - 2]
            )


def _pages(path: Path, count: int) -> None:
    for _ in range(count):
        tifffile.imwrite(path, np.zeros((8, 8), np.uint8), append=True, metadata=None)


def _patch_tag(path: Path, code: int, value: Any) -> None:
    with tifffile.TiffFile(path, mode="r+") as tiff:
        tiff.pages[0].tags[code].overwrite(value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_tiff(p, np.zeros((8, 8), np.float32)), "only unsigned 8- and 16-bit"),
        (lambda p: write_tiff(p, np.zeros((8, 8), np.int16)), "only unsigned 8- and 16-bit"),
        (
            lambda p: tifffile.imwrite(p, np.zeros((8, 8, 4), np.uint8), photometric="separated"),
            "photometric interpretation 5",
        ),
        (
            lambda p: tifffile.imwrite(p, np.zeros((8, 8), np.uint8), photometric="miniswhite"),
            "photometric interpretation 0",
        ),
        (
            lambda p: tifffile.imwrite(
                p, np.zeros((8, 8, 4), np.uint8), photometric="rgb", extrasamples=["assocalpha"]
            ),
            "premultiplied",
        ),
        (
            lambda p: tifffile.imwrite(
                p, np.zeros((8, 8, 5), np.uint8), photometric="rgb", extrasamples=[2, 0]
            ),
            "only one alpha channel",
        ),
        (lambda p: _pages(p, 3), "3 full-size pages"),
        (lambda p: (write_tiff(p, np.zeros((8, 8), np.uint8)), _patch_tag(p, 259, 5)), "LZW"),
        (
            lambda p: write_tiff(p, np.zeros((8, 8), np.uint8), extratags=[(274, "H", 1, 9, True)]),
            "1–8",
        ),
        (lambda p: p.write_bytes(b"II*\x00 not really a tiff at all"), "cannot read"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n"), "cannot read"),
    ],
)
def test_unsupported_files_are_refused_naming_the_file(
    tmp_path: Path, make: Any, message: str
) -> None:
    path = tmp_path / "bad.tif"
    make(path)
    with pytest.raises(ValueError, match=message) as info:
        TiffSource(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such TIFF"):
        TiffSource(tmp_path / "missing.tif")
    with pytest.raises(ValueError, match="cache_bytes"):
        TiffSource(tmp_path / "missing.tif", cache_bytes=-1)
    assert tiff_pixels(tmp_path / "missing.tif") is None


def _crafted(path: Path, kind: str) -> None:
    """A small valid file, then damaged: a header declaring far more than the file holds."""
    image = np.full((64, 64, 3), 100, np.uint8)
    if kind == "huge-size":  # 10^6 × 10^6 pixels declared, 16 tiles listed
        write_tiff(path, image, tile=(16, 16))
        _patch_tag(path, 256, 1_000_000)
        _patch_tag(path, 257, 1_000_000)
    elif kind == "huge-tiles":  # one tile declared 2^20 × 2^20 (3 TB decoded)
        write_tiff(path, np.full((16, 16, 3), 1, np.uint8), tile=(16, 16))
        _patch_tag(path, 322, 2**20)
        _patch_tag(path, 323, 2**20)
    elif kind == "huge-strips":  # one compressed strip declared to hold 10^7 rows (1.9 GB)
        write_tiff(path, image, rowsperstrip=64, compression="zlib")
        _patch_tag(path, 278, 10_000_000)
        _patch_tag(path, 257, 10_000_000)
    elif kind == "truncated":
        write_tiff(path, image, tile=(16, 16))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated-compressed":
        write_tiff(
            path,
            np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8),
            tile=(16, 16),
            compression="zlib",
        )
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 2000])
    elif kind == "short-uncompressed":  # byte counts smaller than the pixels need
        write_tiff(path, image, tile=(16, 16))
        with tifffile.TiffFile(path, mode="r+") as tiff:
            tiff.pages[0].tags[325].overwrite([100] * 16)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("huge-size", "corrupt header"),
        ("huge-tiles", "MiB decoded"),
        ("huge-strips", "MiB decoded"),
        ("truncated", "truncated"),
        ("truncated-compressed", "truncated"),
        ("short-uncompressed", "fewer bytes than its pixels need"),
    ],
)
def test_crafted_headers_are_refused_without_allocating(
    tmp_path: Path, kind: str, message: str
) -> None:
    path = tmp_path / "crafted.tif"
    _crafted(path, kind)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message) as info:
            with TiffSource(path) as source:
                source[0:16, 0:16]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    assert peak < 2 * 2**20  # nothing near the declared size was allocated


def test_corrupt_compressed_data_is_an_error(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 255, (32, 32), np.uint8)
    path = write_tiff(tmp_path / "a.tif", image, tile=(16, 16), compression="zlib")
    with tifffile.TiffFile(path) as tiff:
        offset = tiff.pages[0].dataoffsets[1]
    data = bytearray(path.read_bytes())
    data[offset : offset + 8] = b"\xff" * 8  # not a zlib stream any more
    path.write_bytes(bytes(data))
    with TiffSource(path) as source:
        np.testing.assert_array_equal(source[0:16, 0:16], image[0:16, 0:16])  # tile 0 is fine
        with pytest.raises(ValueError, match="cannot be decompressed"):
            source[0:16, 16:32]


def test_a_decompression_bomb_decodes_no_more_than_a_tile(tmp_path: Path) -> None:
    """A Deflate tile that inflates to 64 MB is cut at the tile's 768 bytes."""
    import zlib

    path = write_tiff(
        tmp_path / "a.tif", np.zeros((16, 16, 3), np.uint8), tile=(16, 16), compression="zlib"
    )
    bomb = zlib.compress(b"\x07" * (64 * 2**20), 9)  # ~64 kB
    with tifffile.TiffFile(path, mode="r+") as tiff:
        page = tiff.pages[0]
        offset = page.dataoffsets[0]
    data = path.read_bytes()
    end = len(data)
    path.write_bytes(data + bomb)
    with tifffile.TiffFile(path, mode="r+") as tiff:
        tiff.pages[0].tags[324].overwrite([end])
        tiff.pages[0].tags[325].overwrite([len(bomb)])
    assert offset != end
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="larger than its pixels could need"):
            TiffSource(path)  # 64 kB for a 768-byte tile: refused before decoding
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20


# --- the writer -------------------------------------------------------------------------


def _tiles(image: np.ndarray, tile: int):  # type: ignore[no-untyped-def]
    for y in range(0, image.shape[0], tile):
        for x in range(0, image.shape[1], tile):
            yield image[y : y + tile, x : x + tile]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_writer_round_trip(
    tmp_path: Path, rng: np.random.Generator, channels: int, compression: str | None
) -> None:
    shape = (50, 70) if channels == 1 else (50, 70, channels)
    image = random_image(rng, shape, np.uint16)
    path = write_tiled_tiff(
        tmp_path / "o.tif",
        _tiles(image, 32),
        shape=shape,
        dtype=np.uint16,
        tile=32,
        compression=compression,
    )
    np.testing.assert_array_equal(tifffile.imread(path), image)
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (32, 32)
        assert tuple(page.extrasamples) == ((2,) if channels in (2, 4) else ())
    if channels in (1, 3):
        np.testing.assert_array_equal(imread(path), image)  # OpenCV reads it too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.tif"]


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_writer_rectangular_tiles(
    tmp_path: Path, rng: np.random.Generator, compression: str | None
) -> None:
    image = random_image(rng, (50, 70, 3), np.uint8)
    blocks = (image[y : y + 16, x : x + 48] for y in range(0, 50, 16) for x in range(0, 70, 48))
    path = write_tiled_tiff(
        tmp_path / "o.tif",
        blocks,
        shape=image.shape,
        dtype=np.uint8,
        tile=(16, 48),
        compression=compression,
    )
    np.testing.assert_array_equal(tifffile.imread(path), image)
    with tifffile.TiffFile(path) as tiff:
        assert (tiff.pages[0].tilelength, tiff.pages[0].tilewidth) == (16, 48)


def test_writer_never_overwrites_and_leaves_no_part_file(tmp_path: Path) -> None:
    image = np.ones((40, 40, 3), np.uint8)
    target = tmp_path / "o.tif"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="exists"):
        write_tiled_tiff(target, _tiles(image, 16), shape=image.shape, dtype=np.uint8, tile=16)
    assert target.read_bytes() == b"keep me"
    write_tiled_tiff(
        target, _tiles(image, 16), shape=image.shape, dtype=np.uint8, tile=16, overwrite=True
    )
    np.testing.assert_array_equal(tifffile.imread(target), image)

    def failing():  # type: ignore[no-untyped-def]
        yield from itertools.islice(_tiles(image, 16), 4)
        raise RuntimeError("the method failed on tile 4")

    fresh = tmp_path / "fresh.tif"
    with pytest.raises(RuntimeError, match="tile 4"):
        write_tiled_tiff(fresh, failing(), shape=image.shape, dtype=np.uint8, tile=16)
    wrong = (np.ones((16, 16, 3), np.uint16) for _ in range(9))
    with pytest.raises(ValueError, match="tile 0 has shape"):
        write_tiled_tiff(fresh, wrong, shape=image.shape, dtype=np.uint8, tile=16)
    few = itertools.islice(_tiles(image, 16), 5)
    with pytest.raises(ValueError, match="got 5 tiles; expected 9"):
        write_tiled_tiff(fresh, few, shape=image.shape, dtype=np.uint8, tile=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.tif"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tile": 20}, "multiple of 16"),
        ({"tile": 0}, "multiple of 16"),
        ({"tile": (16, 24)}, "multiple of 16"),
        ({"tile": (16, 16, 16)}, "pair"),
        ({"dtype": np.float32}, "uint8 or uint16"),
        ({"shape": (10, 10, 5)}, "C in 2–4"),
        ({"shape": (0, 10)}, "positive height"),
        ({"compression": "lzw"}, "compression"),
    ],
)
def test_writer_checks_its_arguments(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"shape": (10, 10), "dtype": np.uint8, "tile": 16, **options}
    with pytest.raises(ValueError, match=message):
        write_tiled_tiff(tmp_path / "o.tif", iter(()), **arguments)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bigtiff", [False, True])
@pytest.mark.parametrize(("channels", "dtype"), [(1, np.uint8), (3, np.uint8), (4, np.uint16)])
def test_uncompressed_tiles_direct_and_buffered_give_the_same_file(
    tmp_path: Path,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    bigtiff: bool,
    channels: int,
    dtype: type,
) -> None:
    # 64 px tiles of any of these make whole 4096-byte blocks: direct I/O where allowed
    shape = (150, 200) if channels == 1 else (150, 200, channels)
    image = random_image(rng, shape, dtype)
    extras = [2] if channels == 4 else None
    files = []
    tile_bytes = 64 * 64 * channels * np.dtype(dtype).itemsize
    # one write for all 12 tiles, one per tile, and 5 + 5 + 2
    for direct, batch in itertools.product((True, False), (12, 1, 5)):
        monkeypatch.setattr(largeimage, "USE_DIRECT_IO", direct)
        monkeypatch.setattr(largeimage, "WRITE_BATCH_BYTES", batch * tile_bytes + 1)
        path = tmp_path / f"{direct}-{batch}.tif"
        path.touch()
        writer = largeimage._UncompressedTiles(
            shape, np.dtype(dtype), (64, 64), extras, bigtiff=bigtiff
        )
        writer.write(str(path), _tiles(image, 64))
        files.append(path.read_bytes())
        np.testing.assert_array_equal(tifffile.imread(path), image)
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            assert tiff.is_bigtiff == bigtiff
            assert (page.tilelength, page.tilewidth, page.compression) == (64, 64, 1)
            assert all(offset % largeimage.DIRECT_ALIGN == 0 for offset in page.dataoffsets)
            assert tuple(page.extrasamples) == ((2,) if channels == 4 else ())
        with TiffSource(path) as source:
            np.testing.assert_array_equal(source[7:140, 65:199], image[7:140, 65:199])
    assert all(file == files[0] for file in files[1:])
    # 3 × 4 tiles, the last one last; edge tiles are padded with zeros, not with what the
    # buffer held before: the last tile's rows below the image's 150th are zeros
    assert len(files[0]) % largeimage.DIRECT_ALIGN == 0 and len(files[0]) > 12 * tile_bytes
    assert files[0].endswith(bytes((64 - 150 % 64) * 64 * channels * np.dtype(dtype).itemsize))


def test_an_error_writing_a_batch_is_raised_by_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are written on a second thread; its error reaches write_tiled_tiff's caller."""
    image = np.zeros((150, 200, 3), np.uint8)
    monkeypatch.setattr(largeimage, "WRITE_BATCH_BYTES", 2 * 64 * 64 * 3)  # 2 tiles a write
    monkeypatch.setattr(largeimage, "USE_DIRECT_IO", False)  # (a direct write's error: buffered)
    real = largeimage._write_all
    calls = []

    def fails_at_the_third_batch(fd: int, data: memoryview, offset: int) -> None:
        calls.append(offset)
        if len(calls) == 4:  # the header, then batches
            raise OSError("no space left on device")
        real(fd, data, offset)

    monkeypatch.setattr(largeimage, "_write_all", fails_at_the_third_batch)
    with pytest.raises(OSError, match="no space left"):
        write_tiled_tiff(
            tmp_path / "a.tif", _tiles(image, 64), shape=image.shape, dtype=np.uint8, tile=64
        )
    assert not list(tmp_path.iterdir())  # the temporary file removed
    assert len(calls) <= 5  # the batch being copied may be written, nothing after


# --- file to file -----------------------------------------------------------------------

METHODS = {
    "dcp": DCP,
    "dcp-fast": dehaze.DarkChannelPrior(patch_radius=2, guided_radius=6, subsample=2),
    "clear": dehaze.ClearHaze(),
    "robust": dehaze.RobustDCP(patch_radius=2, guided_radius=5),
    "cap": dehaze.ColorAttenuationPrior(guided_radius=4),
}


def hazy_image(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A smooth scene under haze that thickens towards the top, in ``dtype``."""
    top = float(np.iinfo(dtype).max)
    t = np.linspace(0.3, 0.95, shape[0])[:, None]
    scene = rng.random(shape) * 0.6
    t = t if len(shape) == 2 else t[:, :, None]
    return np.rint((scene * t + 0.9 * (1 - t)) * top).astype(dtype)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_file_to_file_equals_the_whole_image(
    tmp_path: Path, rng: np.random.Generator, name: str, dtype: type
) -> None:
    method = METHODS[name]
    image = hazy_image(rng, (75, 101, 3), dtype)
    src = write_tiff(tmp_path / "in.tif", image, tile=(16, 16), compression="zlib")
    calls: list[tuple[str, int, int]] = []
    out = dehaze_file_tiled(
        method, src, tmp_path / "out.tif", tile=32, progress=lambda *a: calls.append(a)
    )
    result = tifffile.imread(out)
    assert result.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(result, method(image).image)
    tiles = 3 * 4
    assert calls[-1] == ("dehaze", tiles, tiles)
    assert [c for c in calls if c[0] == "dehaze"] == [("dehaze", i, tiles) for i in range(1, 13)]
    scene = [c for c in calls if c[0] == "estimate"]
    assert calls[: len(scene)] == scene  # the scene first, then the output
    assert scene == [("estimate", i, 0) for i in range(1, len(scene) + 1)]
    assert len(scene) >= tiles or name == "clear"  # He's rule reads every tile, a few times


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_file_to_file_gray_and_alpha(
    tmp_path: Path, rng: np.random.Generator, channels: int
) -> None:
    image = hazy_image(rng, (70, 50) if channels == 1 else (70, 50, channels), np.uint16)
    src = write_tiff(tmp_path / "in.tif", image, rowsperstrip=3)
    out = tifffile.imread(dehaze_file_tiled(DCP, src, tmp_path / "out.tif", tile=16))
    color = image if channels == 1 else image[..., : 3 if channels == 4 else 1]
    color = color[..., 0] if color.ndim == 3 and color.shape[2] == 1 else color
    expected = DCP(color).image
    if channels == 1:
        np.testing.assert_array_equal(out, expected)
    else:
        np.testing.assert_array_equal(out[..., :-1].reshape(expected.shape), expected)
        np.testing.assert_array_equal(out[..., -1], image[..., -1])  # alpha unchanged


@pytest.mark.parametrize("layout", ["striped", "one-strip", "tiled", "striped-separate"])
@pytest.mark.parametrize("threads", [1, 2])
def test_file_to_file_reading_each_segment_once_equals_the_whole_image(
    tmp_path: Path,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    threads: int,
) -> None:
    """ClearHaze reads without a halo (disjoint reads): segments leave the cache once read."""
    image = hazy_image(rng, (203, 157, 4), np.uint8)  # with alpha
    src = write_tiff(tmp_path / "in.tif", image, **LAYOUTS[layout])
    monkeypatch.setattr(largeimage, "ROW_BLOCK_BYTES", 3000)  # rows cut by the tiles
    method = dehaze.ClearHaze(working_size=20)  # working blocks of 8 px
    with dehaze.num_threads(threads):
        out = tifffile.imread(dehaze_file_tiled(method, src, tmp_path / "out.tif", tile=32))
    np.testing.assert_array_equal(out[..., :3], method(image[..., :3]).image)
    np.testing.assert_array_equal(out[..., 3], image[..., 3])


def test_file_to_file_refuses_bad_tiles_and_existing_outputs(tmp_path: Path) -> None:
    src = write_tiff(tmp_path / "in.tif", np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ValueError, match="multiple of 16"):
        dehaze_file_tiled(DCP, src, tmp_path / "out.tif", tile=24)
    (tmp_path / "out.tif").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        dehaze_file_tiled(DCP, src, tmp_path / "out.tif")
    assert (tmp_path / "out.tif").read_bytes() == b"old"


def test_a_failing_writer_stops_the_tiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_tiff(tmp_path / "in.tif", np.zeros((64, 96, 3), np.uint8))

    def full_disk(path: Path, tiles: Any, **options: Any) -> Path:
        for number, _ in enumerate(tiles):
            if number == 1:
                raise OSError("no space left on device")
        raise AssertionError("unreachable")  # pragma: no cover

    monkeypatch.setattr(largeimage, "write_tiled_tiff", full_disk)
    calls: list[tuple[str, int, int]] = []
    with pytest.raises(OSError, match="no space left"):
        dehaze_file_tiled(
            DCP, src, tmp_path / "out.tif", tile=16, progress=lambda *a: calls.append(a)
        )
    made = [c for c in calls if c[0] == "dehaze"]
    assert 2 <= len(made) < 24  # the tiles stopped soon after the writer failed (24 in all)


class _WatchedSource(TiffSource):
    """Records reads still running when the source is closed, and reads after."""

    reading = 0
    closed = False
    late: list[str] = []
    lock = threading.Lock()

    def __getitem__(self, key: Any) -> np.ndarray:
        cls = _WatchedSource
        with cls.lock:
            cls.reading += 1
            if cls.closed:
                cls.late.append("read after close")
        try:
            return super().__getitem__(key)
        finally:
            with cls.lock:
                cls.reading -= 1

    def close(self) -> None:
        cls = _WatchedSource
        with cls.lock:
            if cls.reading:
                cls.late.append(f"{cls.reading} reads running at close")
            cls.closed = True
        super().close()


@pytest.mark.parametrize("phase", ["estimate", "dehaze"])
def test_a_failing_tile_on_a_tile_thread_stops_the_others(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    """The error is raised here, no file is left, and no tile reads the closed source."""
    from dehaze import tiles

    src = write_tiff(tmp_path / "in.tif", hazy_image(rng, (160, 160, 3), np.uint8))
    started: list[int] = []
    real = tiles.apply_tile if phase == "dehaze" else tiles._block_part
    failing = 7

    def fails_at_one_tile(*args: Any, **options: Any) -> Any:
        tile = args[2]  # apply_tile(prepared, block, tile), _block_part(method, k, tile, block)
        started.append(tile.index)
        if tile.index == failing:
            raise RuntimeError(f"tile {tile.index} failed")
        return real(*args, **options)

    monkeypatch.setattr(
        tiles, "apply_tile" if phase == "dehaze" else "_block_part", fails_at_one_tile
    )
    monkeypatch.setattr(largeimage, "TiffSource", _WatchedSource)
    monkeypatch.setattr(_WatchedSource, "late", [])
    monkeypatch.setattr(_WatchedSource, "closed", False)
    with dehaze.num_threads(2), pytest.raises(RuntimeError, match=f"tile {failing} failed"):
        dehaze_file_tiled(dehaze.ClearHaze(), src, tmp_path / "out.tif", tile=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]  # no output, no .part
    assert _WatchedSource.closed and not _WatchedSource.late
    assert len(started) < 100  # 100 tiles in all: those after the failure were not begun
    assert max(started) <= failing + 3  # at most threads + 1 tiles were started ahead


def test_file_to_file_refuses_an_output_the_disk_cannot_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collections

    src = write_tiff(tmp_path / "in.tif", np.zeros((20, 30, 3), np.uint16))
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(largeimage.shutil, "disk_usage", lambda path: usage(10**9, 0, 3599))
    with pytest.raises(ValueError, match="needs 0.00 GB for its output but"):
        dehaze_file_tiled(DCP, src, tmp_path / "new" / "out.tif")  # 3600 bytes needed
    assert not (tmp_path / "new" / "out.tif").exists()
    monkeypatch.setattr(largeimage.shutil, "disk_usage", lambda path: usage(10**9, 0, 3600))
    assert dehaze_file_tiled(DCP, src, tmp_path / "out.tif").is_file()


def test_tiff_pixels_reads_the_header_only(tmp_path: Path) -> None:
    path = write_tiff(tmp_path / "a.tif", np.zeros((20, 30), np.uint8), tile=(16, 16))
    assert tiff_pixels(path) == 600
    imwrite(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert tiff_pixels(tmp_path / "a.png") is None


class _CountingSource(TiffSource):
    """Counts the blocks read, the threads reading them and how many are alive at once."""

    reads: list[tuple[int, int]] = []
    readers: set[int] = set()
    alive = 0
    most_alive = 0
    count_lock = threading.Lock()  # blocks are read, and dropped, on several threads

    def __getitem__(self, key: Any) -> np.ndarray:
        block = super().__getitem__(key)
        cls = _CountingSource
        with cls.count_lock:
            cls.reads.append(block.shape[:2])
            cls.readers.add(threading.get_ident())
            cls.alive += 1
            cls.most_alive = max(cls.most_alive, cls.alive)
        weakref.finalize(block, _CountingSource._released)
        return block

    @staticmethod
    def _released() -> None:
        with _CountingSource.count_lock:
            _CountingSource.alive -= 1


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("name", ["dcp", "clear"])
def test_the_tiled_path_holds_a_bounded_number_of_tiles(
    tmp_path: Path,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    threads: int,
) -> None:
    """One tile read per thread at most: the tiles run on ``threads`` threads at once."""
    method = METHODS[name]
    image = hazy_image(rng, (256, 320, 3), np.uint8)
    src = write_tiff(tmp_path / "in.tif", image, tile=(32, 32))
    monkeypatch.setattr(largeimage, "TiffSource", _CountingSource)
    monkeypatch.setattr(_CountingSource, "reads", [])
    monkeypatch.setattr(_CountingSource, "readers", set())
    monkeypatch.setattr(_CountingSource, "alive", 0)
    monkeypatch.setattr(_CountingSource, "most_alive", 0)
    with dehaze.num_threads(threads):
        out = dehaze_file_tiled(method, src, tmp_path / "out.tif", tile=32, cache_bytes=0)
    np.testing.assert_array_equal(tifffile.imread(out), method(image).image)
    halo = method.halo_for(method.estimate(image))
    side = 32 + 2 * halo
    tiles = (256 // 32) * (320 // 32)
    assert len(_CountingSource.reads) >= 2 * tiles  # the scene pass(es), then the output
    assert all(h <= side and w <= side for h, w in _CountingSource.reads)
    assert _CountingSource.most_alive <= threads
    others = _CountingSource.readers - {threading.get_ident()}
    if threads == 1:
        assert not others
    else:  # the tiles were read (and computed) on the tile threads
        assert len(others) >= 2


def _peak_memory(method: Any, src: Path, dst: Path) -> int:
    dehaze_file_tiled(method, src, dst.with_name("warm.tif"), tile=64)  # JIT compiled first
    dst.with_name("warm.tif").unlink()
    # ClearHaze keeps its working-scale scratch in the calling thread between calls: drop
    # it, so that what this call needs is counted whole
    clear_module._release_scratch()
    tracemalloc.start()
    try:
        dehaze_file_tiled(method, src, dst, tile=64, cache_bytes=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", ["clear", "dcp"])
def test_memory_does_not_grow_with_the_image(
    tmp_path: Path, rng: np.random.Generator, name: str
) -> None:
    """16 times the pixels, the same memory: what is held is per tile, not per image.

    Both sizes have at least 64 tiles of 64 px (``tiles.MAP_CHUNK``: He's rule adds the
    per-tile histograms of that many tiles at a time).
    """
    method = METHODS[name]
    peaks = []
    for size in (512, 2048):
        src = write_tiff(tmp_path / f"{size}.tif", hazy_image(rng, (size, size, 3), np.uint8))
        peaks.append(_peak_memory(method, src, tmp_path / f"out{size}.tif"))
    small, large = peaks
    assert large < 2 * small + 2**20, peaks
    # below one float32 copy of the image, besides ClearHaze's working-scale scratch (a
    # fixed amount, at most _WORKSPACE_BYTES, whatever the image's size)
    scratch = clear_module._WORKSPACE_BYTES if name == "clear" else 0
    assert large < 2048 * 2048 * 3 * 4 + scratch, peaks


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def large_tiff(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, np.ndarray]:
    image = hazy_image(rng, (90, 120, 3), np.uint8)
    (tmp_path / "in").mkdir()
    return write_tiff(tmp_path / "in" / "big.tif", image, tile=(16, 16)), image


def _spy_tiled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, dict[str, Any]]]:
    """Record (source, options) of every call to the tiled file path, which still runs."""
    calls: list[tuple[Path, dict[str, Any]]] = []
    real = largeimage.dehaze_file_tiled

    def spy(method: Any, source: Path, target: Path, **options: Any) -> Path:
        calls.append((Path(source), options))
        return real(method, source, target, **options)

    monkeypatch.setattr(largeimage, "dehaze_file_tiled", spy)
    return calls


def test_cli_tile_option_goes_file_to_file(
    large_tiff: tuple[Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, image = large_tiff
    calls = _spy_tiled(monkeypatch)
    out = tmp_path / "out"
    assert cli.main([str(src), "-o", str(out), "-q", "--method", "dcp", "--tile", "48"]) == 0
    assert [options["tile"] for _, options in calls] == [48]
    np.testing.assert_array_equal(
        tifffile.imread(out / "big.tif"), dehaze.DarkChannelPrior()(image).image
    )


def test_cli_large_tiffs_go_tiled_automatically_with_progress(
    large_tiff: tuple[Path, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import tqdm

    src, image = large_tiff
    small = tmp_path / "in" / "small.tif"
    write_tiff(small, image[:20, :20])
    monkeypatch.setattr(cli, "TILED_PIXELS", 20 * 20)  # big.tif is above, small.tif is not
    bars: list[dict[str, Any]] = []
    real_tqdm = tqdm.tqdm

    class Recording(real_tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False  # stderr is no terminal under pytest: show it anyway
            super().__init__(*args, **kwargs)
            self.record: dict[str, Any] = {"unit": kwargs.get("unit"), "phases": []}
            bars.append(self.record)

        def reset(self, total: Any = None) -> None:
            self.record["phases"].append(total)
            super().reset(total=total)

        def update(self, n: float | None = 1) -> bool | None:
            result = super().update(n)
            self.record["last"] = self.n
            return result

    monkeypatch.setattr(tqdm, "tqdm", Recording)
    calls = _spy_tiled(monkeypatch)
    out = tmp_path / "out"
    assert cli.main([str(tmp_path / "in"), "-o", str(out), "--method", "dcp"]) == 0
    assert [source for source, _ in calls] == [src]
    method = dehaze.DarkChannelPrior()
    np.testing.assert_array_equal(tifffile.imread(out / "big.tif"), method(image).image)
    np.testing.assert_array_equal(imread(out / "small.tif"), method(image[:20, :20]).image)
    tile_bars = [b for b in bars if b["unit"] == "tile"]
    # one bar: the scene passes (tiles read, no total: He's rule takes a few passes), then
    # the output tiles (one here: 90×120 is less than the default tile)
    assert len(tile_bars) == 1 and tile_bars[0]["phases"] == [None, 1]
    assert tile_bars[0]["last"] == 1
    assert "2 done" in capsys.readouterr().err


def test_cli_tiled_path_safety(
    large_tiff: tuple[Path, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src, image = large_tiff
    out = tmp_path / "out"
    base = [str(src), "-o", str(out), "-q", "--method", "dcp", "--tile", "32"]
    # side outputs are refused for the tiled path (the depth colours need the whole map)
    assert cli.main([*base, "--save-depth"]) == 1
    assert "not available for images dehazed tile by tile" in capsys.readouterr().err
    assert not out.exists() or not list(out.iterdir())
    # a failure in the middle leaves neither the output nor a temporary file
    from dehaze import tiles

    real_apply = tiles.apply_tile

    def failing(prepared: Any, block: Any, tile: Any, **options: Any) -> Any:
        if tile.index == 3:
            raise RuntimeError("disk on fire")
        return real_apply(prepared, block, tile, **options)

    monkeypatch.setattr(tiles, "apply_tile", failing)
    assert cli.main(base) == 1
    assert "disk on fire" in capsys.readouterr().err
    assert not list(out.iterdir())
    monkeypatch.setattr(tiles, "apply_tile", real_apply)
    # an existing output is skipped, never replaced without --overwrite
    (out / "big.tif").write_bytes(b"old")
    assert cli.main(base) == 0
    assert "skipped" in capsys.readouterr().err and (out / "big.tif").read_bytes() == b"old"
    assert cli.main([*base, "--overwrite"]) == 0
    np.testing.assert_array_equal(
        tifffile.imread(out / "big.tif"), dehaze.DarkChannelPrior()(image).image
    )
    assert sorted(p.name for p in out.iterdir()) == ["big.tif"]
    # an explicit --max-pixels applies to streamed TIFFs too
    assert cli.main([*base, "--overwrite", "--max-pixels", "1000"]) == 1
    assert "--max-pixels" in capsys.readouterr().err


def test_cli_large_tiffs_the_tiled_reader_refuses_are_read_whole_within_the_limit(
    tmp_path: Path,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from PIL import Image

    image = hazy_image(rng, (30, 40, 3), np.uint8)
    src = tmp_path / "packbits.tif"
    Image.fromarray(image).save(src, compression="packbits")  # OpenCV reads it, we do not
    with pytest.raises(ValueError, match="PackBits"):
        TiffSource(src)
    monkeypatch.setattr(cli, "TILED_PIXELS", 100)
    out = tmp_path / "out"
    assert cli.main([str(src), "-o", str(out), "-q", "--method", "dcp"]) == 0
    np.testing.assert_array_equal(
        imread(out / "packbits.tif"), dehaze.DarkChannelPrior()(image).image
    )
    # above the pixel limit there is no way but the tiled path, which says why it cannot
    monkeypatch.setattr(cli, "DEFAULT_MAX_PIXELS", 1000)
    assert cli.main([str(src), "-o", str(out), "-q", "--overwrite"]) == 1
    assert "PackBits" in capsys.readouterr().err


def test_cli_sigterm_between_tiles_leaves_no_file(
    large_tiff: tuple[Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dehaze import tiles

    src, _ = large_tiff
    real_apply = tiles.apply_tile

    def terminated_at_tile_3(prepared: Any, block: Any, tile: Any, **options: Any) -> Any:
        if tile.index == 3:
            cli._TERMINATION.set()  # what the SIGTERM handler does
        return real_apply(prepared, block, tile, **options)

    monkeypatch.setattr(tiles, "apply_tile", terminated_at_tile_3)
    out = tmp_path / "out"
    assert cli.main([str(src), "-o", str(out), "-q", "--method", "dcp", "--tile", "16"]) == 143
    assert not list(out.iterdir())  # neither the output nor its temporary file


def test_cli_tile_must_be_a_multiple_of_16(
    large_tiff: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, _ = large_tiff
    with pytest.raises(SystemExit) as exc:
        cli.main([str(src), "-o", str(tmp_path / "out"), "--tile", "100"])
    assert exc.value.code == 2 and "multiple of 16" in capsys.readouterr().err


def test_cli_tile_in_memory_for_other_formats(tmp_path: Path, rng: np.random.Generator) -> None:
    image = hazy_image(rng, (60, 90, 3), np.uint8)
    imwrite(tmp_path / "in" / "a.png", image)
    out = tmp_path / "out"
    args = [str(tmp_path / "in" / "a.png"), "-o", str(out), "-q", "--method", "dcp"]
    assert cli.main([*args, "--tile", "32", "--save-transmission"]) == 0
    np.testing.assert_array_equal(imread(out / "a.png"), dehaze.DarkChannelPrior()(image).image)
    assert (out / "a_transmission.png").is_file()


def test_cli_other_formats_above_the_limit_suggest_tiff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imwrite(tmp_path / "a.png", np.zeros((40, 40, 3), np.uint8))
    assert (
        cli.main([str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--max-pixels", "100"]) == 1
    )
    err = capsys.readouterr().err
    assert "more than the limit" in err and "convert it to TIFF" in err


@pytest.mark.parametrize("shape", [(96, 128, 3), (20, 300, 3), (300, 17)])
@pytest.mark.parametrize("tile", ["2048", "1048576"])
def test_cli_a_tile_larger_than_the_image_is_capped_to_it(
    tmp_path: Path, rng: np.random.Generator, shape: tuple[int, ...], tile: str
) -> None:
    """The file and the memory follow the image, not ``--tile`` (was a 6.4 GB file)."""
    image = hazy_image(rng, shape, np.uint16)
    src = write_tiff(tmp_path / "in.tif", image, tile=(16, 16))
    out = tmp_path / "out"
    assert cli.main([str(src), "-o", str(out), "-q", "--method", "dcp", "--tile", tile]) == 0
    written = out / "in.tif"
    # the padding of the edge tiles to a multiple of 16 on each side, and the header
    assert written.stat().st_size < 2 * image.nbytes + 8192
    np.testing.assert_array_equal(tifffile.imread(written), dehaze.DarkChannelPrior()(image).image)
    with tifffile.TiffFile(written) as tiff:
        page = tiff.pages[0]
        assert (page.tilelength, page.tilewidth) == tuple(-(-n // 16) * 16 for n in shape[:2])


def _sparse_tiff(path: Path, width: int, height: int, tile: int = 512) -> Path:
    """A gray TIFF declaring ``width``×``height`` whose tiles are all empty (byte count 0).

    Readers take empty tiles as zeros, so a file of a few kilobytes declares any size.
    """
    import struct

    count = -(-width // tile) * -(-height // tile)
    entries = [  # (tag, type, values): LONG 4, SHORT 3
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [8]),
        (259, 3, [1]),
        (262, 3, [1]),
        (277, 3, [1]),
        (284, 3, [1]),
        (322, 4, [tile]),
        (323, 4, [tile]),
        (324, 4, [0] * count),
        (325, 4, [0] * count),
    ]
    head = struct.pack("<2sHIH", b"II", 42, 8, len(entries))
    outside = 8 + 2 + 12 * len(entries) + 4
    extra = b""
    for tag, kind, values in entries:
        packed = struct.pack(f"<{len(values)}{'I' if kind == 4 else 'H'}", *values)
        if len(packed) <= 4:
            head += struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\0")
        else:
            head += struct.pack("<HHII", tag, kind, len(values), outside + len(extra))
            extra += packed
    path.write_bytes(head + struct.pack("<I", 0) + extra)
    return path


def test_cli_refuses_a_sparse_tiff_far_larger_than_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 13 kB file declaring 400 megapixels of empty tiles is refused, nothing written."""
    src = _sparse_tiff(tmp_path / "sparse.tif", 20000, 20000)
    size = src.stat().st_size
    assert size < 20_000 and tiff_pixels(src) == 400_000_000  # tiled path: above 100 MP
    out = tmp_path / "out"
    assert cli.main([str(src), "-o", str(out), "-q", "--method", "dcp"]) == 1
    err = capsys.readouterr().err
    assert "20000×20000 pixels (400.0 megapixels, 400,000,000 bytes" in err
    assert f"in a file of {size:,} bytes, {400_000_000 / size:,.0f} times its size" in err
    assert "decompression bomb or a mostly empty (sparse) file" in err
    assert "pass --max-pixels N (N ≥ 400000000) to process it anyway" in err
    assert not out.exists() or not list(out.iterdir())


def test_cli_max_pixels_accepts_a_sparse_tiff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _sparse_tiff(tmp_path / "sparse.tif", 64, 48, tile=16)  # 3072 bytes in ~250
    ratio = 64 * 48 / src.stat().st_size
    assert 5 < ratio < 20
    monkeypatch.setattr(largeimage, "MAX_EXPANSION", 5)  # the real rule, at a small size
    out = tmp_path / "out"
    args = [str(src), "-o", str(out), "-q", "--method", "dcp", "--tile", "16"]
    assert cli.main(args) == 1
    assert "(sparse) file" in capsys.readouterr().err
    assert not out.exists() or not list(out.iterdir())
    assert cli.main([*args, "--max-pixels", str(64 * 48)]) == 0  # the opt-in
    expected = dehaze.DarkChannelPrior()(np.zeros((48, 64), np.uint8)).image
    np.testing.assert_array_equal(tifffile.imread(out / "sparse.tif"), expected)
    monkeypatch.setattr(largeimage, "MAX_EXPANSION", 20)  # within the ratio: no option needed
    assert cli.main([*args, "--overwrite"]) == 0


def test_check_expansion_passes_ordinary_files(tmp_path: Path) -> None:
    flat = write_tiff(
        tmp_path / "flat.tif",
        np.zeros((512, 512, 3), np.uint8),
        tile=(256, 256),
        compression="zlib",
    )
    largeimage.check_expansion(flat)  # Deflate's best, about 1000:1 at most, is accepted
    with pytest.raises(ValueError, match=r"512×512 pixels .* pass a larger max_ratio"):
        largeimage.check_expansion(flat, max_ratio=10)


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if "little haze found" in line]


@pytest.mark.parametrize("channels", [3, 1, 4])
def test_cli_tiled_path_says_when_it_changed_little_as_the_normal_path_does(
    tmp_path: Path,
    rng: np.random.Generator,
    capsys: pytest.CaptureFixture[str],
    channels: int,
) -> None:
    shape = (70, 90) if channels == 1 else (70, 90, channels)
    flat = np.clip(0.85 + rng.normal(0, 0.003, shape), 0, 1)  # fog or sky: no signal
    images = {
        "black": np.zeros(shape, np.uint8),
        "flat": np.rint(flat * 255).astype(np.uint8),
        "hazy": hazy_image(rng, shape, np.uint8),
    }
    if channels == 4:
        for image in images.values():
            image[:, :, 3] = rng.integers(0, 256, shape[:2])
    (tmp_path / "in").mkdir()
    for name, image in images.items():
        write_tiff(tmp_path / "in" / f"{name}.tif", image, rowsperstrip=16)
    tiled = tmp_path / "tiled"
    assert cli.main([str(tmp_path / "in"), "-o", str(tiled), "--tile", "32"]) == 0
    got = _notes(capsys.readouterr().err)
    assert [Path(line.split(": ")[1]).name for line in got] == ["black.tif", "flat.tif"]
    for line, name in zip(got, ["black", "flat"], strict=True):
        colour = slice(0, 3) if channels == 4 else slice(None)
        change = cli.mean_change(
            images[name][..., colour], tifffile.imread(tiled / f"{name}.tif")[..., colour]
        )
        assert f"changed by {change:.1f} grey levels on average" in line
    if channels == 4:
        return  # OpenCV's reader of the normal path alters the colours of RGBA TIFFs
    whole = tmp_path / "whole"
    assert cli.main([str(tmp_path / "in"), "-o", str(whole)]) == 0
    expected = _notes(capsys.readouterr().err)
    # the same notes, the same figures: the tiles' sums add up to the whole image's
    assert [line.replace(str(tiled), "") for line in got] == [
        line.replace(str(whole), "") for line in expected
    ]


@pytest.mark.parametrize("value", [2**64 - 1, 2**63 - 10])
def test_bigtiff_offsets_beyond_int64_are_a_clear_error(tmp_path: Path, value: int) -> None:
    # an offset near 2**64 raised OverflowError, one near 2**63 wrapped the end check and
    # failed later with "[Errno 22] Invalid argument"
    import struct

    import tifffile

    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((37, 29, 3), np.uint8), bigtiff=True, rowsperstrip=37)
    with tifffile.TiffFile(path) as tiff:
        offset = int(tiff.pages[0].dataoffsets[0])
    data = path.read_bytes()
    packed = struct.pack("<Q", offset)
    assert data.count(packed) == 1
    path.write_bytes(data.replace(packed, struct.pack("<Q", value)))
    with pytest.raises(ValueError, match=f"data offset or byte count of {value}, beyond"):
        TiffSource(path)


def test_a_tile_far_larger_than_the_image_decodes_only_the_image_rows(tmp_path: Path) -> None:
    # a 1×1 image stored in one 16000×16000 Deflate tile (a 249 kB file) made TiffSource
    # inflate the whole tile: 256 MB cached, 0.5-0.7 GB of memory
    import tifffile

    path = tmp_path / "big_tile.tif"
    with tifffile.TiffWriter(path) as writer:  # one 2048×2048 tile for a 3×5 image
        writer.write(np.zeros((3, 5), np.uint8), tile=(2048, 2048), compression="zlib")
    with TiffSource(path) as source:
        np.testing.assert_array_equal(source[:, :], np.zeros((3, 5), np.uint8))
        assert source._cached_bytes <= 3 * 2048 + largeimage._CACHE_ENTRY_BYTES


def test_the_cache_counts_what_an_entry_costs_beyond_its_pixels(tmp_path: Path) -> None:
    # a million 1-byte tiles were counted as 1 MB of a 256 MB budget, in ~500 MB of memory
    import tifffile

    image = np.arange(48 * 48, dtype=np.uint16).reshape(48, 48).astype(np.uint8)
    path = tmp_path / "small_tiles.tif"
    tifffile.imwrite(path, image, tile=(16, 16))
    budget = 4 * (16 * 16 + largeimage._CACHE_ENTRY_BYTES)
    with TiffSource(path, cache_bytes=budget) as source:
        np.testing.assert_array_equal(source[:, :], image)
        assert len(source._cache) <= 4 and source._cached_bytes <= budget
