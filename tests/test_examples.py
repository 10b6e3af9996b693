"""The example scripts run end to end on one small image and write valid PNG figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dehaze._sample import synthetic_hazy
from dehaze.io import imread, imwrite

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

FIGURES = {
    "side_by_side": ["side_by_side_small.png"],
    "compare_methods": ["compare_methods.png"],
    "parameter_effects": ["parameter_effects_omega.png", "parameter_effects_patch.png"],
}


def run_example(name: str, *args: str | Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DEHAZE_DATA=str(data), MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def small_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hazy, _, _ = synthetic_hazy()
    path = tmp_path_factory.mktemp("img") / "small.png"
    imwrite(path, hazy[::6, ::5])  # 86 × 103
    return path


def check_figures(out: Path, names: list[str]) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in names:
        figure = imread(out / name)
        assert figure.ndim == 3 and min(figure.shape[:2]) > 100
        assert figure.std() > 10  # not a blank canvas


def test_side_by_side(small_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures"
    proc = run_example("side_by_side", out, "--image", small_image, data=tmp_path / "no-data")
    assert proc.returncode == 0, proc.stderr
    check_figures(out, FIGURES["side_by_side"])


def test_compare_methods_says_which_networks_are_missing(small_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures"
    proc = run_example("compare_methods", out, "--image", small_image, data=tmp_path / "no-data")
    assert proc.returncode == 0, proc.stderr
    assert "AOD-Net left out: weights not found" in proc.stdout
    assert "DehazeNet left out: weights not found" in proc.stdout
    check_figures(out, FIGURES["compare_methods"])


def test_parameter_effects_falls_back_to_the_synthetic_sample(tmp_path: Path) -> None:
    out = tmp_path / "figures"
    proc = run_example("parameter_effects", out, "--max-size", "96", data=tmp_path / "no-data")
    assert proc.returncode == 0, proc.stderr
    assert "synthetic sample" in proc.stdout
    check_figures(out, FIGURES["parameter_effects"])


@pytest.mark.data
def test_compare_methods_uses_the_published_weights_and_real_photos(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "figures"
    proc = run_example("compare_methods", out, "--max-size", "64", data=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "left out" not in proc.stdout, proc.stdout
    assert "synthetic" not in proc.stdout
    check_figures(out, FIGURES["compare_methods"])
