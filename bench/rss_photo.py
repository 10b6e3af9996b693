"""Peak memory of the command line on a 6000×4000 JPEG (issue 14's RSS target: ≤ 0.5 GB).

Makes the photo from a real one in $DEHAZE_DATA/real (bicubic upscale, JPEG quality 92) in a
temporary folder, runs ``dehaze PHOTO -o OUT`` (the default method, image only, then with
``--save-transmission --save-depth``) in a child process and prints each run's peak resident
set size (``getrusage`` of the child), beside that of ``python -c 'import dehaze'``.

Usage: ``python bench/rss_photo.py``
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

from dehaze._data import data_root
from dehaze.io import imread


def peak_rss_mb(args: list[str]) -> float:
    """Run ``args`` in a fresh child and return its peak RSS in MB (the only child run)."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024  # kB on Linux


def main() -> None:
    source = data_root() / "real" / "foggy_house.jpg"
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo_6000x4000.jpg"
        big = cv2.resize(imread(source), (6000, 4000), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(
            str(photo), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        del big
        command = [sys.executable, "-m", "dehaze"]
        rows = [("python -c 'import dehaze'", peak_rss_mb([sys.executable, "-c", "import dehaze"]))]
        for label, extra in (
            ("dehaze photo -o out", []),
            ("+ --save-transmission --save-depth", ["--save-transmission", "--save-depth"]),
        ):
            out = Path(tmp) / f"out{len(rows)}"
            rows.append((label, peak_rss_mb([*command, str(photo), "-o", str(out), *extra])))
    print(f"6000x4000 JPEG from {source.name}")
    print("| run | peak RSS MB |")
    print("|---|---|")
    for label, mb in rows:
        print(f"| {label} | {mb:.0f} |")


if __name__ == "__main__":
    main()
