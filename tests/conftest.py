"""Shared fixtures: the evaluation-data folder and random images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dehaze._data import data_root

ROOT = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    # the library's rule; its relative fallback is read from the project root, not the cwd
    root = data_root()
    return root if root.is_absolute() else ROOT / root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder; tests using it are marked ``data``.

    Outside CI a missing folder skips the test; in CI (``CI`` set) it fails, so a data test
    can never pass there by being skipped.
    """
    root = _data_root()
    if not (root / "README.md").is_file():
        message = f"shared data not found at {root} (set DEHAZE_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20260123)
