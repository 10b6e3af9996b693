"""Score methods on real hazy photos without ground truth: fog density and brightness change.

Real haze is where the synthetic sets mislead (SOTS-outdoor's "clear" images keep haze, so
doing little scores well there). A folder of hazy photos has no reference image, so each
output is scored by

* its fog density, FADE (Choi, You & Bovik 2015; :func:`dehaze.metrics.fog_density`, images
  shrunk to at most 640 px on the long side, area interpolation; lower = less fog), beside the
  hazy input's (NaN for a flat output, whose density is undefined: it then shows as NaN in
  the means too, so such a result cannot pass unseen); a photo counts as *cleared* when the
  output's density is at most :data:`CLEARED_RATIO` of the input's, among the photos whose
  input density is at least :data:`HAZY_FADE`;
* its mean brightness change, mean Rec. 601 luma of the output minus that of the input, on
  the 0–255 scale (clear scenes *are* darker than their hazy photos: O-HAZE's ground truths
  are 23–94 grey levels below the hazy images, so a negative change is expected, not a fault).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dehaze.datasets import IMAGE_SUFFIXES
from dehaze.io import imread
from dehaze.metrics import fog_density
from dehaze.result import Dehazer

__all__ = [
    "CLEARED_RATIO",
    "HAZY_FADE",
    "PhotoRecord",
    "PhotoSet",
    "PhotoSummary",
    "find_photos",
    "photo_table",
    "run_photos",
    "summarize_photos",
]

#: Input fog density from which a photo counts as hazy in the summary.
HAZY_FADE = 1.0
#: Output/input fog-density ratio at or below which a hazy photo counts as cleared.
CLEARED_RATIO = 0.6
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class PhotoSet:
    """Hazy photos without ground truth (a folder's image files, in name order)."""

    split: str
    root: Path
    photos: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.photos)


@dataclass(frozen=True)
class PhotoRecord:
    """One method's result on one photo."""

    split: str
    method: str
    image: str
    width: int
    height: int
    ms: float
    fog: float
    input_fog: float
    brightness_change: float


@dataclass(frozen=True)
class PhotoSummary:
    """One row of the photo table: a method on a photo set."""

    method: str
    split: str
    n: int
    mean_fog: float
    median_fog: float
    hazy: int  # photos with input fog density >= HAZY_FADE
    cleared: int  # of those, brought to <= CLEARED_RATIO x their input's density
    brightness_change: float
    median_ms: float


def find_photos(folder: Path, split: str | None = None) -> PhotoSet:
    """List the image files of ``folder`` (not recursive, no hidden files), in name order."""
    if not folder.is_dir():
        raise FileNotFoundError(f"photo folder {folder} not found")
    photos = tuple(
        sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
    )
    if not photos:
        raise FileNotFoundError(f"no image files in {folder}")
    return PhotoSet(split or folder.name, folder, photos)


def _mean_luma(image: NDArray[Any]) -> float:
    arr = np.asarray(image)
    scale = 255.0 / float(np.iinfo(arr.dtype).max) if arr.dtype.kind == "u" else 255.0
    values = arr.astype(np.float64) * scale
    luma = values @ _LUMA if values.ndim == 3 else values
    return float(luma.mean())


def _fog(image: NDArray[Any]) -> float:
    """FADE of ``image``; NaN where it is undefined (a flat image: no patch has features)."""
    try:
        return fog_density(image)
    except ValueError as exc:
        if "undefined" not in str(exc):
            raise
        return float("nan")


def run_photos(
    sets: Sequence[PhotoSet],
    methods: Sequence[tuple[str, Dehazer]],
    *,
    limit: int | None = None,
    progress: bool | None = None,
    on_skip: Callable[[Path, str], None] | None = None,
) -> list[PhotoRecord]:
    """Run every method on every photo; score fog density and brightness change.

    Each method is called once untimed first (JIT compilation); the time is the call alone.
    A photo that cannot be read is reported to ``on_skip`` (raised when it is None). The
    progress bar shows always (True), never (False) or on a terminal only (None).
    """
    from tqdm import tqdm

    records: list[PhotoRecord] = []
    warmed: set[str] = set()
    chosen = [s.photos[:limit] if limit else s.photos for s in sets]
    total = sum(len(c) for c in chosen)
    with tqdm(total=total, unit="photo", disable=None if progress is None else not progress) as bar:
        for photo_set, photos in zip(sets, chosen, strict=True):
            for path in photos:
                try:
                    hazy = imread(path)
                    if hazy.ndim == 3 and hazy.shape[2] == 4:
                        raise ValueError("has an alpha channel; photos must be RGB or gray")
                except (OSError, ValueError) as exc:
                    if on_skip is None:
                        raise
                    on_skip(path, str(exc))
                    bar.update(1)
                    continue
                input_fog = _fog(hazy)
                input_luma = _mean_luma(hazy)
                for label, method in methods:
                    if label not in warmed:
                        method(hazy)
                        warmed.add(label)
                    start = time.perf_counter()
                    output = np.asarray(method(hazy).image)
                    ms = (time.perf_counter() - start) * 1e3
                    records.append(
                        PhotoRecord(
                            split=photo_set.split,
                            method=label,
                            image=path.name,
                            width=hazy.shape[1],
                            height=hazy.shape[0],
                            ms=ms,
                            fog=_fog(output),
                            input_fog=input_fog,
                            brightness_change=_mean_luma(output) - input_luma,
                        )
                    )
                bar.update(1)
    return records


def summarize_photos(records: Sequence[PhotoRecord]) -> list[PhotoSummary]:
    """Aggregate photo records per (method, split), in first-seen order."""
    groups: dict[tuple[str, str], list[PhotoRecord]] = {}
    for record in records:
        groups.setdefault((record.method, record.split), []).append(record)
    rows = []
    for (method, split), group in groups.items():
        hazy = [r for r in group if r.input_fog >= HAZY_FADE]
        fogs = [r.fog for r in group]
        rows.append(
            PhotoSummary(
                method=method,
                split=split,
                n=len(group),
                mean_fog=float(np.mean(fogs)),
                median_fog=float(np.median(fogs)),
                hazy=len(hazy),
                cleared=sum(r.fog <= CLEARED_RATIO * r.input_fog for r in hazy),
                brightness_change=float(np.mean([r.brightness_change for r in group])),
                median_ms=statistics.median(r.ms for r in group),
            )
        )
    return rows


def photo_table(rows: Sequence[PhotoSummary]) -> str:
    """Render photo summaries as a markdown table."""
    lines = [
        "| method | photos | n | FADE mean | FADE median | hazy photos cleared "
        f"(input FADE ≥ {HAZY_FADE:g} → ≤ {CLEARED_RATIO:g}×) | brightness change (0–255) "
        "| median ms / photo |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cleared = f"{row.cleared} / {row.hazy}" if row.hazy else "–"
        lines.append(
            f"| {row.method} | {row.split} | {row.n} | {row.mean_fog:.3f} | "
            f"{row.median_fog:.3f} | {cleared} | {row.brightness_change:+.1f} | "
            f"{row.median_ms:.1f} |"
        )
    return "\n".join(lines) + "\n"
