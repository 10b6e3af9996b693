"""Start-up: what `import dehaze` loads, and the command line's compile message."""

from __future__ import annotations

import json
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


@pytest.mark.slow
def test_the_demo_says_it_compiles_on_a_cold_cache_only(tmp_path: Path) -> None:
    # `dehaze demo` is the README's first command: its first run compiles for seconds
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))

    def demo() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "dehaze", "demo", "-o", str(tmp_path / "demo")]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)

    cold = demo()
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count(COMPILING_MESSAGE) == 1
    warm = demo()
    assert warm.returncode == 0, warm.stderr
    assert COMPILING_MESSAGE not in warm.stderr
    assert "wrote" in warm.stdout


#: Imported on first use only: `import dehaze` must not load them (dehaze/_lazy.py).
LAZY = (
    "numba",
    "llvmlite",
    "cv2",
    "scipy",
    "skimage",
    "tqdm",
    "dehaze._kernels",
    "dehaze.benchmark",
)

IMPORT_THEN_DEHAZE = f"""
import json, sys
import numpy as np
import dehaze
lazy = {LAZY!r}
before = sorted(m for m in sys.modules if m.startswith(lazy))
dehaze.set_num_threads(2)  # the first kernel calls come from two threads at once
image = (np.random.default_rng(0).random((96, 128, 3)) * 150 + 80).astype(np.uint8)
result = dehaze.dehaze(image)
after = sorted(m for m in sys.modules if m.startswith(lazy))
print(json.dumps({{"before": before, "after": after, "dtype": str(result.image.dtype)}}))
"""


def test_import_dehaze_leaves_numba_opencv_and_friends_for_later() -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_THEN_DEHAZE],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found["before"] == []
    # the placeholders import the real modules when first used, from the band threads too
    assert {"numba", "cv2", "dehaze._kernels.clear"} <= set(found["after"])
    assert found["dtype"] == "uint8"


def test_a_lazy_module_forwards_to_the_real_one() -> None:
    from dehaze._lazy import LazyModule, lazy_module

    placeholder = LazyModule("json.decoder")  # a module importing it is harmless
    assert "not imported yet" in repr(placeholder)
    from json.decoder import JSONDecoder

    assert placeholder.JSONDecoder is JSONDecoder
    assert "imported" in repr(placeholder) and "not" not in repr(placeholder)
    with pytest.raises(AttributeError):
        placeholder.no_such_name  # noqa: B018
    assert lazy_module("json") is sys.modules["json"]  # already imported: itself
