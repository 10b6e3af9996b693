"""Scoring hazy photos without ground truth: fog density and brightness change."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import ArrayLike

from dehaze.benchmark import main
from dehaze.benchmark.photos import (
    PhotoRecord,
    find_photos,
    photo_table,
    run_photos,
    summarize_photos,
)
from dehaze.io import imwrite
from dehaze.metrics import fog_density
from dehaze.registry import Identity
from dehaze.result import DehazeResult


class Darken:
    """A test method: halve every pixel (less bright, and not haze removal)."""

    def __call__(self, image: ArrayLike) -> DehazeResult:
        arr = np.asarray(image)
        return DehazeResult(image=(arr // 2).astype(arr.dtype))


def test_find_photos_lists_images_in_name_order(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    found = find_photos(tmp_path, "mine")
    assert found.split == "mine" and [p.name for p in found.photos] == ["a.jpg", "b.png"]
    assert find_photos(tmp_path).split == tmp_path.name
    with pytest.raises(FileNotFoundError, match="no image files"):
        find_photos(tmp_path / "sub")
    with pytest.raises(FileNotFoundError, match="not found"):
        find_photos(tmp_path / "none")


def test_summary_counts_cleared_hazy_photos_and_brightness() -> None:
    def record(method: str, fog: float, input_fog: float, change: float) -> PhotoRecord:
        return PhotoRecord("real", method, "x.png", 10, 10, 1.0, fog, input_fog, change)

    records = [
        record("m", 0.5, 1.0, -10.0),  # hazy, cleared exactly at 0.5 <= 0.6 x 1.0
        record("m", 0.61, 1.0, -20.0),  # hazy, not cleared
        record("m", 0.9, 0.95, 0.0),  # not hazy (input < 1.0)
        record("n", 2.0, 2.0, 0.0),
    ]
    rows = summarize_photos(records)
    assert [(r.method, r.n, r.hazy, r.cleared) for r in rows] == [("m", 3, 2, 1), ("n", 1, 1, 0)]
    assert rows[0].mean_fog == pytest.approx((0.5 + 0.61 + 0.9) / 3)
    assert rows[0].median_fog == pytest.approx(0.61)
    assert rows[0].brightness_change == pytest.approx(-10.0)
    table = photo_table(rows)
    assert "| m | real | 3 | 0.670 | 0.610 | 1 / 2 | -10.0 |" in table


@pytest.mark.data
def test_run_photos_scores_fog_and_brightness(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("canon.jpg", "y01_yosemite.png"):
        shutil.copy(data_dir / "real" / name, folder / name)
    (folder / "broken.png").write_bytes(b"not an image")
    photos = find_photos(folder)
    with pytest.raises(ValueError, match="broken.png"):
        run_photos([photos], [("identity", Identity())], progress=False)
    skipped: list[str] = []
    records = run_photos(
        [photos],
        [("identity", Identity()), ("darken", Darken())],
        progress=False,
        on_skip=lambda path, reason: skipped.append(path.name),
    )
    assert skipped == ["broken.png"]
    assert [(r.method, r.image) for r in records] == [
        ("identity", "canon.jpg"),
        ("darken", "canon.jpg"),
        ("identity", "y01_yosemite.png"),
        ("darken", "y01_yosemite.png"),
    ]
    from dehaze.io import imread

    for r in records:
        image = imread(folder / r.image)
        assert r.input_fog == pytest.approx(fog_density(image))
        if r.method == "identity":
            assert r.fog == r.input_fog and r.brightness_change == 0.0
        else:
            assert r.fog == pytest.approx(fog_density(image // 2))
            luma = (image.astype(np.float64) @ [0.299, 0.587, 0.114]).mean()
            half = ((image // 2).astype(np.float64) @ [0.299, 0.587, 0.114]).mean()
            assert r.brightness_change == pytest.approx(half - luma)


@pytest.mark.data
def test_bench_scores_a_photo_folder(data_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    folder.mkdir()
    imwrite(folder / "a.png", (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "photos"), "--photos", str(folder), "--split", "real"]
    # the data folder has no real/ split: a clear error, exit 1
    assert main([*argv, "--methods", "identity", "--no-plot", "-o", str(out)]) == 1
    assert "no folder" in capsys.readouterr().err
    argv = ["--data", str(data_dir), "--photos", str(folder), "--split", "real", "--limit", "1"]
    status = main([*argv, "--methods", "identity", "dcp", "--no-plot", "-o", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "| dcp | real | 1 |" in printed and "| dcp | photos | 1 |" in printed
    with (out / "per_photo.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["split"], r["method"]) for r in rows] == [
        ("real", "identity"),
        ("real", "dcp"),
        ("photos", "identity"),
        ("photos", "dcp"),
    ]
    assert float(rows[1]["fog"]) < float(rows[1]["input_fog"])  # DCP removes fog
    assert not (out / "per_image.csv").exists()  # no pair set was run
    summary = (out / "summary.md").read_text()
    assert "Photos without ground truth" in summary
    assert f"Photo sets: real = {data_dir / 'real'} (41 photos, first 1 used); photos = " in summary


class Blank:
    """A test method whose output is flat (no defined fog density)."""

    def __call__(self, image: ArrayLike) -> DehazeResult:
        return DehazeResult(image=np.zeros_like(np.asarray(image)))


@pytest.mark.data
def test_an_undefined_fog_density_is_nan_not_a_crash(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(data_dir / "real" / "canon.jpg", folder / "canon.jpg")
    records = run_photos([find_photos(folder)], [("blank", Blank())], progress=False)
    assert np.isnan(records[0].fog) and np.isfinite(records[0].input_fog)
    (row,) = summarize_photos(records)
    assert np.isnan(row.mean_fog) and row.cleared == 0
