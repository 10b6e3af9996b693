"""Video dehazing: temporal smoothing of the atmospheric light, streaming, file round trip."""

from __future__ import annotations

import csv
import itertools
import os
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from dehaze import DarkChannelPrior, RobustDCP
from dehaze.video import DEFAULT_LIGHT_WEIGHT, dehaze_frames, dehaze_video

METHOD = DarkChannelPrior(guided_radius=8, patch_radius=3)
HAZE = np.array([0.80, 0.82, 0.86])


def hazy_frame(
    k: int, height: int = 48, width: int = 64, light: np.ndarray = HAZE, flicker: bool = False
) -> np.ndarray:
    """A hazy scene with a moving dark object; on odd frames a large white object if flicker."""
    yy, xx = np.mgrid[0:height, 0:width]
    t = 0.35 + 0.5 * yy / height  # haze thicker at the top
    scene = 0.15 + 0.25 * ((xx + 3 * k) % 16 < 8)[..., None] * np.array([0.6, 0.8, 1.0])
    frame = scene * t[..., None] + light * (1.0 - t[..., None])
    if flicker and k % 2 == 1:
        frame[2:22, 2:22] = (1.0, 1.0, 1.0)  # larger than the 7×7 patch: He's rule picks it
    return np.clip(frame, 0.0, 1.0).astype(np.float32)


def write_clip(path: Path, frames: list[np.ndarray], fps: float, fourcc: str) -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        rgb = np.rint(frame * 255).astype(np.uint8)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def read_clip(path: Path) -> tuple[int, float, int, int, list[np.ndarray]]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    fps = capture.get(cv2.CAP_PROP_FPS)
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    return len(frames), fps, width, height, frames


# --- the frame generator ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_without_smoothing_each_frame_is_the_single_image_pipeline(dtype: type) -> None:
    frames = [hazy_frame(k, flicker=True) for k in range(4)]
    if dtype is np.uint8:
        frames = [np.rint(f * 255).astype(np.uint8) for f in frames]
    else:
        frames = [f.astype(dtype) for f in frames]
    out = list(dehaze_frames(frames, METHOD, light_weight=1.0))
    assert [o.index for o in out] == [0, 1, 2, 3]
    for frame, item in zip(frames, out, strict=True):
        expected = METHOD(frame)
        assert item.result.image.dtype == frame.dtype
        np.testing.assert_array_equal(item.result.image, expected.image)
        assert item.light_estimate is not None
        np.testing.assert_allclose(item.light_estimate, expected.atmospheric_light, rtol=0)


def test_smoothed_light_changes_little_although_the_estimate_flickers() -> None:
    weight = 0.1
    frames = [hazy_frame(k, flicker=True) for k in range(16)]
    out = list(dehaze_frames(frames, METHOD, light_weight=weight))
    estimates = np.array([o.light_estimate for o in out])
    smoothed = np.array([o.result.atmospheric_light for o in out], dtype=np.float64)
    estimate_jumps = np.abs(np.diff(estimates, axis=0)).max()
    smoothed_jumps = np.abs(np.diff(smoothed, axis=0))
    # the scene really flickers: He's rule alternates between the haze and the white object
    assert estimate_jumps > 0.1
    # EMA: |A_k − A_{k−1}| = w |Â_k − A_{k−1}| ≤ w · (largest possible jump of the estimate)
    for k in range(1, len(out)):
        bound = weight * np.abs(estimates[k] - smoothed[k - 1]) + 1e-6
        assert np.all(smoothed_jumps[k - 1] <= bound)
    assert smoothed_jumps.max() <= weight * estimate_jumps + 1e-6
    # the definition, frame by frame
    np.testing.assert_allclose(smoothed[0], estimates[0], atol=1e-6)
    for k in range(1, len(out)):
        expected = (1 - weight) * smoothed[k - 1] + weight * estimates[k]
        np.testing.assert_allclose(smoothed[k], expected, atol=1e-6)
    for item in out:
        assert np.all(np.isfinite(item.result.image))
        assert item.result.image.min() >= 0 and item.result.image.max() <= 1


