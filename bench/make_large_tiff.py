"""Generate a large RGB uint8 TIFF/BigTIFF from a real photo, one tile at a time.

The photo ($DEHAZE_DATA/real/foggy_house.jpg by default) is stretched to the requested size
by bilinear interpolation computed per tile (cv2.remap on that tile's coordinates only) and
given mild per-pixel noise seeded by the tile's position (σ = 2 grey levels), so the tiles
differ as a real mosaic's do. Only one tile is in memory at a time: the 30000 × 30000 default
(2.7 GB) is written with well under 100 MB of memory.

Usage::

    python bench/make_large_tiff.py OUT.tif [--size 30000] [--tile 512] [--layout tiled]

``--layout striped`` writes contiguous uncompressed strips instead of tiles (the layout many
tools write; :class:`dehaze.largeimage.TiffSource` reads it in blocks of rows).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from dehaze.io import imread
from dehaze.largeimage import write_tiled_tiff

DATA = Path(os.environ.get("DEHAZE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PHOTO = DATA / "real" / "foggy_house.jpg"
NOISE = 2.0


def _region(photo: np.ndarray, size: tuple[int, int], y0: int, y1: int, x0: int, x1: int):
    """Rows y0:y1, columns x0:x1 of the photo stretched to ``size``, with tile noise."""
    height, width = size
    sy, sx = photo.shape[0] / height, photo.shape[1] / width
    ys = ((np.arange(y0, y1, dtype=np.float32) + 0.5) * sy - 0.5).astype(np.float32)
    xs = ((np.arange(x0, x1, dtype=np.float32) + 0.5) * sx - 0.5).astype(np.float32)
    map_x = np.broadcast_to(xs[None, :], (y1 - y0, x1 - x0)).copy()
    map_y = np.broadcast_to(ys[:, None], (y1 - y0, x1 - x0)).copy()
    block = cv2.remap(photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    rng = np.random.default_rng([y0, x0])
    noisy = block.astype(np.float32) + rng.normal(0.0, NOISE, block.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def tiles(photo: np.ndarray, size: tuple[int, int], tile: int) -> Iterator[np.ndarray]:
    """The tiles of the stretched photo in row-major order."""
    height, width = size
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            yield _region(photo, size, y0, min(y0 + tile, height), x0, min(x0 + tile, width))


def rows(photo: np.ndarray, size: tuple[int, int], band: int) -> Iterator[np.ndarray]:
    """The rows of the stretched photo, computed ``band`` rows at a time."""
    height, width = size
    for y0 in range(0, height, band):
        block = _region(photo, size, y0, min(y0 + band, height), 0, width)
        yield from block


def make(out: Path, *, size: int, tile: int, layout: str, photo_path: Path = PHOTO) -> Path:
    """Write the image; returns ``out``."""
    import tifffile

    photo = imread(photo_path)
    shape = (size, size, 3)
    if layout == "tiled":
        return write_tiled_tiff(
            out, tiles(photo, (size, size), tile), shape=shape, dtype=np.uint8, tile=tile
        )
    if out.exists():
        raise FileExistsError(f"{out} exists")
    from dehaze._files import AtomicFile

    with AtomicFile(out, overwrite=False, suffix=".tif") as tmp:
        with tifffile.TiffWriter(tmp.name, bigtiff=True) as writer:
            writer.write(
                rows(photo, (size, size), 256),
                shape=shape,
                dtype=np.uint8,
                photometric="rgb",
                rowsperstrip=64,
                metadata=None,
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=30000, help="side in pixels (30000)")
    parser.add_argument("--tile", type=int, default=512, help="TIFF tile side (512)")
    parser.add_argument("--layout", choices=("tiled", "striped"), default="tiled")
    parser.add_argument("--photo", type=Path, default=PHOTO)
    args = parser.parse_args(argv)
    make(args.out, size=args.size, tile=args.tile, layout=args.layout, photo_path=args.photo)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e9:.2f} GB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
