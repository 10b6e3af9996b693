"""Real hazy photos dehazed by every classical method, in one figure.

Rows are the photos of ``$DEHAZE_DATA/real`` (default ``../shared/data/real``), columns the
methods: hazy input, the default (ClearHaze), plain DCP, RobustDCP and the colour attenuation
prior. Each cell is labelled with its fog density (FADE, ``dehaze.metrics.fog_density``;
lower = less fog) when the FADE model files are in ``$DEHAZE_DATA/fade``. Without the data
folder the built-in synthetic sample is used.

Usage::

    python examples/real_photos_methods.py OUTDIR [--max-size N] [--limit N]

Writes ``OUTDIR/real_photos_methods.png`` (refuses to overwrite an existing file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

import dehaze
from dehaze import ColorAttenuationPrior, RobustDCP
from dehaze._data import data_root
from dehaze._sample import synthetic_hazy
from dehaze.io import imread, imwrite
from dehaze.metrics import fog_density

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
LABEL_HEIGHT = 22


def methods() -> dict[str, Any]:
    return {
        "hazy": None,
        "default (ClearHaze)": dehaze.ClearHaze(),
        "plain DCP": dehaze.DarkChannelPrior(),
        "RobustDCP": RobustDCP(),
        "CAP": ColorAttenuationPrior(),
    }


def fog_or_none(image: NDArray[Any]) -> float | None:
    """FADE of ``image``, or None when the model files (or a defined value) are missing."""
    try:
        return fog_density(image)
    except (FileNotFoundError, ValueError):
        return None


def photos(limit: int | None) -> list[tuple[str, NDArray[Any]]]:
    folder = data_root() / "real"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES)
    if not files:
        hazy, _, _ = synthetic_hazy()
        return [("synthetic", hazy)]
    if limit is not None:
        files = files[:limit]
    return [(p.stem, imread(p)) for p in files]


def to_rgb8(image: NDArray[Any]) -> NDArray[np.uint8]:
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, np.newaxis], 3, axis=2)
    return np.ascontiguousarray(image.astype(np.uint8))


def fit(image: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    """Resize into a width × height cell, keeping the aspect ratio (black padding)."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    cell = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    cell[top : top + size[1], left : left + size[0]] = small
    return cell


def label(text: str, width: int) -> NDArray[np.uint8]:
    strip = np.full((LABEL_HEIGHT, width, 3), 255, dtype=np.uint8)
    cv2.putText(strip, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def build_figure(max_size: int, limit: int | None, cell: int = 220) -> NDArray[np.uint8]:
    table = methods()
    rows = [np.concatenate([label(name, cell) for name in table], axis=1)]
    for name, photo in photos(limit):
        height, width = photo.shape[:2]
        scale = min(1.0, max_size / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        cell_h = max(1, round(cell * photo.shape[0] / photo.shape[1]))
        cells, notes = [], []
        for method in table.values():
            out = photo if method is None else method(photo).image
            cells.append(fit(to_rgb8(out), cell, cell_h))
            fog = fog_or_none(out)
            notes.append(label(f"{name}" if fog is None else f"{name}: FADE {fog:.2f}", cell))
        rows.append(np.concatenate(notes, axis=1))
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--max-size", type=int, default=640, help="longer side before dehazing")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    args = parser.parse_args(argv)
    if args.max_size < 8:
        parser.error("--max-size must be at least 8")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    args.outdir.mkdir(parents=True, exist_ok=True)
    target = args.outdir / "real_photos_methods.png"
    if target.exists():  # before the minutes of work, not after them
        parser.error(f"{target} exists; remove it or choose another folder")
    imwrite(target, build_figure(args.max_size, args.limit))
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
