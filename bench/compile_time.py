"""First-call cost: JIT compilation in a cold process, and the cached load in a second one.

Every measurement runs in a fresh Python process with its own empty ``NUMBA_CACHE_DIR``
(a fresh install), then once more with the cache the first process wrote:

* the library's default path, ``dehaze.dehaze(image, outputs=())`` on an RGB image: time
  of ``import dehaze`` and of the first and second call, wall clock and the process's CPU
  time (compilation is single-threaded, so on a loaded machine the CPU time is the
  steadier figure);
* the command line's default path, ``python -m dehaze in.png -o out/`` (the default
  method, no side outputs): the whole process, wall clock;

for a 620 × 460 image in uint8 and uint16 (each dtype compiles its own image-reading
kernels) and a 1920 × 1080 uint8 one: a 620 × 460 image is below ClearHaze's working size
(k = 1: no block means to compile), a photo is not, so its first call also compiles the
block-means kernel.
``--kernels`` also lists what the cold library call compiles, per kernel and signature
(Numba's compile events; nested kernels are included in their caller's time).

Usage: ``python bench/compile_time.py [--kernels]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

LIBRARY = r"""
import json, sys, time
c0, t0 = time.process_time(), time.perf_counter()
import numpy as np
import dehaze
t_import = time.perf_counter() - t0
dtype = np.dtype(sys.argv[1])
height, width = int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
img = ((rng.random((height, width, 3)) * 0.7 + 0.2) * np.iinfo(dtype).max).astype(dtype)
events = []
if sys.argv[2] == "kernels":
    from numba.core import event

    class Compiles(event.Listener):
        def on_start(self, ev):
            ev.data["t0"] = time.perf_counter()

        def on_end(self, ev):
            d = ev.data["dispatcher"]
            name = d.py_func.__module__ + "." + d.py_func.__qualname__
            if name.startswith("dehaze"):
                events.append((time.perf_counter() - ev.data["t0"], name, str(ev.data["args"])))

    event.register("numba:compile", Compiles())
c, t = time.process_time(), time.perf_counter()
dehaze.dehaze(img, outputs=())
first, first_cpu = time.perf_counter() - t, time.process_time() - c
t = time.perf_counter(); dehaze.dehaze(img, outputs=()); second = time.perf_counter() - t
print(json.dumps({"import": t_import, "first": first, "first_cpu": first_cpu,
                  "second": second, "events": events}))
"""


def _library(
    dtype: str, shape: tuple[int, int], env: dict[str, str], kernels: bool
) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", LIBRARY, dtype, "kernels" if kernels else "-", *map(str, shape)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return row


def _command(image: Path, out_dir: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dehaze", str(image), "-o", str(out_dir), "--overwrite"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", action="store_true", help="list the compiled kernels")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    lib_rows = []
    cli_rows = []
    compiled: dict[str, list[tuple[float, str, str]]] = {}
    cases = (("uint8", (460, 620)), ("uint16", (460, 620)), ("uint8", (1080, 1920)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for dtype, shape in cases:
            case = f"{shape[1]}×{shape[0]} {dtype}"
            tag = f"{dtype}_{shape[1]}x{shape[0]}"
            image = folder / f"in_{tag}.png"
            top = np.iinfo(dtype).max
            pixels = ((rng.random((*shape, 3)) * 0.7 + 0.2) * top).astype(dtype)
            cv2.imwrite(str(image), pixels)
            for what in ("library", "command"):
                cache = folder / f"cache_{what}_{tag}"
                cache.mkdir()
                env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
                if what == "library":
                    cold = _library(dtype, shape, env, args.kernels)
                    warm = _library(dtype, shape, env, False)
                    lib_rows.append((case, cold, warm))
                    compiled[case] = cold["events"]  # type: ignore[assignment]
                else:
                    out_dir = folder / f"out_{tag}"
                    cli_rows.append(
                        (case, _command(image, out_dir, env), _command(image, out_dir, env))
                    )
    print("Library, `dehaze.dehaze(image, outputs=())`, RGB, fresh process:\n")
    print("| image | cache | import s | first call s | first call CPU s | second call s |")
    print("|---|---|---:|---:|---:|---:|")
    for case, cold, warm in lib_rows:
        for label, r in (("empty", cold), ("warm", warm)):
            print(
                f"| {case} | {label} | {r['import']:.2f} | {r['first']:.2f} | "
                f"{r['first_cpu']:.2f} | {r['second']:.3f} |"
            )
    print("\nCommand line, `python -m dehaze in.png -o out/` (whole process):\n")
    print("| image | empty cache s | warm cache s |")
    print("|---|---:|---:|")
    for case, cold_s, warm_s in cli_rows:
        print(f"| {case} | {cold_s:.2f} | {warm_s:.2f} |")
    if args.kernels:
        for case, events in compiled.items():
            print(f"\nCompiled on the cold {case} call (nested kernels inside their caller):\n")
            for seconds, name, signature in sorted(events, reverse=True):
                print(f"  {seconds:6.2f} s  {name}  {signature[:100]}")


if __name__ == "__main__":
    main()
