"""Dask: images per second on a LocalCluster beside one process, and a large dask array.

Usage::

    python bench/bench_dask.py [--images 200] [--workers 2] [--method clear] [--array 16384]

1. **Batch** (issue 13: ≥ 1.6× the images per second of one process). ``--images`` files are
   made from the SOTS hazy images of ``$DEHAZE_DATA/sots`` (copies, then left-right,
   up-down and both flips) in a temporary folder. The same batch is dehazed, in the same
   run, by

   * one process: the command's own loop (``dehaze IN -o OUT``, in this process) with its
     default kernel threads (all available CPUs), and again with one thread;
   * a ``LocalCluster`` of ``--workers`` processes × 1 thread through
     :func:`dehaze.distributed.dehaze_files` (one task per file, one kernel thread per task).

   The cluster is started and warmed (a few files through every worker: Numba's cached
   kernels are loaded) before the timed batch; the start-up time is printed separately.
   Every variant writes to its own folder and the outputs are checked byte-identical.
   Each variant runs ``--rounds`` times; the best round counts (the machine may be shared).

2. **Array** (``--array N``, 0 skips): an N×N RGB uint8 image (a SOTS photo tiled and
   mirrored, stored as .npy; the workers read their chunks from it) dehazed as a dask array
   by :func:`dehaze.distributed.dehaze_dask` on the same cluster (``--array-method``,
   default the fast guided filter ``dcp:subsample=4``; ``--chunk`` pixels a block), then the
   same image in memory in this process: the two results must be bit-identical. The
   in-memory reference of a 16384² image peaks at about 6.5 GB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dehaze import cli
from dehaze._data import data_root
from dehaze._parallel import get_num_threads, num_threads
from dehaze.io import imread, imwrite

FLIPS = ((False, False), (False, True), (True, False), (True, True))


def sots_hazy(root: Path) -> list[Path]:
    files = sorted(
        p for p in (root / "sots").glob("*/hazy/*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    )
    if not files:
        sys.exit(f"no SOTS hazy images under {root / 'sots'} (set DEHAZE_DATA)")
    return files


def make_batch(sources: list[Path], count: int, folder: Path) -> list[Path]:
    """``count`` files: the SOTS images, then their flips (up-down, left-right, both), …"""
    made = []
    for index in range(count):
        source = sources[index % len(sources)]
        updown, leftright = FLIPS[(index // len(sources)) % len(FLIPS)]
        target = folder / f"{index:04d}_{source.name}"
        if not updown and not leftright:
            shutil.copyfile(source, target)
        else:
            image = imread(source)
            image = image[::-1] if updown else image
            image = image[:, ::-1] if leftright else image
            imwrite(target, np.ascontiguousarray(image))
        made.append(target)
    return made


def digests(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def serial_batch(inputs: Path, out: Path, method: str) -> float:
    start = time.perf_counter()
    status = cli.main([str(inputs), "-o", str(out), "-q", "--method", method])
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"the one-process batch failed (status {status})")
    return elapsed


def batch_bench(args: argparse.Namespace, client: object, work: Path) -> None:
    from dehaze.distributed import dehaze_files

    inputs = work / "in"
    inputs.mkdir()
    files = make_batch(sots_hazy(args.data), args.images, inputs)
    megapixels = sum(imread(p).shape[0] * imread(p).shape[1] for p in files[:20]) / 20 / 1e6
    print(f"batch: {len(files)} files (~{megapixels:.2f} megapixels each), method {args.method}")

    # warm up: this process and every worker load the kernels (Numba's cache) first
    warm = work / "warm"
    warm.mkdir()
    for path in files[: 2 * args.workers]:
        shutil.copyfile(path, warm / path.name)
    serial_batch(warm, work / "warm_serial", args.method)
    report = dehaze_files([warm], work / "warm_dask", client=client, method=args.method)
    assert report.count("done") == 2 * args.workers, report

    threads = get_num_threads()
    best = {"one process": np.inf, "one process, 1 thread": np.inf, "dask": np.inf}
    reference: dict[str, bytes] | None = None
    for round_ in range(args.rounds):
        for name in best:
            out = work / f"out_{round_}_{name.replace(' ', '_').replace(',', '')}"
            if name == "dask":
                report = dehaze_files([inputs], out, client=client, method=args.method)
                if report.count("done") != len(files):
                    sys.exit(f"the dask batch failed: {report.count('failed')} files")
                elapsed = report.seconds
            elif name == "one process":
                elapsed = serial_batch(inputs, out, args.method)
            else:
                with num_threads(1):
                    elapsed = serial_batch(inputs, out, args.method)
            outputs = digests(out)
            if reference is None:
                reference = outputs
            elif outputs != reference:
                sys.exit(f"{name}: outputs differ from the first variant's")
            shutil.rmtree(out)
            best[name] = min(best[name], elapsed)
            print(
                f"  round {round_ + 1} {name:<24} {elapsed:7.2f} s  "
                f"{len(files) / elapsed:6.2f} images/s"
            )
    print(f"batch, best of {args.rounds} rounds (outputs byte-identical across variants):")
    for name, elapsed in best.items():
        rate = len(files) / elapsed
        print(f"  {name:<24} {elapsed:7.2f} s  {rate:6.2f} images/s")
    print(
        f"  dask ({args.workers} workers × 1 thread) / one process ({threads} threads): "
        f"{best['one process'] / best['dask']:.2f}×; "
        f"/ one process with 1 thread: {best['one process, 1 thread'] / best['dask']:.2f}×"
    )


def big_image(side: int, data: Path) -> np.ndarray:
    """An N×N RGB uint8 image: a SOTS photo mirrored into a seamless tiling."""
    photo = imread(sots_hazy(data)[0])
    cell = np.concatenate([photo, photo[::-1]], axis=0)
    cell = np.concatenate([cell, cell[:, ::-1]], axis=1)
    reps = (-(-side // cell.shape[0]), -(-side // cell.shape[1]), 1)
    return np.ascontiguousarray(np.tile(cell, reps)[:side, :side])


def _read_region(path: str, block_info: dict | None = None) -> np.ndarray:
    """One chunk of the array stored at ``path`` (.npy), read on the worker."""
    assert block_info is not None
    (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
    return np.array(np.load(path, mmap_mode="r")[y0:y1, x0:x1])


def array_bench(args: argparse.Namespace, client: object, work: Path) -> None:
    import dask.array as da

    from dehaze.distributed import dehaze_dask
    from dehaze.registry import MethodContext, build_method

    method = build_method(args.array_method, MethodContext())
    side = args.array
    stored = work / "big.npy"
    np.save(stored, big_image(side, args.data))  # the workers read their chunks from here
    print(f"array: {side}×{side} RGB uint8 ({side * side * 3 / 1e9:.2f} GB), {args.array_method}")
    chunks = (args.chunk, args.chunk, 3)
    array = da.map_blocks(
        _read_region,
        str(stored),
        chunks=da.core.normalize_chunks(chunks, (side, side, 3)),
        dtype=np.uint8,
        meta=np.empty((0, 0, 0), np.uint8),
    )
    start = time.perf_counter()
    lazy = dehaze_dask(method, array, tile=args.chunk)
    scene_seconds = time.perf_counter() - start
    computed = lazy.image.compute()
    elapsed = time.perf_counter() - start
    print(
        f"  dask array on the cluster ({args.chunk}² blocks): {elapsed:.1f} s "
        f"(scene by tile tasks {scene_seconds:.1f} s, then map_overlap)"
    )
    image = np.load(stored)
    start = time.perf_counter()
    expected = method(image, outputs=()).image
    in_memory = time.perf_counter() - start
    print(f"  in memory (this process, {get_num_threads()} threads): {in_memory:.1f} s")
    equal = computed.dtype == expected.dtype and np.array_equal(computed, expected)
    print(f"  dask array result bit-identical to in memory: {equal}")
    if not equal:
        diff = np.abs(computed.astype(np.int32) - expected.astype(np.int32))
        sys.exit(f"the dask array result differs from in memory: max |diff| {diff.max()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--method", default="clear")
    parser.add_argument("--array", type=int, default=16384, help="array side, 0: skip")
    parser.add_argument("--array-method", default="dcp:subsample=4")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    args.data = args.data or data_root()

    from dehaze.distributed import open_client

    print(f"{os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} available")
    start = time.perf_counter()
    with open_client(f"local:{args.workers}") as client:
        started = time.perf_counter() - start
        print(f"LocalCluster of {args.workers} processes started in {started:.1f} s")
        with tempfile.TemporaryDirectory(prefix="bench_dask_") as tmp:
            if args.images:
                batch_bench(args, client, Path(tmp))
            if args.array:
                array_bench(args, client, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
