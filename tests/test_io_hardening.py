"""Image and file I/O under hostile or unusual input: crafted files, alpha, EXIF, bombs."""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import dehaze.io as dio
from dehaze._files import AtomicFile, remove_stale_parts
from dehaze.io import imread, imwrite, merge_alpha, split_alpha

# --- the atomic writer ----------------------------------------------------------------------


def test_atomic_writer_never_touches_the_umask(tmp_path: Path, monkeypatch) -> None:
    old = os.umask(0o027)
    try:
        # os.umask is process-wide and not thread-safe: the writer must not call it
        def forbidden(mask: int) -> int:
            raise AssertionError("os.umask called")

        monkeypatch.setattr(os, "umask", forbidden)
        path = imwrite(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8))
        with AtomicFile(tmp_path / "b.bin", overwrite=False) as tmp:
            Path(tmp.name).write_bytes(b"x")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.bin"]


def test_atomic_file_discards_on_error_and_never_clobbers(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    with pytest.raises(RuntimeError), AtomicFile(target, overwrite=False) as tmp:
        Path(tmp.name).write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    target.write_text("mine")
    with pytest.raises(FileExistsError) as raised, AtomicFile(target, overwrite=False) as tmp:
        Path(tmp.name).write_text("theirs")
    assert str(target) in str(raised.value) and ".part" not in str(raised.value)
    assert target.read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]
    with AtomicFile(target, overwrite=True) as tmp:
        Path(tmp.name).write_text("new")
    assert target.read_text() == "new"


def test_remove_stale_parts_only_old_files_of_this_tool(tmp_path: Path) -> None:
    old = [
        tmp_path / ".clip.mp4.ab12cd_z.part.mp4",  # a killed video run
        tmp_path / ".a.png.0123abcd.part",  # a killed image write
    ]
    keep = [
        tmp_path / "clip.part.mp4",  # not hidden: a user's file
        tmp_path / ".notes.txt",
        tmp_path / ".x.png.ABCDEFGH.part",  # upper case: not a name this tool makes
    ]
    for path in old + keep:
        path.write_bytes(b"x")
    past = time.time() - 3600
    for path in old + keep:
        os.utime(path, (past, past))
    fresh = tmp_path / ".b.png.zzzzzzzz.part"  # a run still writing
    fresh.write_bytes(b"x")
    start = time.time() - 60
    removed = remove_stale_parts(tmp_path, older_than=start)
    assert sorted(removed) == sorted(old)
    assert sorted(tmp_path.iterdir()) == sorted([*keep, fresh])
    assert remove_stale_parts(tmp_path / "missing", older_than=start) == []


# --- EXIF orientation ---------------------------------------------------------------------


def _save_with_orientation(path: Path, rgb: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    options: dict[str, object] = {"exif": exif}
    if path.suffix == ".jpg":
        options.update(quality=100, subsampling=0)
    if path.suffix == ".webp":
        options.update(lossless=True)
    Image.fromarray(rgb).save(path, **options)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_a_viewer(
    tmp_path: Path, rng, suffix: str, orientation: int
) -> None:
    rgb = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    path = tmp_path / f"o{suffix}"
    _save_with_orientation(path, rgb, orientation)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)
    got = imread(path)
    assert got.shape == expected.shape
    tolerance = 4 if suffix == ".jpg" else 0
    assert np.abs(got.astype(int) - expected).max() <= tolerance


def test_written_file_carries_no_contradicting_orientation(tmp_path: Path, rng) -> None:
    rgb = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    src = tmp_path / "phone.jpg"
    _save_with_orientation(src, rgb, 6)
    upright = imread(src)
    assert upright.shape == (9, 6, 3)
    for suffix in (".jpg", ".png", ".tif", ".webp"):
        out = imwrite(tmp_path / f"out{suffix}", upright)
        with Image.open(out) as im:
            assert im.getexif().get(0x0112, 1) == 1
        assert imread(out).shape == (9, 6, 3)