def test_smoothed_light_follows_a_lasting_change() -> None:
    weight = 0.25
    new_haze = np.array([0.95, 0.93, 0.90])
    frames = [hazy_frame(k) for k in range(6)] + [hazy_frame(k, light=new_haze) for k in range(6)]
    out = list(dehaze_frames(frames, METHOD, light_weight=weight))
    estimates = np.array([o.light_estimate for o in out])
    smoothed = np.array([o.result.atmospheric_light for o in out], dtype=np.float64)
    target = estimates[-1]
    step = np.abs(smoothed[5] - target).max()
    assert step > 0.03  # the estimate did move
    for n in range(1, 7):
        remaining = np.abs(smoothed[5 + n] - target).max()
        assert remaining <= (1 - weight) ** n * step + 0.01


ROBUST = RobustDCP(guided_radius=8, patch_radius=3)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_robust_without_smoothing_each_frame_is_the_method(dtype: type) -> None:
    frames = [hazy_frame(k, flicker=True) for k in range(4)]
    if dtype is np.uint8:
        frames = [np.rint(f * 255).astype(np.uint8) for f in frames]
    out = list(dehaze_frames(frames, ROBUST, light_weight=1.0))
    for frame, item in zip(frames, out, strict=True):
        expected = ROBUST(frame)
        assert item.result.image.dtype == frame.dtype
        np.testing.assert_array_equal(item.result.image, expected.image)
        np.testing.assert_array_equal(item.result.transmission, expected.transmission)
        assert item.light_estimate is not None
        np.testing.assert_allclose(item.light_estimate, expected.atmospheric_light, rtol=0)


def test_robust_light_and_tolerance_are_smoothed(monkeypatch: pytest.MonkeyPatch) -> None:
    # each frame's own K alternates between 0 and 0.6 (as when a bright object crosses the
    # top of the view); the K the method applies must follow the EMA, like A
    import dehaze.robust as robust

    own_k = itertools.cycle([0.0, 0.6])
    used_k: list[float] = []
    monkeypatch.setattr(RobustDCP, "tolerance_for", lambda self, gray, light: next(own_k))
    original = robust.weaken_haze_removal

    def spy(t, distance, k, t0, amount):  # type: ignore[no-untyped-def]
        used_k.append(k)
        return original(t, distance, k, t0, amount)

    monkeypatch.setattr(robust, "weaken_haze_removal", spy)
    weight = 0.25
    frames = [hazy_frame(k, flicker=True) for k in range(6)]
    out = list(dehaze_frames(frames, ROBUST, light_weight=weight))
    expected_k = [0.0]
    for k in range(1, 6):
        expected_k.append((1 - weight) * expected_k[-1] + weight * (0.6 if k % 2 else 0.0))
    np.testing.assert_allclose(used_k, expected_k, atol=1e-12)
    np.testing.assert_allclose([o.scene.tolerance for o in out], expected_k, atol=1e-12)
    estimates = np.array([o.light_estimate for o in out])
    smoothed = np.array([o.result.atmospheric_light for o in out], dtype=np.float64)
    assert np.abs(np.diff(estimates, axis=0)).max() > 0.1  # the estimate flickers
    for k in range(1, 6):
        expected = (1 - weight) * smoothed[k - 1] + weight * estimates[k]
        np.testing.assert_allclose(smoothed[k], expected, atol=1e-6)


def test_default_weight_is_documented_value() -> None:
    assert DEFAULT_LIGHT_WEIGHT == 0.1
    out = list(dehaze_frames([hazy_frame(k, flicker=True) for k in range(3)], METHOD))
    e1, a0, a1 = (
        out[1].light_estimate,
        out[0].result.atmospheric_light,
        out[1].result.atmospheric_light,
    )
    assert e1 is not None and a0 is not None and a1 is not None
    np.testing.assert_allclose(a1, 0.9 * a0 + 0.1 * e1, atol=1e-6)


def test_light_every_reestimates_only_every_n_frames() -> None:
    out = list(
        dehaze_frames([hazy_frame(k, flicker=True) for k in range(7)], METHOD, light_every=3)
    )
    has_estimate = [o.light_estimate is not None for o in out]
    assert has_estimate == [True, False, False, True, False, False, True]
    lights = [o.result.atmospheric_light for o in out]
    np.testing.assert_array_equal(lights[0], lights[1])
    np.testing.assert_array_equal(lights[1], lights[2])


