"""Tests for dehaze.datasets on synthetic folder trees made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dehaze.datasets import (
    ImagePair,
    Skipped,
    iter_loaded,
    load_pair,
    ohaze_pairs,
    sots_pairs,
)
from dehaze.io import imwrite


def _image(seed: int, height: int = 12, width: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _write(path: Path, image: np.ndarray) -> Path:
    return imwrite(path, image)


@pytest.fixture
def indoor(tmp_path: Path) -> Path:
    root = tmp_path / "indoor"
    for scene, levels in ((1400, (1, 6)), (1401, (2, 10))):
        _write(root / "gt" / f"{scene}.png", _image(scene))
        for level in levels:
            _write(root / "hazy" / f"{scene}_{level}.png", _image(scene + level))
    return root


@pytest.fixture
def outdoor(tmp_path: Path) -> Path:
    root = tmp_path / "outdoor"
    _write(root / "hazy" / "0001_0.8_0.2.jpg", _image(1))
    _write(root / "clear" / "0001.png", _image(2))
    _write(root / "hazy" / "0066_1_0.08.jpg", _image(3))
    _write(root / "clear" / "0066.jpg", _image(4))
    return root


def test_indoor_pairs_by_scene_id_in_natural_order(indoor: Path) -> None:
    pairs = sots_pairs(indoor)
    assert pairs.split == "indoor"
    assert [p.name for p in pairs] == ["1400_1", "1400_6", "1401_2", "1401_10"]
    assert [p.clear.name for p in pairs] == ["1400.png", "1400.png", "1401.png", "1401.png"]
    assert len(pairs) == 4 and pairs.skipped == ()
    assert all(isinstance(p, ImagePair) and p.split == "indoor" for p in pairs)


def test_outdoor_pairs_with_clear_folder_and_png_or_jpg(outdoor: Path) -> None:
    pairs = sots_pairs(outdoor, split="sots-out")
    assert [(p.hazy.name, p.clear.name) for p in pairs] == [
        ("0001_0.8_0.2.jpg", "0001.png"),
        ("0066_1_0.08.jpg", "0066.jpg"),
    ]
    assert {p.split for p in pairs} == {"sots-out"}


def test_load_pair_returns_the_files(indoor: Path) -> None:
    pair = sots_pairs(indoor).pairs[0]
    hazy, clear = load_pair(pair)
    np.testing.assert_array_equal(hazy, _image(1401))
    np.testing.assert_array_equal(clear, _image(1400))


@pytest.mark.parametrize(("crop", "top", "left"), [("center", 2, 5), ("top-left", 0, 0)])
def test_larger_clear_image_is_cropped(tmp_path: Path, crop: str, top: int, left: int) -> None:
    big = _image(7, height=16, width=26)  # hazy is 12×16: 4 extra rows, 10 extra columns
    _write(tmp_path / "gt" / "5.png", big)
    _write(tmp_path / "hazy" / "5_1.png", _image(8))
    hazy, clear = load_pair(sots_pairs(tmp_path).pairs[0], crop=crop)
    assert clear.shape == hazy.shape == (12, 16, 3)
    np.testing.assert_array_equal(clear, big[top : top + 12, left : left + 16])


def test_smaller_clear_image_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "gt" / "5.png", _image(7, height=10, width=16))
    _write(tmp_path / "hazy" / "5_1.png", _image(8))
    with pytest.raises(ValueError, match=r"5\.png.*smaller"):
        load_pair(sots_pairs(tmp_path).pairs[0])


def test_missing_clear_image_names_the_file(indoor: Path) -> None:
    (indoor / "gt" / "1401.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1401_2\.png.*no clear image 1401"):
        sots_pairs(indoor)
    relaxed = sots_pairs(indoor, strict=False)
    assert [p.name for p in relaxed] == ["1400_1", "1400_6"]
    assert [s.path.name for s in relaxed.skipped] == ["1401_2.png", "1401_10.png"]
    assert all("no clear image" in s.reason for s in relaxed.skipped)


def test_badly_named_image_is_an_error_or_a_reported_skip(indoor: Path) -> None:
    _write(indoor / "hazy" / "snapshot.png", _image(9))
    with pytest.raises(ValueError, match=r"snapshot\.png.*SOTS pattern"):
        sots_pairs(indoor)
    relaxed = sots_pairs(indoor, strict=False)
    assert len(relaxed) == 4
    assert [s.path.name for s in relaxed.skipped] == ["snapshot.png"]


def test_non_image_file_is_listed_not_paired(indoor: Path) -> None:
    (indoor / "hazy" / "notes.txt").write_text("not an image")
    (indoor / "hazy" / ".DS_Store").write_bytes(b"\0")
    pairs = sots_pairs(indoor)
    assert len(pairs) == 4
    assert pairs.skipped == (Skipped(indoor / "hazy" / "notes.txt", pairs.skipped[0].reason),)
    assert "not an image" in str(pairs.skipped[0])


def test_undecodable_image_is_an_error_naming_it_or_a_reported_skip(indoor: Path) -> None:
    broken = indoor / "hazy" / "1401_2.png"
    broken.write_bytes(b"this is not a PNG")
    pairs = sots_pairs(indoor)  # names are fine: found as a pair
    with pytest.raises(ValueError, match=r"1401_2\.png"):
        list(iter_loaded(pairs))
    seen: list[Skipped] = []
    loaded = list(iter_loaded(pairs, strict=False, on_skip=seen.append))
    assert [pair.name for pair, _, _ in loaded] == ["1400_1", "1400_6", "1401_10"]
    assert [s.path for s in seen] == [broken]


def test_ambiguous_clear_image_is_an_error(outdoor: Path) -> None:
    _write(outdoor / "clear" / "0001.jpg", _image(5))
    with pytest.raises(ValueError, match="several clear images"):
        sots_pairs(outdoor)


def test_missing_subfolders_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        sots_pairs(tmp_path / "absent")
    (tmp_path / "hazy").mkdir()
    with pytest.raises(FileNotFoundError, match="gt/"):
        sots_pairs(tmp_path)
    (tmp_path / "gt").mkdir()
    with pytest.raises(ValueError, match="no hazy images"):
        sots_pairs(tmp_path)
    (tmp_path / "clear").mkdir()
    with pytest.raises(ValueError, match="several"):
        sots_pairs(tmp_path)


def test_strict_must_be_bool(indoor: Path) -> None:
    with pytest.raises(TypeError, match="strict"):
        sots_pairs(indoor, strict="no")  # type: ignore[arg-type]


def test_ohaze_pairs_in_subfolders(tmp_path: Path) -> None:
    for nn in (35, 27):
        _write(tmp_path / "hazy" / f"{nn}_outdoor_hazy.jpg", _image(nn))
        _write(tmp_path / "GT" / f"{nn}_outdoor_GT.jpg", _image(nn + 1))
    pairs = ohaze_pairs(tmp_path, split="ohaze")
    assert [(p.hazy.name, p.clear.name) for p in pairs] == [
        ("27_outdoor_hazy.jpg", "27_outdoor_GT.jpg"),
        ("35_outdoor_hazy.jpg", "35_outdoor_GT.jpg"),
    ]


def test_ohaze_pairs_in_one_folder_and_missing_gt(tmp_path: Path) -> None:
    _write(tmp_path / "01_outdoor_hazy.png", _image(1))
    _write(tmp_path / "01_outdoor_GT.png", _image(2))
    _write(tmp_path / "02_outdoor_hazy.png", _image(3))
    with pytest.raises(FileNotFoundError, match=r"02_outdoor_hazy\.png.*02_outdoor_GT"):
        ohaze_pairs(tmp_path)
    relaxed = ohaze_pairs(tmp_path, strict=False)
    assert [p.name for p in relaxed] == ["01_outdoor_hazy"]
    assert [s.path.name for s in relaxed.skipped] == ["02_outdoor_hazy.png"]


def test_load_pair_checks_arguments(indoor: Path) -> None:
    pair = sots_pairs(indoor).pairs[0]
    with pytest.raises(ValueError, match="crop"):
        load_pair(pair, crop="middle")
    with pytest.raises(TypeError, match="ImagePair"):
        load_pair("1400_1.png")  # type: ignore[arg-type]


@pytest.mark.data
def test_shared_data_layouts(data_dir: Path) -> None:
    indoor = sots_pairs(data_dir / "sots" / "indoor")
    outdoor = sots_pairs(data_dir / "sots" / "outdoor")
    ohaze = ohaze_pairs(data_dir / "ohaze")
    assert (len(indoor), len(outdoor), len(ohaze)) == (60, 12, 2)
    assert indoor.skipped == outdoor.skipped == ohaze.skipped == ()
    # every pair named in the data's own index is found, with the same clear image
    import csv

    with open(data_dir / "sots" / "pairs.csv", newline="") as fh:
        listed = {(r["hazy"], r["gt"]) for r in csv.DictReader(fh)}
    found = {
        (str(p.hazy.relative_to(data_dir)), str(p.clear.relative_to(data_dir)))
        for p in (*indoor, *outdoor)
    }
    assert found == listed
