"""Summaries of benchmark records: per-method means, the markdown table, the CSV, the summary."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dehaze.benchmark.photos import CLEARED_RATIO, HAZY_FADE, PhotoSet, PhotoSummary, photo_table
from dehaze.benchmark.runner import Record
from dehaze.datasets import PairSet, Skipped
from dehaze.io import write_bytes_atomic

__all__ = [
    "OUTPUT_FILES",
    "Summary",
    "markdown_table",
    "records_csv",
    "summarize",
    "summary_markdown",
    "write_output",
]

#: Names of the output files written into ``--output``.
OUTPUT_FILES = ("per_image.csv", "summary.md", "psnr_vs_time.png")


@dataclass(frozen=True)
class Summary:
    """One row of the markdown table: a method on a split."""

    method: str
    split: str
    n: int
    psnr: float
    ssim: float
    ciede2000: float
    median_ms: float
    ms_per_megapixel: float
    worst_gain: float = math.nan  # min over images of PSNR(output) − PSNR(hazy input)


def summarize(records: Sequence[Record]) -> list[Summary]:
    """Aggregate records per (method, split), in first-seen order.

    PSNR, SSIM and CIEDE2000 are means over images (a PSNR of ``inf`` — an output equal to
    its reference — makes the mean ``inf``); time is the median over images of the call
    time, and the median over images of the time per megapixel.
    """
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.method, record.split), []).append(record)
    rows: list[Summary] = []
    for (method, split), group in groups.items():
        rows.append(
            Summary(
                method=method,
                split=split,
                n=len(group),
                psnr=float(np.mean([r.psnr for r in group])),
                ssim=float(np.mean([r.ssim for r in group])),
                ciede2000=float(np.mean([r.ciede2000 for r in group])),
                median_ms=statistics.median(r.ms for r in group),
                ms_per_megapixel=statistics.median(
                    r.ms / (r.width * r.height / 1e6) for r in group
                ),
                worst_gain=min(r.psnr - r.input_psnr for r in group),
            )
        )
    return rows


def _fmt(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def markdown_table(rows: Sequence[Summary]) -> str:
    """Render summaries as a markdown table (one row per method and split)."""
    lines = [
        "| method | split | n | PSNR (dB) | SSIM | CIEDE2000 | worst pair ΔPSNR vs input "
        "| median ms / image | ms / MP |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.method} | {row.split} | {row.n} | {_fmt(row.psnr, 2)} | "
            f"{_fmt(row.ssim, 4)} | {_fmt(row.ciede2000, 2)} | {_fmt(row.worst_gain, 2)} | "
            f"{row.median_ms:.1f} | {row.ms_per_megapixel:.1f} |"
        )
    return "\n".join(lines) + "\n"


def records_csv(records: Sequence[Any]) -> str:
    """Every record (a dataclass) as one CSV row; floats written with ``repr`` (exact)."""
    buffer = io.StringIO()
    if not records:
        return ""
    names = [f.name for f in dataclasses.fields(records[0])]
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = dataclasses.asdict(record)
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


def write_output(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through a temporary file; never clobber unless told."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    write_bytes_atomic(path, data, overwrite=overwrite)


def _list_sets(sets: Sequence[PairSet] | Sequence[PhotoSet], unit: str, limit: int | None) -> str:
    """``split = root (n pairs[, first k used])`` for each set, separated by semicolons."""
    used = f", first {limit} used" if limit else ""
    return "; ".join(f"{s.split} = {s.root} ({len(s)} {unit}{used})" for s in sets)


def summary_markdown(
    rows: Sequence[Summary],
    methods: Sequence[tuple[str, str]],
    sets: Sequence[PairSet],
    skipped: Sequence[Skipped],
    command: str,
    limit: int | None,
    photo_rows: Sequence[PhotoSummary] = (),
    photo_sets: Sequence[PhotoSet] = (),
) -> str:
    """Write the ``summary.md`` text: command, protocol, tables, sets, methods and machine."""
    import numba

    lines = ["# Benchmark results", "", f"Command: `{command}`", ""]
    if rows:
        lines += [
            "Protocol: dehaze.metrics (float64 in [0, 1], data range 1; SSIM = scikit-image "
            "`structural_similarity(channel_axis=-1, data_range=1)`, 7×7 uniform window; "
            "CIEDE2000 = mean ΔE00, sRGB/D65). Scores are means over images; the method's "
            "output is scored in the input's dtype (uint8). Time: the method call alone, "
            "after one untimed warm-up call; median over images.",
            "",
            markdown_table(rows),
            "Sets: " + _list_sets(sets, "pairs", limit),
            "",
        ]
    if photo_rows:
        lines += [
            "Photos without ground truth: fog density FADE (Choi, You & Bovik 2015, "
            "`dehaze.metrics.fog_density`, images shrunk to ≤ 640 px, lower = less fog) of "
            f"the output; a hazy photo (input FADE ≥ {HAZY_FADE:g}) counts as cleared at ≤ "
            f"{CLEARED_RATIO:g}× its input's FADE; brightness change = mean luma of the "
            "output minus the input's, 0–255 (real clear scenes are darker than their hazy "
            "photos, so a negative change is expected).",
            "",
            photo_table(photo_rows),
            "Photo sets: " + _list_sets(photo_sets, "photos", limit),
            "",
        ]
    lines += [
        "Methods:",
        "",
    ]
    lines += [f"- `{label}`: {description}" for label, description in methods]
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}.",
    ]
    if skipped:
        lines += ["", f"Skipped ({len(skipped)}):", ""]
        lines += [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"