def test_light_downscale_estimates_close_to_full_resolution() -> None:
    frame = hazy_frame(0, height=96, width=128)
    full = next(dehaze_frames([frame], METHOD)).light_estimate
    small = next(dehaze_frames([frame], METHOD, light_downscale=2)).light_estimate
    assert full is not None and small is not None
    np.testing.assert_allclose(small, full, atol=0.02)


def test_fixed_light_is_used_as_is() -> None:
    method = DarkChannelPrior(guided_radius=8, atmospheric_light=(0.9, 0.8, 0.7))
    frames = [hazy_frame(k, flicker=True) for k in range(3)]
    out = list(dehaze_frames(frames, method))
    for frame, item in zip(frames, out, strict=True):
        assert item.light_estimate is not None  # the method's estimate is the fixed value
        np.testing.assert_allclose(item.light_estimate, (0.9, 0.8, 0.7), rtol=1e-6)
        np.testing.assert_allclose(item.result.atmospheric_light, (0.9, 0.8, 0.7), rtol=1e-6)
        np.testing.assert_array_equal(item.result.image, method(frame).image)


def test_gray_frames() -> None:
    frames = [hazy_frame(k).mean(axis=2) for k in range(3)]
    out = list(dehaze_frames(frames, METHOD))
    assert out[2].result.image.shape == frames[2].shape
    assert out[2].result.atmospheric_light is not None
    assert out[2].result.atmospheric_light.shape == (1,)


def test_is_lazy_and_memory_does_not_grow_with_length() -> None:
    def endless() -> Iterator[np.ndarray]:
        for k in itertools.count():
            yield hazy_frame(k % 5)

    stream = dehaze_frames(endless(), METHOD)
    first = list(itertools.islice(stream, 3))  # an endless input is fine: frames are pulled
    assert len(first) == 3

    def peak(n: int) -> int:
        tracemalloc.start()
        for _ in itertools.islice(dehaze_frames(endless(), METHOD), n):
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    short, long = peak(5), peak(40)
    assert long < 1.5 * short


def test_bad_arguments() -> None:
    frames = [hazy_frame(0)]
    with pytest.raises(ValueError, match="light_weight"):
        list(dehaze_frames(frames, METHOD, light_weight=0.0))
    with pytest.raises(ValueError, match="light_weight"):
        list(dehaze_frames(frames, METHOD, light_weight=1.5))
    with pytest.raises(ValueError, match="light_every"):
        list(dehaze_frames(frames, METHOD, light_every=0))
    with pytest.raises(TypeError, match="light_downscale"):
        list(dehaze_frames(frames, METHOD, light_downscale=1.5))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="two-phase shape"):
        list(dehaze_frames(frames, lambda image: image))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        list(dehaze_frames([hazy_frame(0), hazy_frame(1, height=40)], METHOD))
    with pytest.raises(ValueError, match="frame"):
        list(dehaze_frames([np.full((8, 8, 3), 2.0)], METHOD))


# --- files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "fourcc", "fps"), [(".mp4", "mp4v", 24.0), (".avi", "MJPG", 15.0)]
)
def test_video_file_keeps_frame_count_fps_and_size(
    tmp_path: Path, suffix: str, fourcc: str, fps: float
) -> None:
    frames = [hazy_frame(k, height=72, width=96, flicker=True) for k in range(12)]
    source = tmp_path / f"clip{suffix}"
    write_clip(source, frames, fps, fourcc)
    before = source.read_bytes()
    output = tmp_path / "out" / f"clip{suffix}"
    log = tmp_path / "out" / "light.csv"
    calls: list[tuple[int, int]] = []
    summary = dehaze_video(
        source, output, METHOD, light_log=log, progress=lambda d, t: calls.append((d, t))
    )
    assert (summary.frames, summary.fps, summary.width, summary.height) == (12, fps, 96, 72)
    count, out_fps, width, height, out_frames = read_clip(output)
    assert (count, out_fps, width, height) == (12, fps, 96, 72)
    assert source.read_bytes() == before
    assert [c[0] for c in calls] == list(range(1, 13))
    # the output is dehazed: more contrast than the input in the hazy top rows
    _, _, _, _, in_frames = read_clip(source)
    assert out_frames[0][:20].std() > 1.2 * in_frames[0][:20].std()
    with log.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == list(range(12))
    light = np.array([[float(r[f"light_{c}"]) for c in range(3)] for r in rows])
    assert np.abs(np.diff(light, axis=0)).max() <= DEFAULT_LIGHT_WEIGHT + 1e-5
    assert sorted(p.name for p in output.parent.iterdir()) == ["clip" + suffix, "light.csv"]