# --- alpha ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_rgba_round_trip_keeps_alpha(tmp_path: Path, rng, suffix: str) -> None:
    rgba = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    if suffix == ".webp":  # WebP is lossless for 8-bit only at top quality; keep it exact
        rgba[..., 3] = np.where(rgba[..., 3] > 127, 255, 0)
    path = imwrite(tmp_path / f"a{suffix}", rgba)
    back = imread(path)
    assert back.shape == (7, 5, 4)
    np.testing.assert_array_equal(back[..., 3], rgba[..., 3])
    if suffix != ".webp":
        np.testing.assert_array_equal(back, rgba)
    with Image.open(path) as im:  # the file itself is RGBA, red where we put red
        assert im.mode == "RGBA"
        if suffix != ".webp":
            np.testing.assert_array_equal(np.asarray(im), rgba)


def test_rgba16_round_trip(tmp_path: Path, rng) -> None:
    rgba = rng.integers(0, 65536, (4, 6, 4), dtype=np.uint16)
    np.testing.assert_array_equal(imread(imwrite(tmp_path / "a.png", rgba)), rgba)


def test_gray_alpha_is_read_as_two_channels(tmp_path: Path, rng) -> None:
    la = rng.integers(0, 256, (5, 8, 2), dtype=np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    got = imread(path)
    assert got.shape == (5, 8, 2)
    np.testing.assert_array_equal(got, la)
    # written back as RGBA with the gray value in each colour, alpha unchanged
    back = imread(imwrite(tmp_path / "out.png", got))
    np.testing.assert_array_equal(back[..., 3], la[..., 1])
    for channel in range(3):
        np.testing.assert_array_equal(back[..., channel], la[..., 0])


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".bmp", ".ppm"])
@pytest.mark.parametrize("channels", [2, 4])
def test_alpha_is_refused_where_the_format_cannot_store_it(
    tmp_path: Path, suffix: str, channels: int
) -> None:
    with pytest.raises(ValueError, match="cannot store an alpha channel"):
        imwrite(tmp_path / f"a{suffix}", np.zeros((3, 3, channels), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_split_and_merge_alpha(rng) -> None:
    rgba = rng.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    color, alpha = split_alpha(rgba)
    assert color.shape == (4, 5, 3) and alpha is not None
    np.testing.assert_array_equal(merge_alpha(color, alpha), rgba)
    gray, alpha2 = split_alpha(rgba[..., 2:])
    assert gray.shape == (4, 5) and alpha2 is not None
    np.testing.assert_array_equal(merge_alpha(gray, alpha2), rgba[..., 2:])
    plain, none = split_alpha(rgba[..., :3])
    assert none is None and merge_alpha(plain, None) is plain
    # a float colour result takes the alpha on its own scale
    merged = merge_alpha(color.astype(np.float32) / 255, alpha)
    assert merged.dtype == np.float32
    np.testing.assert_array_equal(np.rint(merged[..., 3] * 255).astype(np.uint8), alpha)
    with pytest.raises(ValueError, match="alpha has shape"):
        merge_alpha(color, alpha[:2])
    with pytest.raises(ValueError, match="C in 1–4"):
        split_alpha(np.zeros((2, 2, 5)))


# --- damaged, animated and oversized files -----------------------------------------------


def _jpeg_bytes(rng, exif_thumbnail: bool = False) -> bytes:
    rgb = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", rgb)
    assert ok
    raw = data.tobytes()
    if exif_thumbnail:
        # an APP1 segment holding a complete little JPEG (with its own FF D9) after SOI
        ok, thumb = cv2.imencode(".jpg", rgb[:8, :8])
        payload = b"Exif\x00\x00" + thumb.tobytes()
        raw = raw[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + raw[2:]
    return raw


def test_truncated_jpeg_is_refused(tmp_path: Path, rng) -> None:
    full = _jpeg_bytes(rng, exif_thumbnail=True)
    assert dio._jpeg_is_complete(full)
    assert dio._jpeg_is_complete(full + b"camera trailer \xff\xd8 data")  # appended data
    good = tmp_path / "good.jpg"
    good.write_bytes(full)
    assert imread(good).shape == (64, 80, 3)
    for cut in (len(full) - 2, len(full) * 3 // 4, 700):
        assert not dio._jpeg_is_complete(full[:cut])
        bad = tmp_path / f"cut{cut}.jpg"
        bad.write_bytes(full[:cut])
        with pytest.raises(ValueError, match="truncated"):
            imread(bad)


def test_truncated_png_is_refused(tmp_path: Path, rng) -> None:
    ok, data = cv2.imencode(".png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    bad = tmp_path / "cut.png"
    bad.write_bytes(data.tobytes()[:-12])  # without its IEND chunk
    with pytest.raises(ValueError, match="truncated"):
        imread(bad)


def test_animated_and_multipage_files_are_refused(tmp_path: Path, rng) -> None:
    frames = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(3)]
    for name in ("anim.gif", "anim.webp", "anim.png", "pages.tif"):
        path = tmp_path / name
        frames[0].save(path, save_all=True, append_images=frames[1:])
        with pytest.raises(ValueError, match="holds 3 frames"):
            imread(path)
    single = tmp_path / "one.gif"
    frames[0].save(single)
    assert imread(single).shape[:2] == (8, 8)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width × height RGB pixels whose data is a few bytes (a bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (3 * width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20000, 20000))

    def no_decoding(*args: object) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(dio.cv2, "imdecode", no_decoding)
    with pytest.raises(ValueError, match=r"20000×20000 = 400,000,000 pixels.*limit of 200,000,000"):
        imread(bomb)
    with pytest.raises(ValueError, match="limit of 1,000 "):
        imread(bomb, max_pixels=1000)
    monkeypatch.undo()
    small = imwrite(tmp_path / "small.png", np.zeros((30, 40, 3), np.uint8))
    assert imread(small, max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(ValueError, match="more than the limit"):
        imread(small, max_pixels=1199)
    for bad in (0, -5, 1.5, True, "100"):
        with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
            imread(small, max_pixels=bad)  # type: ignore[arg-type]


def test_header_pixels_reads_the_declared_size_only(tmp_path: Path, rng) -> None:
    imwrite(tmp_path / "a.jpg", rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))
    imwrite(tmp_path / "b.png", rng.integers(0, 256, (7, 9), dtype=np.uint8))
    (tmp_path / "bomb.png").write_bytes(_png_header_only(20000, 20000))
    frames = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    assert dio.header_pixels(tmp_path / "a.jpg") == 30 * 50
    assert dio.header_pixels(tmp_path / "b.png") == 7 * 9
    assert dio.header_pixels(tmp_path / "bomb.png") == 20000 * 20000  # nothing decoded
    assert dio.header_pixels(tmp_path / "anim.gif") == 3 * 8 * 8
    assert dio.header_pixels(tmp_path / "junk.png") is None
    assert dio.header_pixels(tmp_path / "missing.png") is None


def test_pillow_own_bomb_limit_does_not_interfere(tmp_path: Path) -> None:
    # Pillow warns above 89 MP and refuses above 179 MP through global state; imread's
    # limit (default 200 MP) is the only one: a 180 MP header is read, not refused by Pillow
    path = tmp_path / "big.png"
    path.write_bytes(_png_header_only(18000, 10000))
    header = dio._read_header(path.read_bytes())
    assert header is not None and (header.width, header.height) == (18000, 10000)


# --- one list, one reader ----------------------------------------------------------------


def test_suffix_lists_are_defined_once() -> None:
    from dehaze import cli, datasets, video

    assert cli.IMAGE_SUFFIXES is dio.IMAGE_SUFFIXES is datasets.IMAGE_SUFFIXES
    assert cli.VIDEO_SUFFIXES is dio.VIDEO_SUFFIXES
    assert video.VIDEO_CODECS is dio.VIDEO_CODECS
    assert set(dio.VIDEO_CODECS) == set(dio.VIDEO_SUFFIXES)


def test_evaluation_pairs_refuse_alpha(tmp_path: Path, rng) -> None:
    from dehaze.datasets import ImagePair, load_pair

    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    hazy = imwrite(tmp_path / "hazy.png", np.dstack([rgb, np.full((6, 8), 9, np.uint8)]))
    clear = imwrite(tmp_path / "clear.png", rgb)
    with pytest.raises(ValueError, match="hazy.png has an alpha channel"):
        load_pair(ImagePair("x", hazy, clear, "t"))
    plain = imwrite(tmp_path / "plain.png", rgb)
    got, ref = load_pair(ImagePair("x", plain, clear, "t"))
    np.testing.assert_array_equal(got, ref)


def test_garbage_is_not_taken_for_an_image_of_some_size(tmp_path: Path, rng) -> None:
    for k in range(20):
        path = tmp_path / f"g{k}.png"
        path.write_bytes(rng.integers(0, 256, 64 + 50 * k, dtype=np.uint8).tobytes())
        with pytest.raises(ValueError, match="cannot decode"):
            imread(path)


# --- what OpenCV alone would lose: TIFF gray+alpha, gray tRNS, PGM/PPM maxval ----------------


def _tiff_gray_alpha(dtype: type, rng, shape: tuple[int, int] = (6, 9)) -> np.ndarray:
    top = np.iinfo(dtype).max
    return rng.integers(0, top, (*shape, 2), endpoint=True, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_gray_alpha_tiff_keeps_its_alpha(tmp_path: Path, rng, dtype: type, planar: str) -> None:
    import tifffile

    la = _tiff_gray_alpha(dtype, rng)
    path = tmp_path / "la.tif"
    stored = la if planar == "contig" else np.moveaxis(la, -1, 0)
    tifffile.imwrite(
        path, stored, photometric="minisblack", extrasamples=["unassalpha"], planarconfig=planar
    )
    got = imread(path)
    assert got.shape == (6, 9, 2) and got.dtype == dtype  # the layout split_alpha expects
    np.testing.assert_array_equal(got, la)
    gray, alpha = split_alpha(got)
    assert alpha is not None
    np.testing.assert_array_equal(alpha, la[..., 1])


def test_gray_alpha_tiff_matches_a_gray_alpha_png(tmp_path: Path, rng) -> None:
    import tifffile

    la = _tiff_gray_alpha(np.uint8, rng)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    tifffile.imwrite(tmp_path / "la.tif", la, photometric="minisblack", extrasamples=[2])
    np.testing.assert_array_equal(imread(tmp_path / "la.tif"), imread(tmp_path / "la.png"))


@pytest.mark.parametrize("colour", ["gray", "rgb"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_with_alpha_upright_and_unpremultiplied(
    tmp_path: Path, rng, colour: str, orientation: int
) -> None:
    import tifffile

    from dehaze.largeimage import TiffSource

    samples = 2 if colour == "gray" else 4
    stored = rng.integers(0, 256, (6, 9, samples), dtype=np.uint8)
    path = tmp_path / "a.tif"
    tifffile.imwrite(
        path,
        stored,
        photometric="minisblack" if colour == "gray" else "rgb",
        extrasamples=["unassalpha"],
        extratags=[(274, "H", 1, orientation, False)],
    )
    got = imread(path)
    with TiffSource(path) as source:  # the tiled reader, with its own orientation code
        np.testing.assert_array_equal(got, source[:, :])
    if orientation == 1:  # the samples as stored: OpenCV premultiplied RGBA colours
        np.testing.assert_array_equal(got, stored)
    if orientation == 6:  # rotated 90° clockwise to be upright
        np.testing.assert_array_equal(got, np.rot90(stored, k=-1))


def test_alpha_declared_but_not_decoded_is_refused(tmp_path: Path, rng, monkeypatch) -> None:
    la = _tiff_gray_alpha(np.uint8, rng)
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    real = cv2.imdecode

    def without_alpha(buffer: np.ndarray, flags: int) -> np.ndarray:  # a decoder dropping it
        return real(buffer, cv2.IMREAD_GRAYSCALE)

    monkeypatch.setattr(dio.cv2, "imdecode", without_alpha)
    with pytest.raises(ValueError, match=r"la\.png.*declares an alpha channel \(mode LA\)"):
        imread(path)


def _png_gray_with_key(path: Path, gray: np.ndarray, key: int, bits: int | None = None) -> None:
    options: dict[str, object] = {"transparency": key}
    if bits is not None:
        options["bits"] = bits
    Image.fromarray(gray).save(path, **options)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_png_with_trns_key_keeps_its_transparency(tmp_path: Path, rng, dtype) -> None:
    top = np.iinfo(dtype).max
    gray = rng.integers(0, top, (7, 10), endpoint=True, dtype=dtype)
    key = int(gray[2, 3])
    gray[0] = key  # a whole transparent row
    path = tmp_path / "key.png"
    _png_gray_with_key(path, gray, key)
    with Image.open(path) as im:  # the file is what this test means: colour type 0 + tRNS
        assert im.info["transparency"] == key
    assert path.read_bytes()[25] == 0
    got = imread(path)
    assert got.shape == (7, 10, 2) and got.dtype == dtype
    np.testing.assert_array_equal(got[..., 0], gray)
    np.testing.assert_array_equal(got[..., 1], np.where(gray == key, 0, top))
    assert (got[..., 1] == 0).sum() >= 10


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_bit_gray_png_trns_key_on_the_decoded_scale(tmp_path: Path, bits: int) -> None:
    levels = 1 << bits
    stored = (np.arange(4 * levels) % levels).reshape(4, levels).astype(np.uint8)
    path = tmp_path / "low.png"
    if bits == 1:
        Image.fromarray(stored.astype(bool)).save(path, transparency=1)
    else:
        _png_gray_with_key(path, stored, 1, bits)
    assert path.read_bytes()[24:26] == bytes([bits, 0])
    got = imread(path)
    assert got.shape == (4, levels, 2)
    np.testing.assert_array_equal(got[..., 1], np.where(stored == 1, 0, 255))
    np.testing.assert_array_equal(got[..., 0], stored * (255 // (levels - 1)))


def test_rgb_and_palette_trns_still_read_as_rgba(tmp_path: Path, rng) -> None:
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    key = tuple(int(v) for v in rgb[1, 1])
    Image.fromarray(rgb).save(tmp_path / "rgb.png", transparency=key)
    got = imread(tmp_path / "rgb.png")
    assert got.shape == (5, 6, 4) and got[1, 1, 3] == 0
    # a plain gray PNG gets no alpha
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    assert imread(tmp_path / "gray.png").shape == (5, 6)


def _pnm(magic: bytes, width: int, height: int, maxval: int, body: bytes) -> bytes:
    return b"%s\n# made by a test\n%d %d\n%d\n" % (magic, width, height, maxval) + body


@pytest.mark.parametrize("maxval", [1, 100, 254, 255, 256, 1000, 65534, 65535])
@pytest.mark.parametrize("color", [False, True])
def test_pnm_samples_are_scaled_from_maxval(tmp_path: Path, rng, maxval: int, color) -> None:
    shape = (5, 7, 3) if color else (5, 7)
    samples = rng.integers(0, maxval, shape, endpoint=True)
    samples.flat[0], samples.flat[1] = 0, maxval
    stored = ">u2" if maxval > 255 else "u1"
    top = 65535 if maxval > 255 else 255
    expected = np.floor(samples * top / maxval + 0.5).astype(np.uint16 if top > 255 else np.uint8)
    binary = _pnm(b"P6" if color else b"P5", 7, 5, maxval, samples.astype(stored).tobytes())
    plain = _pnm(
        b"P3" if color else b"P2", 7, 5, maxval, " ".join(map(str, samples.ravel())).encode()
    )
    for name, data in (("binary", binary), ("plain", plain)):
        path = tmp_path / f"{name}.{'ppm' if color else 'pgm'}"
        path.write_bytes(data)
        got = imread(path)
        assert got.dtype == expected.dtype and got.shape == shape, name
        np.testing.assert_array_equal(got, expected, err_msg=name)
        assert got.flat[1] == top  # maxval is white, as Pillow and viewers show it


def test_pnm_scaling_is_lossless_and_rounds_to_nearest() -> None:
    for maxval in (2, 3, 100, 1000, 40000):
        top = 65535 if maxval > 255 else 255
        values = np.arange(maxval + 1)
        scaled = (values * 2 * top + maxval) // (2 * maxval)
        assert len(np.unique(scaled)) == maxval + 1  # injective
        assert np.abs(scaled - values * top / maxval).max() <= 0.5


def test_pnm_read_like_pillow(tmp_path: Path, rng) -> None:
    samples = rng.integers(0, 100, (6, 8), endpoint=True, dtype=np.uint8)
    path = tmp_path / "m.pgm"
    path.write_bytes(_pnm(b"P5", 8, 6, 100, samples.tobytes()))
    with Image.open(path) as im:  # Pillow scales maxval 100 to 255 too
        pillow = np.asarray(im).astype(int)
    assert np.abs(imread(path).astype(int) - pillow).max() <= 1


def test_damaged_pnm_is_refused(tmp_path: Path) -> None:
    good = _pnm(b"P5", 4, 3, 100, bytes(range(12)))
    cases = {
        "cut.pgm": (good[:-3], "truncated"),
        "two.pgm": (good + good, "bytes after its 4×3 image"),
        "over.pgm": (_pnm(b"P5", 4, 3, 10, bytes(range(12))), "sample value 11 above .* 10"),
        "plain.pgm": (_pnm(b"P2", 4, 3, 9, b"1 2 3"), "holds 3 values"),
        "plainover.pgm": (_pnm(b"P2", 2, 1, 9, b"1 12"), "sample value 12 above"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=message):
            imread(tmp_path / name)
    (tmp_path / "ok.pgm").write_bytes(good + b"\n")  # trailing whitespace is fine
    assert imread(tmp_path / "ok.pgm").shape == (3, 4)


# --- the whole-image and tile-by-tile TIFF readers accept the same files --------------------


def _tiff_cases(path_for, rng) -> dict[str, Path]:
    import tifffile

    rgb = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (16, 24), dtype=np.uint8)
    cases = {}
    cases["premultiplied"] = path_for("premult.tif")
    tifffile.imwrite(
        cases["premultiplied"], np.dstack([rgb, alpha]), photometric="rgb", extrasamples=[1]
    )
    cases["thumbnail"] = path_for("thumb.tif")
    with tifffile.TiffWriter(cases["thumbnail"]) as tif:
        tif.write(rgb, photometric="rgb")
        tif.write(rgb[::4, ::4].copy(), photometric="rgb", subfiletype=1)
    cases["two pages"] = path_for("pages.tif")
    with tifffile.TiffWriter(cases["two pages"]) as tif:
        tif.write(rgb, photometric="rgb")
        tif.write(rgb, photometric="rgb")
    cases["gray alpha"] = path_for("la.tif")
    tifffile.imwrite(
        cases["gray alpha"],
        np.dstack([rgb[..., 0], alpha]),
        photometric="minisblack",
        extrasamples=[2],
    )
    cases["two extra samples"] = path_for("spp5.tif")
    tifffile.imwrite(
        cases["two extra samples"],
        np.dstack([rgb, alpha, alpha]),
        photometric="rgb",
        extrasamples=[2, 0],
    )
    return cases


def test_whole_and_tiled_tiff_readers_agree(tmp_path: Path, rng) -> None:
    from dehaze.largeimage import TiffSource

    cases = _tiff_cases(lambda name: tmp_path / name, rng)
    for name, path in cases.items():
        try:
            with TiffSource(path) as source:
                tiled: np.ndarray | str = source[:, :]
        except ValueError as exc:
            tiled = str(exc)
        try:
            whole: np.ndarray | str = imread(path)
        except ValueError as exc:
            whole = str(exc)
        if isinstance(tiled, str):
            assert isinstance(whole, str), f"{name}: only the tiled reader refuses it"
        else:
            assert not isinstance(whole, str), f"{name}: only imread refuses it: {whole}"
            np.testing.assert_array_equal(whole, tiled, err_msg=name)
    with pytest.raises(ValueError, match="premultiplied \\(associated\\) alpha"):
        imread(cases["premultiplied"])
    with pytest.raises(ValueError, match="holds 2 frames"):
        imread(cases["two pages"])
    assert imread(cases["thumbnail"]).shape == (16, 24, 3)  # the full-resolution page
    with pytest.raises(ValueError, match="2 extra samples"):
        imread(cases["two extra samples"])


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_lzw_tiff_with_alpha_is_read_as_stored(tmp_path: Path, mode: str) -> None:
    # LZW, image editors' usual compression for RGBA TIFFs, needs imagecodecs in tifffile:
    # Pillow decodes the 8-bit ones (OpenCV would premultiply or drop the alpha)
    channels = 4 if mode == "RGBA" else 2
    pixels = np.random.default_rng(5).integers(0, 256, (30, 41, channels), dtype=np.uint8)
    path = tmp_path / "lzw.tif"
    Image.fromarray(pixels, mode).save(path, compression="tiff_lzw")
    np.testing.assert_array_equal(imread(path), pixels)


@pytest.mark.parametrize("channels", [2, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiff_with_alpha_is_written_unassociated_and_read_back_by_both_readers(
    tmp_path: Path, channels: int, dtype: type
) -> None:
    # OpenCV wrote four samples and no ExtraSamples tag, which TiffSource refused
    import tifffile

    from dehaze.largeimage import TiffSource

    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(6).integers(0, top + 1, (21, 34, channels), dtype=dtype)
    path = imwrite(tmp_path / "a.tif", pixels)
    with tifffile.TiffFile(path) as tiff:
        assert tuple(int(e) for e in tiff.pages[0].extrasamples) == (2,)
    np.testing.assert_array_equal(imread(path), pixels)
    with TiffSource(path) as source:
        np.testing.assert_array_equal(source[:, :], pixels)


def test_a_cmyk_tiff_reads_as_rgb_without_a_made_up_alpha(tmp_path: Path) -> None:
    # OpenCV returns a CMYK TIFF as colour plus an opaque fourth channel: not an alpha,
    # which would make every alpha-less output format refuse the file
    rgb = np.random.default_rng(7).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.tif")
    got = imread(tmp_path / "c.tif")
    assert got.shape == (20, 30, 3)
    with Image.open(tmp_path / "c.tif") as image:
        np.testing.assert_array_equal(got, np.asarray(image.convert("RGB")))


@pytest.mark.parametrize(
    ("dtype", "layout"),
    [
        (np.uint16, {"planarconfig": "separate"}),
        (np.uint8, {"tile": (16, 16)}),
        (np.uint16, {"tile": (16, 32), "compression": "zlib", "predictor": 2}),
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_planar_and_tiled_tiffs_read_as_stored(
    tmp_path: Path, dtype: type, layout: dict[str, object], channels: int
) -> None:
    # OpenCV 5 decoded 16-bit planar-separate RGB as garbage and refused some valid tiled
    # files that the tile-by-tile reader reads: both readers now give the stored pixels
    import tifffile

    from dehaze.largeimage import TiffSource

    top = np.iinfo(dtype).max
    shape = (37, 29) if channels == 1 else (37, 29, 3)
    pixels = np.random.default_rng(8).integers(0, top + 1, shape, dtype=dtype)
    separate = layout.get("planarconfig") == "separate" and channels == 3
    stored = np.moveaxis(pixels, -1, 0) if separate else pixels
    photometric = "minisblack" if channels == 1 else "rgb"
    tifffile.imwrite(tmp_path / "a.tif", stored, photometric=photometric, **layout)
    np.testing.assert_array_equal(imread(tmp_path / "a.tif"), pixels)
    with TiffSource(tmp_path / "a.tif") as source:
        np.testing.assert_array_equal(source[:, :], pixels)


def test_a_planar_16_bit_tiff_tifffile_cannot_decode_is_refused_not_misread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tifffile lacks LZW and JPEG (no imagecodecs); OpenCV would return garbage for this
    # layout, so the file is refused; an 8-bit tiled one falls back to OpenCV
    import tifffile

    def cannot(*args: object) -> None:
        raise ValueError("cannot decode (as if LZW)")

    rgb16 = np.random.default_rng(9).integers(0, 65536, (3, 20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", rgb16, photometric="rgb", planarconfig="separate")
    rgb8 = np.random.default_rng(9).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "t.tif", rgb8, photometric="rgb", tile=(16, 16), compression="zlib")
    monkeypatch.setattr(dio, "_read_tiff_with_tifffile", cannot)
    with pytest.raises(ValueError, match="as if LZW"):
        imread(tmp_path / "p.tif")
    np.testing.assert_array_equal(imread(tmp_path / "t.tif"), rgb8)  # OpenCV reads this one
