"""dehaze_video's three overlapping stages: order kept, every error propagated, no thread left."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

import dehaze
from dehaze import ClearHaze, DarkChannelPrior, video
from dehaze.io import VideoReader, VideoWriter
from dehaze.result import DehazeResult
from dehaze.video import QUEUE_FRAMES, _frame_workers, _stream, dehaze_frames, dehaze_video

METHOD = DarkChannelPrior(guided_radius=8, patch_radius=3)
N_FRAMES = 3 * QUEUE_FRAMES + 2  # more than both queues hold: a stuck stage would show


def frame(k: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A hazy frame whose bars move by 3 pixels per frame (each frame differs)."""
    yy, xx = np.mgrid[0:height, 0:width]
    t = 0.35 + 0.5 * yy / height
    scene = 0.15 + 0.6 * ((xx + 3 * k) % 16 < 8)[..., None] * np.array([0.6, 0.8, 1.0])
    hazy = scene * t[..., None] + np.array([0.8, 0.82, 0.86]) * (1.0 - t[..., None])
    return np.rint(np.clip(hazy, 0.0, 1.0) * 255).astype(np.uint8)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for k in range(N_FRAMES):
        writer.write(cv2.cvtColor(frame(k), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("dehaze-video-")]


def decoded(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def assert_failed_cleanly(out_dir: Path) -> None:
    assert stage_threads() == []
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_frames_are_written_in_order(clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "clip.avi"
    summary = dehaze_video(clip, output, METHOD, light_weight=1.0)
    assert summary.frames == N_FRAMES
    written = decoded(output)
    # each written frame is closest to the same frame dehazed on its own (MJPG is lossy)
    expected = [METHOD(f).image.astype(np.float64) for f in decoded(clip)]
    for k, image in enumerate(written):
        errors = [np.abs(image - e).mean() for e in expected]
        assert int(np.argmin(errors)) == k
    assert stage_threads() == []


def _fail_at_frame_5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the video reader raise OSError("the disk went away") instead of frame 5."""
    real_frames = VideoReader.frames

    def failing(self: VideoReader) -> Iterator[np.ndarray]:
        for k, image in enumerate(real_frames(self)):
            if k == 5:
                raise OSError("the disk went away")
            yield image

    monkeypatch.setattr(VideoReader, "frames", failing)


def test_a_decoding_error_is_raised_after_the_frames_before_it(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_at_frame_5(monkeypatch)
    seen: list[int] = []
    with pytest.raises(OSError, match="disk went away"):
        dehaze_video(clip, tmp_path / "out" / "c.avi", METHOD, progress=lambda d, t: seen.append(d))
    assert seen == [1, 2, 3, 4, 5]  # the five frames decoded before the error were dehazed
    assert_failed_cleanly(tmp_path / "out")


def test_an_encoding_error_stops_the_other_stages(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = VideoWriter.write
    calls = []

    def failing(self: VideoWriter, image: np.ndarray) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("no space left on device")
        real_write(self, image)

    monkeypatch.setattr(VideoWriter, "write", failing)
    with pytest.raises(OSError, match="no space left"):
        dehaze_video(clip, tmp_path / "out" / "c.avi", METHOD)
    assert len(calls) == 3  # nothing is encoded after the failure
    assert_failed_cleanly(tmp_path / "out")


def test_a_dehazing_error_stops_the_reader_and_writer(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    method = DarkChannelPrior(guided_radius=8, patch_radius=3)
    applied: list[int] = []
    real_apply = DarkChannelPrior.apply

    def apply(self: DarkChannelPrior, image: Any, scene: Any, **kwargs: Any) -> DehazeResult:
        applied.append(1)
        if len(applied) == 6:
            raise ValueError("the kernel refused the frame")
        return real_apply(self, image, scene, **kwargs)

    monkeypatch.setattr(DarkChannelPrior, "apply", apply)
    with pytest.raises(ValueError, match=r"frame 5: the kernel refused the frame"):
        dehaze_video(clip, tmp_path / "out" / "c.avi", method)
    assert_failed_cleanly(tmp_path / "out")


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt or the command line's SIGTERM exception."""


@pytest.mark.parametrize("error", [KeyboardInterrupt, Interrupt])
def test_an_interrupt_from_progress_stops_everything(
    clip: Path, tmp_path: Path, error: type[BaseException]
) -> None:
    def progress(done: int, total: int) -> None:
        if done == 2:
            raise error

    with pytest.raises(error):
        dehaze_video(clip, tmp_path / "out" / "c.avi", METHOD, progress=progress)
    assert_failed_cleanly(tmp_path / "out")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize(("weight", "every"), [(1.0, 1), (0.3, 1), (0.5, 2)])
def test_clear_haze_frames_equal_estimate_then_apply(
    dtype: type, weight: float, every: int
) -> None:
    # ClearHaze frames share one working image between the estimate and the recovery:
    # the result must be the two public phases' bit for bit
    method = ClearHaze(working_size=20)  # k = 2 at 48 × 64
    frames = [frame(k) for k in range(5)]
    if dtype is np.float32:
        frames = [(f / 255.0).astype(np.float32) for f in frames]
    got = list(dehaze_frames(frames, method, light_weight=weight, light_every=every))
    smoothed = None
    for k, (image, item) in enumerate(zip(frames, got, strict=True)):
        estimate = None
        if smoothed is None or k % every == 0:
            estimate = method.estimate(image)
            smoothed = estimate.blend(smoothed, weight)
        expected = method.apply(image, smoothed)
        np.testing.assert_array_equal(item.result.image, expected.image)
        np.testing.assert_array_equal(item.result.transmission, expected.transmission)
        np.testing.assert_array_equal(item.result.depth, expected.depth)
        np.testing.assert_array_equal(item.scene.atmospheric_light, smoothed.atmospheric_light)
        assert (item.scene.factor, item.scene.extent, item.scene.noise_sigma) == (
            smoothed.factor,
            smoothed.extent,
            smoothed.noise_sigma,
        )
        assert (item.estimate is None) == (estimate is None)


class FakeReader:
    """What _stream uses of a VideoReader: the declared count and the frames."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self._frames = frames
        self.info = SimpleNamespace(declared_frames=len(frames))

    def frames(self) -> Iterator[np.ndarray]:
        yield from (f.copy() for f in self._frames)


class FakeWriter:
    """What _stream uses of a VideoWriter: it copies each frame, as encoding does."""

    def __init__(self) -> None:
        self.written: list[np.ndarray] = []

    def write(self, image: np.ndarray) -> None:
        self.written.append(image.copy())


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(("weight", "every"), [(1.0, 1), (0.3, 1), (0.5, 3)])
def test_clear_haze_frames_in_parallel_are_the_sequential_ones(
    threads: int, weight: float, every: int
) -> None:
    # dehaze_video recovers several ClearHaze frames at once (one per thread): the frames
    # written, in order, are dehaze_frames' bit for bit, and its buffers are reused safely
    method = ClearHaze(working_size=20)
    frames = [frame(k, 96, 128) for k in range(N_FRAMES)]
    with dehaze.num_threads(threads):
        assert _frame_workers(method, 1) == threads
        writer = FakeWriter()
        done: list[int] = []
        count = _stream(
            FakeReader(frames),  # type: ignore[arg-type]
            writer,  # type: ignore[arg-type]
            None,
            method,
            weight,
            every,
            1,
            lambda d, t: done.append(d),
        )
        expected = list(dehaze_frames(frames, method, light_weight=weight, light_every=every))
    assert count == N_FRAMES and done == list(range(1, N_FRAMES + 1))
    assert len(writer.written) == N_FRAMES
    for got, item in zip(writer.written, expected, strict=True):
        np.testing.assert_array_equal(got, item.result.image)
    assert stage_threads() == []


def test_clear_haze_decoding_error_comes_after_the_frames_in_flight(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_at_frame_5(monkeypatch)
    seen: list[int] = []
    with dehaze.num_threads(2), pytest.raises(OSError, match="disk went away"):
        dehaze_video(
            clip,
            tmp_path / "out" / "c.avi",
            ClearHaze(working_size=20),
            progress=lambda d, t: seen.append(d),
        )
    assert seen == [1, 2, 3, 4, 5]  # every frame decoded before the error was dehazed
    assert_failed_cleanly(tmp_path / "out")


def test_clear_haze_error_in_a_worker_names_its_frame(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = decoded(clip)[5]
    real_apply = video._clear_apply

    def apply(method: ClearHaze, image: np.ndarray, *args: Any, **kwargs: Any) -> DehazeResult:
        if np.array_equal(image, bad):
            raise ValueError("the kernel refused the frame")
        return real_apply(method, image, *args, **kwargs)

    monkeypatch.setattr(video, "_clear_apply", apply)
    with dehaze.num_threads(2), pytest.raises(ValueError, match=r"^frame 5: the kernel refused"):
        dehaze_video(clip, tmp_path / "out" / "c.avi", ClearHaze(working_size=20))
    assert_failed_cleanly(tmp_path / "out")


def test_clear_haze_interrupt_stops_the_workers_too(clip: Path, tmp_path: Path) -> None:
    def progress(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with dehaze.num_threads(2), pytest.raises(KeyboardInterrupt):
        dehaze_video(
            clip, tmp_path / "out" / "c.avi", ClearHaze(working_size=20), progress=progress
        )
    assert_failed_cleanly(tmp_path / "out")


@pytest.mark.parametrize("method", [METHOD, ClearHaze(working_size=20)], ids=["dcp", "clear"])
def test_memory_does_not_grow_with_the_clip_length(method: Any) -> None:
    # written frames are reused as output buffers (ClearHaze) or dropped (others): the
    # pipeline holds a bounded number of frames whatever the clip's length
    def peak(n: int) -> int:
        frames = [frame(k % 7, 96, 128) for k in range(n)]
        tracemalloc.start()
        _stream(
            FakeReader(frames),  # type: ignore[arg-type]
            SimpleNamespace(write=lambda image: None),  # type: ignore[arg-type]
            None,
            method,
            0.1,
            1,
            1,
            None,
        )
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    peak(2)  # compiles or loads the kernels: their memory is not the pipeline's
    short, long = peak(3 * QUEUE_FRAMES), peak(12 * QUEUE_FRAMES)
    assert long < 1.3 * short