def test_video_file_refuses_to_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "clip.avi"
    write_clip(source, [hazy_frame(k) for k in range(3)], 10.0, "MJPG")
    output = tmp_path / "out.avi"
    output.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        dehaze_video(source, output, METHOD)
    assert output.read_bytes() == b"keep me"
    summary = dehaze_video(source, output, METHOD, overwrite=True)
    assert summary.frames == 3 and read_clip(output)[0] == 3
    with pytest.raises(ValueError, match="input"):
        dehaze_video(source, source, METHOD, overwrite=True)
    assert read_clip(source)[0] == 3
    with pytest.raises(ValueError, match=r"\.mp4"):
        dehaze_video(source, tmp_path / "out.gif", METHOD)
    with pytest.raises(FileNotFoundError):
        dehaze_video(tmp_path / "missing.avi", tmp_path / "x.avi", METHOD)


def test_corrupt_video_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "broken.mp4"
    source.write_bytes(b"\x00\x01 not a video" * 100)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(ValueError, match="cannot decode"):
        dehaze_video(source, out_dir / "broken.mp4", METHOD)
    assert list(out_dir.iterdir()) == []


def test_truncated_video_is_an_error_with_the_counts(tmp_path: Path) -> None:
    source = tmp_path / "clip.avi"
    write_clip(source, [hazy_frame(k) for k in range(40)], 10.0, "MJPG")
    data = source.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    out_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=r"decoded only \d+ of the 40 frames"):
        dehaze_video(truncated, out_dir / "truncated.avi", METHOD)
    assert list(out_dir.iterdir()) == []  # nothing committed, no temporary left


