"""Video end to end: the real command line against OpenCV decoding + encoding the same clip.

Generates a 1920 × 1080 clip (``--frames``, default 200, 25 fps, MPEG-4 ``mp4v`` in .mp4: a
hazy scene panning a few pixels per frame), then, in the same run and in turn:

* **OpenCV alone**: ``cv2.VideoCapture`` reads every frame and ``cv2.VideoWriter`` writes
  it to the same codec and container: the floor any tool that decodes and encodes the
  clip pays, nothing else;
* **dehaze**: ``python -m dehaze clip.mp4 -o out/`` (the default method) as a fresh
  process, start-up included (Numba's cache is warmed beforehand by a run on a short clip:
  compilation is measured by ``bench/compile_time.py``);
* **dehaze --fast**: the same with ``--fast``;
* **dehaze --method identity**: the command line dehazing nothing: its floor (process
  start-up, opening, decoding, converting, encoding and writing the clip), what no method
  can go below.

For each: the wall-clock time of the whole process, the frames per second it gives, its
ratio to OpenCV alone and the CPU time per frame (user + system over all threads: steadier
than the wall clock on a shared machine; for the command line start-up included) and its
ratio to OpenCV's CPU time per frame in the same run; for the command line also the rate
its summary line reports (``videos: N frames at F frames/s``: from opening the clip to the
last frame written, without the process start-up).
``--runs`` repeats the three measurements (default 3) and prints the range.

Usage: ``python bench/bench_video.py [--frames N] [--runs R]``
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 1920, 1080, 25.0
SUMMARY_RATE = re.compile(r"videos: (\d+) frames at ([0-9.]+) frames/s")


def make_clip(path: Path, frames: int) -> None:
    """Write a hazy clip panning over a scene wider than the frame, 4 pixels per frame."""
    rng = np.random.default_rng(0)
    width = WIDTH + 4 * frames
    y = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    phase = np.array([0.0, 1.0, 2.0], dtype=np.float32)
    scene = 0.45 + 0.3 * np.sin(40 * x + 7 * y + phase) + 0.1 * rng.random((HEIGHT, width, 3))
    transmission = np.exp(-1.6 * (1.0 - y))
    hazy = np.clip(scene, 0, 1) * transmission + 0.88 * (1.0 - transmission)
    panorama = cv2.cvtColor(np.rint(hazy * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v here")
    for k in range(frames):
        writer.write(np.ascontiguousarray(panorama[:, 4 * k : 4 * k + WIDTH]))
    writer.release()


def opencv_alone(source: Path, target: Path) -> tuple[float, int, float]:
    """Decode every frame of ``source`` and encode it to ``target`` (same codec).

    Returns the wall-clock time, the frame count and the CPU time (all threads).
    """
    start = time.perf_counter()
    cpu_start = time.process_time()
    capture = cv2.VideoCapture(str(source))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(frame)
        count += 1
    writer.release()
    capture.release()
    return time.perf_counter() - start, count, time.process_time() - cpu_start


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(source: Path, out_dir: Path, *options: str) -> tuple[float, int, float, float]:
    """Run the command line on ``source``.

    Returns the wall time, the frames, the rate its summary gives and the CPU time of the
    process (user + system, all threads, start-up included).
    """
    cpu_start = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dehaze", str(source), "-o", str(out_dir), "--overwrite", *options],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu_start
    found = SUMMARY_RATE.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no video rate in the summary: {done.stderr!r}")
    return seconds, int(found.group(1)), float(found.group(2)), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="clip length (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = folder / "clip.mp4"
        make_clip(clip, args.frames)
        warm = folder / "warm.mp4"
        make_clip(warm, 3)
        for options in ((), ("--fast",), ("--method", "identity")):  # compile every kernel first
            command(warm, folder / "warm_out", *options)
        # per run and row: frames/s, its ratio to OpenCV's, CPU s/frame, CPU ratio to OpenCV's
        rows: dict[str, list[tuple[float, float, float, float]]] = {}
        for run in range(1, args.runs + 1):
            seconds, count, cpu = opencv_alone(clip, folder / "opencv.mp4")
            reference = count / seconds
            print(
                f"run {run}: OpenCV decode + encode alone {reference:.1f} fps ({count} frames, "
                f"CPU {1e3 * cpu / count:.1f} ms/frame)"
            )
            reference_cpu = cpu / count
            rows.setdefault("OpenCV decode + encode", []).append(
                (reference, 1.0, reference_cpu, 1.0)
            )
            for label, options in (
                ("dehaze", ()),
                ("dehaze --fast", ("--fast",)),
                ("dehaze --method identity", ("--method", "identity")),
            ):
                seconds, frames, summary_rate, cpu = command(clip, folder / "out", *options)
                if frames != count:
                    raise RuntimeError(f"{label} wrote {frames} frames, expected {count}")
                rate = frames / seconds
                per_frame = cpu / frames
                rows.setdefault(label, []).append(
                    (rate, rate / reference, per_frame, per_frame / reference_cpu)
                )
                rows.setdefault(label + " (summary)", []).append(
                    (summary_rate, summary_rate / reference, float("nan"), float("nan"))
                )
                print(
                    f"        {label:<24} {rate:5.1f} fps end to end ({rate / reference:.2f}x), "
                    f"summary {summary_rate:.1f} fps ({summary_rate / reference:.2f}x), "
                    f"CPU {1e3 * per_frame:.1f} ms/frame "
                    f"({per_frame / reference_cpu:.2f}x OpenCV's)"
                )
    print(f"\n{WIDTH}x{HEIGHT}, {args.frames} frames, {args.runs} runs (range over the runs):\n")
    print("| | frames/s | ratio to OpenCV decode + encode | CPU ms/frame | CPU / OpenCV's |")
    print("|---|---:|---:|---:|---:|")
    for label, values in rows.items():
        rates = [v[0] for v in values]
        ratios = [v[1] for v in values]
        cpus = [1e3 * v[2] for v in values if v[2] == v[2]]
        cpu_ratios = [v[3] for v in values if v[3] == v[3]]
        cpu_cell = f"{min(cpus):.1f}–{max(cpus):.1f}" if cpus else ""
        cpu_ratio_cell = f"{min(cpu_ratios):.2f}–{max(cpu_ratios):.2f}×" if cpu_ratios else ""
        print(
            f"| {label} | {min(rates):.1f}–{max(rates):.1f} | "
            f"{min(ratios):.2f}–{max(ratios):.2f}× | {cpu_cell} | {cpu_ratio_cell} |"
        )


if __name__ == "__main__":
    main()
