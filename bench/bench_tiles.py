"""Tiled processing in memory beside the whole-image call, same run (issue 13).

``dehaze.tiles.dehaze_tiled`` reads the image one tile (plus the method's halo) at a time and
gives the whole-image result bit for bit (tests/test_tiles.py). Its cost over the whole-image
call is the halo read twice at tile edges and, for the scene, the estimate's passes over the
tiles. Target: at most 1.15x the whole-image time at 4K with the default tile (1024) for the
default method; DCP's halo (180 px) makes its tiles overlap, so it is shown beside, with a
larger tile too.

On a shared machine run it a few times (alternating with the code compared against) and add
``--benchmark-timer time.process_time`` for CPU time, which moves less than wall time.
"""

from __future__ import annotations

import pytest

import dehaze
from dehaze import tiles

#: Rounds per timing at every size: the ratio of two medians needs more than the 3 rounds
#: the other 4K benchmarks take, on a machine shared with other jobs.
ROUNDS = 10

METHODS = {"clear": dehaze.ClearHaze(), "dcp": dehaze.DarkChannelPrior()}


@pytest.mark.parametrize(
    "impl", ("clear-whole", "clear-tiled", "dcp-whole", "dcp-tiled", "dcp-tiled-2048")
)
def test_tiled_beside_whole(benchmark, image, size, impl):
    benchmark.group = f"tiled {size}"
    name, how, *tile = impl.split("-")
    method = METHODS[name]
    side = int(tile[0]) if tile else tiles.DEFAULT_TILE
    if how == "whole":
        func = lambda: method(image, outputs=())  # noqa: E731
    else:
        func = lambda: tiles.dehaze_tiled(method, image, tile=side, outputs=())  # noqa: E731
    benchmark.pedantic(func, rounds=ROUNDS, warmup_rounds=1, iterations=1)


def interleaved(method: object, image: object, pairs: int, tile: int) -> list[tuple[float, float]]:
    """Time the whole-image call and the tiled call alternately: (whole s, tiled s) pairs.

    Load from other jobs moves both of a pair alike, so the ratio of each pair (and their
    median) moves much less than the ratio of two medians taken one after the other.
    """
    import time

    whole = lambda: method(image, outputs=())  # type: ignore[operator]  # noqa: E731
    tiled = lambda: tiles.dehaze_tiled(method, image, tile=tile, outputs=())  # noqa: E731
    whole(), tiled()  # compiled, threads started, scratch buffers allocated
    times = []
    for i in range(pairs):
        pair = [0.0, 0.0]
        for which in (0, 1) if i % 2 == 0 else (1, 0):  # neither always goes first
            start = time.perf_counter()
            (whole, tiled)[which]()
            pair[which] = time.perf_counter() - start
        times.append((pair[0], pair[1]))
    return times


def main(argv: list[str] | None = None) -> int:
    """``python bench/bench_tiles.py [--pairs N] [--method clear] [--size 3840x2160]``."""
    import argparse
    import statistics

    from conftest import SIZES, hazy_image

    parser = argparse.ArgumentParser(description="whole-image and tiled calls, interleaved")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--method", choices=sorted(METHODS), default="clear")
    parser.add_argument("--size", choices=sorted(SIZES), default="3840x2160")
    parser.add_argument("--tile", type=int, default=tiles.DEFAULT_TILE)
    args = parser.parse_args(argv)
    image = hazy_image(*SIZES[args.size])
    times = interleaved(METHODS[args.method], image, args.pairs, args.tile)
    ratios = sorted(t / w for w, t in times)
    whole = statistics.median(w for w, _ in times) * 1e3
    tiled = statistics.median(t for _, t in times) * 1e3
    quartiles = statistics.quantiles(ratios, n=4)
    print(
        f"{args.method} {args.size}, tile {args.tile}, {args.pairs} interleaved pairs: whole "
        f"{whole:.1f} ms, tiled {tiled:.1f} ms (medians); tiled / whole per pair: median "
        f"{statistics.median(ratios):.3f}, quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}"
    )
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    raise SystemExit(main())