def test_corrupt_frame_in_the_middle_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "clip.avi"
    write_clip(source, [hazy_frame(k) for k in range(40)], 10.0, "MJPG")
    data = bytearray(source.read_bytes())
    # wipe a stretch in the middle of the movie data: frames there lose their JPEG markers
    middle = len(data) // 2
    data[middle : middle + 3000] = bytes(3000)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    count = read_clip(broken)[0]
    assert count < 40  # OpenCV's decoder stops at the damaged frame
    out = tmp_path / "out.avi"
    with pytest.raises(ValueError, match=rf"decoded only {count} of the 40 frames"):
        dehaze_video(broken, out, METHOD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.avi", "clip.avi"]


@pytest.mark.parametrize(
    ("suffix", "fourcc", "written"),
    [(".avi", "XVID", "XVID"), (".avi", "MJPG", "MJPG"), (".mkv", "MJPG", "MJPG")],
)
def test_output_codec_follows_the_input(
    tmp_path: Path, suffix: str, fourcc: str, written: str
) -> None:
    from dehaze.io import _avi_fourcc

    source = tmp_path / f"clip{suffix}"
    write_clip(source, [hazy_frame(k) for k in range(4)], 10.0, fourcc)
    output = tmp_path / "out" / f"clip{suffix}"
    summary = dehaze_video(source, output, METHOD)
    assert summary.codec == written
    if suffix == ".avi":
        assert summary.source_codec == fourcc
        assert _avi_fourcc(output) == written  # the tag stored in the file
    assert read_clip(output)[0] == 4
    assert summary.frames_per_second > 0


def test_mp4_gets_h264_where_available_else_mp4v(tmp_path: Path) -> None:
    from dehaze.io import VIDEO_CODECS, choose_codecs

    source = tmp_path / "clip.mp4"
    write_clip(source, [hazy_frame(k) for k in range(3)], 10.0, "mp4v")
    assert VIDEO_CODECS[".mp4"] == ("avc1", "mp4v")
    assert choose_codecs("", "x.mp4") == ["avc1", "mp4v"]
    assert choose_codecs("FMP4", "x.mp4") == ["mp4v", "avc1"]  # MPEG-4 Part 2 stays
    assert choose_codecs("h264", "x.mkv") == ["avc1", "XVID", "MJPG"]
    assert choose_codecs("XVID", "x.avi") == ["XVID", "MJPG"]
    with pytest.raises(ValueError, match="output must end with"):
        choose_codecs("", "x.gif")
    # an unknown source codec: avc1 if OpenCV has an H.264 encoder, mp4v otherwise
    probe = cv2.VideoWriter(
        str(tmp_path / "probe.mp4"), cv2.VideoWriter.fourcc(*"avc1"), 10.0, (64, 48)
    )
    has_h264 = probe.isOpened()
    probe.release()
    summary = dehaze_video(source, tmp_path / "out.mp4", METHOD)
    assert summary.codec == "mp4v"  # follows the MPEG-4 Part 2 input
    from dehaze.io import VideoWriter

    with VideoWriter(tmp_path / "d.mp4", 10.0, (64, 48), choose_codecs("", "d.mp4")) as writer:
        assert writer.codec == ("avc1" if has_h264 else "mp4v")
    assert not (tmp_path / "d.mp4").exists()  # not committed: discarded


def test_frames_above_the_pixel_limit_are_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "clip.avi"
    write_clip(source, [hazy_frame(k) for k in range(2)], 10.0, "MJPG")  # 64 × 48 = 3072
    out = tmp_path / "out"
    read = cv2.VideoCapture.read

    def no_decoding(self: cv2.VideoCapture) -> tuple[bool, np.ndarray]:
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(cv2.VideoCapture, "read", no_decoding)
    with pytest.raises(ValueError, match=r"64×48 = 3,072 pixels per frame.*limit of 3,071"):
        dehaze_video(source, out / "clip.avi", METHOD, max_pixels=3071)
    monkeypatch.setattr(cv2.VideoCapture, "read", read)
    assert not out.exists()
    assert dehaze_video(source, out / "clip.avi", METHOD, max_pixels=3072).frames == 2
    with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
        dehaze_video(source, out / "x.avi", METHOD, max_pixels=0)


# --- the command line's allocator setting for videos ----------------------------------------


def test_command_line_keeps_freed_memory_only_for_videos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dehaze import cli

    calls: list[int] = []
    monkeypatch.setattr(cli, "_keep_freed_memory", lambda: calls.append(1) or True)
    frames = [hazy_frame(k) for k in range(3)]
    write_clip(tmp_path / "clip.avi", frames, 10.0, "MJPG")
    cv2.imwrite(str(tmp_path / "photo.png"), np.rint(frames[0] * 255).astype(np.uint8))
    assert cli.main([str(tmp_path / "photo.png"), "-o", str(tmp_path / "a"), "-q"]) == 0
    assert calls == []  # images: the allocator is left as it is
    assert cli.main([str(tmp_path / "clip.avi"), "-o", str(tmp_path / "b"), "-q"]) == 0
    assert calls == [1]
    assert read_clip(tmp_path / "b" / "clip.avi")[0] == 3


def test_keep_freed_memory_sets_glibc_thresholds_once() -> None:
    import platform
    import sys

    from dehaze import cli

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert cli._keep_freed_memory() is glibc
    assert cli._keep_freed_memory() is glibc  # a second call changes nothing


def _mjpeg_avi(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """Write an MJPEG AVI of any frame size (OpenCV's writer rounds odd sizes down)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return tag + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)

    height, width = frames[0].shape[:2]
    jpegs = [
        cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
        for f in frames
    ]
    n = len(jpegs)
    avih = struct.pack("<10I", 1_000_000 // fps, 0, 0, 0x10, n, 0, 1, 0, width, height)
    strh = b"vidsMJPG" + struct.pack(
        "<IHHIIIIIIiI4h", 0, 0, 0, 0, 1, fps, 0, n, 0, -1, 0, 0, 0, width, height
    )
    strf = struct.pack(
        "<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0
    )
    strl = chunk(b"LIST", b"strl" + chunk(b"strh", strh) + chunk(b"strf", strf))
    hdrl = chunk(b"LIST", b"hdrl" + chunk(b"avih", avih + b"\0" * 16) + strl)
    movi, index, offset = b"", b"", 4
    for data in jpegs:
        piece = chunk(b"00dc", data)
        index += b"00dc" + struct.pack("<III", 0x10, offset, len(data))
        movi, offset = movi + piece, offset + len(piece)
    body = b"AVI " + hdrl + chunk(b"LIST", b"movi" + movi) + chunk(b"idx1", index)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_odd_frame_sizes_are_padded_not_cropped(tmp_path: Path) -> None:
    # OpenCV's FFmpeg writer rounds 127×95 down to 126×94, dropping a column and a row:
    # the writer pads by repeating them instead, and says so
    frames = [np.rint(hazy_frame(k, height=95, width=127) * 255).astype(np.uint8) for k in range(4)]
    source = tmp_path / "odd.avi"
    _mjpeg_avi(source, frames)
    assert read_clip(source)[2:4] == (127, 95)
    output = tmp_path / "out" / "odd.avi"
    summary = dehaze_video(source, output, METHOD)
    assert (summary.width, summary.height, summary.written_size) == (127, 95, (128, 96))
    count, _, width, height, written = read_clip(output)
    assert (count, width, height) == (4, 128, 96)
    last = written[0].astype(int)  # BGR; lossy codec: the repeated edge agrees closely
    assert np.abs(last[:, 127] - last[:, 126]).mean() < 4
    assert np.abs(last[95] - last[94]).mean() < 4
    even = dehaze_video(tmp_path / "out" / "odd.avi", tmp_path / "again" / "odd.avi", METHOD)
    assert even.written_size is None
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    command = [sys.executable, "-m", "dehaze", str(source), "-o", str(tmp_path / "cli"), "-q"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "written at 128×96, not 127×95" in proc.stderr


def test_a_codec_tried_and_missing_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the writer tries codecs in turn; one OpenCV cannot open (H.264 in the pip wheels)
    # printed OpenCV "[ERROR] ... Could not open codec" lines before the fallback worked
    import dehaze.io as dio

    monkeypatch.setattr(dio, "_UNWRITABLE", set())  # tried afresh, as in a new process
    monkeypatch.setenv("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines: the CLI's choice
    capfd.readouterr()
    with dio.VideoWriter(tmp_path / "a.mp4", 10.0, (64, 48), ["avc1", "mp4v"]) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        writer.commit()
    assert writer.codec in ("avc1", "mp4v")  # avc1 where OpenCV has an H.264 encoder
    assert "ERROR" not in capfd.readouterr().err
    assert cv2.utils.logging.getLogLevel() != cv2.utils.logging.LOG_LEVEL_SILENT  # restored


def test_light_log_of_a_method_without_a_light_has_empty_cells(tmp_path: Path) -> None:
    # --save-light with AOD-Net or identity failed the whole clip on an assertion
    from dehaze.registry import Identity

    source = tmp_path / "clip.avi"
    write_clip(source, [hazy_frame(k) for k in range(3)], 10.0, "MJPG")
    log = tmp_path / "out" / "light.csv"
    summary = dehaze_video(source, tmp_path / "out" / "clip.avi", Identity(), light_log=log)
    assert summary.frames == 3
    with log.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "frame" and [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert all(cell == "" for r in rows[1:] for cell in r[1:])


def test_an_output_that_cannot_be_a_file_is_refused_before_decoding(tmp_path: Path) -> None:
    # onto a folder (with overwrite) or under a file, the clip was decoded and dehazed
    # first, then the write failed with a raw OS error
    source = tmp_path / "clip.avi"
    write_clip(source, [hazy_frame(k) for k in range(2)], 10.0, "MJPG")
    (tmp_path / "folder.avi").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        dehaze_video(source, tmp_path / "folder.avi", METHOD, overwrite=True)
    with pytest.raises(ValueError, match="which is a file"):
        dehaze_video(source, source / "x.avi", METHOD)
    with pytest.raises(ValueError, match="is a folder"):
        dehaze_video(source, tmp_path / "o.avi", METHOD, light_log=tmp_path, overwrite=True)
    assert not (tmp_path / "o.avi").exists()
