"""Shared helpers of the example scripts: command line, input photos, figure saving.

Photos come from ``$DEHAZE_DATA/real`` (default ``../shared/data/real``; see its
``index.csv``) or from ``--image``; without either the built-in synthetic sample is used, so
every example runs anywhere.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from dehaze._data import data_root
from dehaze.io import AtomicFile, imread, split_alpha


def parser(description: str, default_images: tuple[str, ...]) -> argparse.ArgumentParser:
    """Return the common command line: OUTDIR, --image (repeatable), --max-size, --all."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("outdir", type=Path, help="folder the PNG figures are written to")
    p.add_argument(
        "--image",
        action="append",
        type=Path,
        metavar="PATH",
        help="hazy photo to use (repeatable; default: "
        + ", ".join(default_images)
        + " from $DEHAZE_DATA/real, else the synthetic sample)",
    )
    p.add_argument(
        "--all", action="store_true", help="use every photo listed in $DEHAZE_DATA/real/index.csv"
    )
    p.add_argument(
        "--max-size",
        type=int,
        default=640,
        metavar="N",
        help="shrink photos so the longer side is at most N pixels (default 640)",
    )
    return p


def real_folder() -> Path:
    return data_root() / "real"


def _shrink(image: NDArray[Any], max_size: int) -> NDArray[Any]:
    height, width = image.shape[:2]
    scale = max_size / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def _as_rgb8(image: NDArray[Any], name: str = "image") -> NDArray[np.uint8]:
    image, alpha = split_alpha(image)
    if alpha is not None:  # the figures show colour only: say so rather than drop it quietly
        print(f"{name}: its alpha channel is not shown in the figures")
    if image.dtype == np.uint16:
        image = np.rint(image / 257.0).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, np.newaxis], 3, axis=2)
    return np.asarray(image, dtype=np.uint8)


def load_images(
    args: argparse.Namespace, default_images: tuple[str, ...]
) -> list[tuple[str, NDArray[np.uint8]]]:
    """Return (name, RGB uint8 image) pairs as chosen on the command line."""
    paths: list[Path]
    if args.image:
        paths = list(args.image)
    elif args.all and (real_folder() / "index.csv").is_file():
        with (real_folder() / "index.csv").open(newline="") as fh:
            paths = [data_root() / row["file"] for row in csv.DictReader(fh)]
    else:
        paths = [real_folder() / name for name in default_images]
        paths = [p for p in paths if p.is_file()]
    if not paths:
        from dehaze._sample import synthetic_hazy

        print(f"no photos in {real_folder()} (set DEHAZE_DATA); using the synthetic sample")
        hazy, _, _ = synthetic_hazy()
        return [("synthetic", _shrink(hazy, args.max_size))]
    return [(p.stem, _shrink(_as_rgb8(imread(p), p.name), args.max_size)) for p in paths]


def save(figure: Any, outdir: Path, name: str) -> Path:
    """Save a matplotlib figure as OUTDIR/name atomically (dehaze.io's writer).

    Figures are regenerated outputs, so an older figure of the same name is replaced, but a
    reader never sees a half-written file.
    """
    import matplotlib.pyplot as plt

    path = outdir / name
    with AtomicFile(path, overwrite=True, suffix=".png") as tmp, open(tmp.name, "wb") as fh:
        figure.savefig(fh, format="png", dpi=100)
    plt.close(figure)
    print(f"wrote {path}")
    return path
