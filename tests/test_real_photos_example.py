"""examples/real_photos_methods.py runs on one small photo and writes a valid figure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dehaze._sample import synthetic_hazy
from dehaze.io import imread, imwrite

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "real_photos_methods.py"


def _run(outdir: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DEHAZE_DATA=str(data))
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(outdir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_figure_from_one_small_photo(tmp_path: Path):
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    hazy, _, _ = synthetic_hazy()
    imwrite(data / "real" / "small.png", hazy[::6, ::5])  # 86 × 103
    proc = _run(tmp_path / "out", data, "--max-size", "64")
    assert proc.returncode == 0, proc.stderr
    figure = imread(tmp_path / "out" / "real_photos_methods.png")
    # header + (label + row) for one photo; five method columns of 220 px
    assert figure.shape[1] == 5 * 220
    assert figure.ndim == 3 and figure.shape[0] > 22 * 2
    # the method columns differ from the hazy column (something was dehazed)
    row = figure[44:, :]
    hazy_cell = row[:, :220].astype(int)
    assert any(
        abs(row[:, k * 220 : (k + 1) * 220].astype(int) - hazy_cell).mean() > 1 for k in (1, 2, 4)
    )
    # a second run refuses to overwrite before any work: a usage error, no traceback,
    # the figure untouched
    before = (tmp_path / "out" / "real_photos_methods.png").read_bytes()
    again = _run(tmp_path / "out", data, "--max-size", "64")
    assert again.returncode == 2, again.stderr
    assert "real_photos_methods.png exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert (tmp_path / "out" / "real_photos_methods.png").read_bytes() == before


def test_rejects_bad_limit(tmp_path: Path):
    proc = _run(tmp_path / "out", tmp_path, "--limit", "0")
    assert proc.returncode == 2
    assert "--limit" in proc.stderr
