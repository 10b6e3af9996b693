"""Video throughput (frames per second) at 1280×720 and 1920×1080, beside per-frame dehaze.

Run: ``.venv/bin/pytest bench/bench_video.py -p no:cacheprovider --benchmark-only``.

Each round dehazes a clip of ``FRAMES`` moving frames (a synthetic hazy scene shifted by a
few pixels per frame). Variants, all timed in the same run:

* ``per-frame dehaze``: the reference, ``DarkChannelPrior()(frame)`` on every frame (A estimated
  independently per frame: flickers);
* ``video``: :func:`dehaze.video.dehaze_frames` with the default EMA of A;
* ``video light/2``: A estimated on a half-size copy;
* ``video fast``: the fast guided filter (``--fast``: subsample 4);
* ``video fast light/2``: both;
* ``video robust`` / ``video robust fast``: :class:`dehaze.RobustDCP` (the command line's
  default method) with the full and the fast guided filter;
* ``file 720p`` (1280×720 only): :func:`dehaze.video.dehaze_video` reading and writing an
  MJPG .avi, decoding and encoding included.

The frames per second (from the fastest round: the machine may be shared) are printed at
the end and stored in each benchmark's extra_info.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

import dehaze
from dehaze.video import dehaze_frames, dehaze_video

from conftest import hazy_image

FRAMES = 8
SIZES = {"1280x720": (720, 1280), "1920x1080": (1080, 1920)}
_FPS: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module", params=list(SIZES))
def clip(request: pytest.FixtureRequest) -> tuple[str, list[np.ndarray]]:
    height, width = SIZES[request.param]
    base = hazy_image(height, width + 4 * FRAMES)
    frames = [np.ascontiguousarray(base[:, 4 * k : 4 * k + width]) for k in range(FRAMES)]
    return request.param, frames


def _consume(items: Iterator[object]) -> None:
    for _ in items:
        pass


VARIANTS: dict[str, Callable[[list[np.ndarray]], None]] = {
    "per-frame dehaze": lambda frames: [dehaze.DarkChannelPrior()(f) for f in frames] and None,
    "video": lambda frames: _consume(dehaze_frames(frames)),
    "video light/2": lambda frames: _consume(dehaze_frames(frames, light_downscale=2)),
    "video fast": lambda frames: _consume(
        dehaze_frames(frames, dehaze.DarkChannelPrior(subsample=4))
    ),
    "video fast light/2": lambda frames: _consume(
        dehaze_frames(frames, dehaze.DarkChannelPrior(subsample=4), light_downscale=2)
    ),
    # the command line's default method, with and without --fast
    "video robust": lambda frames: _consume(dehaze_frames(frames, dehaze.RobustDCP())),
    "video robust fast": lambda frames: _consume(
        dehaze_frames(frames, dehaze.RobustDCP(subsample=4))
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_video_frames(benchmark, clip, variant):  # type: ignore[no-untyped-def]
    size, frames = clip
    benchmark.group = f"video {size} ({FRAMES} frames)"
    func = VARIANTS[variant]
    benchmark.pedantic(func, args=(frames,), rounds=3, warmup_rounds=1, iterations=1)
    fps = FRAMES / benchmark.stats.stats.min
    benchmark.extra_info["fps"] = fps
    _FPS[(size, variant)] = fps


def test_video_file(benchmark, clip, tmp_path: Path):  # type: ignore[no-untyped-def]
    size, frames = clip
    if size != "1280x720":
        pytest.skip("the file round trip is measured at 720p only")
    benchmark.group = f"video {size} ({FRAMES} frames)"
    height, width = frames[0].shape[:2]
    source = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    counter = iter(range(1000))

    def func() -> None:
        dehaze_video(source, tmp_path / f"out{next(counter)}.avi")

    benchmark.pedantic(func, rounds=3, warmup_rounds=1, iterations=1)
    fps = FRAMES / benchmark.stats.stats.min
    benchmark.extra_info["fps"] = fps
    _FPS[(size, "file (decode + encode)")] = fps


def teardown_module() -> None:
    if not _FPS:
        return
    lines = ["", "frames per second (ratio to per-frame dehaze in the same run):"]
    for size in SIZES:
        reference = _FPS.get((size, "per-frame dehaze"))
        for (s, variant), fps in _FPS.items():
            if s != size:
                continue
            ratio = f"{fps / reference:.2f}x" if reference else "n/a"
            lines.append(f"  {size:>9}  {variant:<24} {fps:6.2f} fps  {ratio}")
    print("\n".join(lines))
