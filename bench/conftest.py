"""Benchmark fixtures. Every benchmark times dehaze's kernel and a reference in one run.

Run: ``python -m pytest bench -p no:cacheprovider --benchmark-only --benchmark-json=bench.json``
then ``python bench/report.py bench.json`` for the ratio table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the slow references live beside the tests

SIZES = {"620x460": (460, 620), "1920x1080": (1080, 1920), "3840x2160": (2160, 3840)}


def hazy_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A uint8 hazy-looking test image: smooth scene, depth ramp, white-ish haze."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(0, 1, width)[None, :, None]
    scene = (
        0.5
        + 0.3 * np.sin(8 * x + 5 * y + np.array([0, 1, 2]))
        + 0.1 * rng.random((height, width, 3))
    )
    t = np.exp(-1.5 * (1 - y))
    hazy = np.clip(scene, 0, 1) * t + 0.9 * (1 - t)
    return np.rint(hazy * 255).astype(np.uint8)


@pytest.fixture(scope="session", params=list(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def image(size: str) -> np.ndarray:
    return hazy_image(*SIZES[size])


def run(benchmark, func, *, slow: bool = False):  # type: ignore[no-untyped-def]
    """Time ``func`` after a warm-up call (JIT compilation is never timed)."""
    return benchmark.pedantic(func, rounds=3 if slow else 10, warmup_rounds=1, iterations=1)
