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
