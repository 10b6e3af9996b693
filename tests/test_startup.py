"""Start-up: what `import dehaze` loads, and the command line's compile message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dehaze.cli import COMPILING_MESSAGE


def _run_dehaze(image: Path, out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "dehaze", str(image), "-o", str(out), "--overwrite"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_the_command_says_it_compiles_on_a_cold_cache_only(tmp_path: Path) -> None:
    image = tmp_path / "hazy.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(image), (rng.random((48, 64, 3)) * 150 + 80).astype(np.uint8))
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    cold = _run_dehaze(image, tmp_path / "out", cache)
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count(COMPILING_MESSAGE) == 1
    assert any(cache.rglob("*.nbi")), "the cold run should have filled the cache"
    warm = _run_dehaze(image, tmp_path / "out", cache)
    assert warm.returncode == 0, warm.stderr
    assert COMPILING_MESSAGE not in warm.stderr
    assert "1 done" in warm.stderr
