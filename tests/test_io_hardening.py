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
    with pytest.raises(ValueError, match=r"20000×20000 = 400\.0 megapixels.*limit of 200"):
        imread(bomb)
    with pytest.raises(ValueError, match="limit of 0.001 megapixels"):
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
