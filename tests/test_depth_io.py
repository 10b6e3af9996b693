"""Depth from transmission, its colour view, and RGB image I/O."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import dehaze
from dehaze._validate import MIN_T0
from dehaze.depth import MIN_BETA
from dehaze.io import imread, imwrite


def test_depth_map_formula():
    t = np.array([[1.0, 0.5, 0.25], [2.0, 0.0, -1.0]])
    d = dehaze.depth_map(t, beta=2.0, t0=0.1)
    expected = -np.log(np.clip(t, 0.1, 1.0)) / 2.0
    np.testing.assert_allclose(d, expected)
    assert np.all(d >= 0) and not np.signbit(d).any()


@pytest.mark.parametrize(
    ("dtype", "beta"),
    [(np.float32, 1e-40), (np.float32, 2e-39), (np.float64, 5e-324), (np.float64, 1e-310)],
)
def test_depth_map_refuses_a_beta_whose_depth_overflows(dtype, beta):
    # these gave [[nan, inf]]: 1 / beta (or the depth) overflows, and t = 1 gives 0 · inf
    t = np.array([[1.0, 0.5]], dtype)
    with pytest.raises(ValueError, match=r"beta must be at least 1e-36 \(the largest depth"):
        dehaze.depth_map(t, beta=beta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depth_map_at_the_smallest_beta_and_t0_is_finite(dtype):
    t = np.array([[1.0, 0.5, 1e-30, 0.0, -1.0]], dtype)
    d = dehaze.depth_map(t, beta=MIN_BETA, t0=MIN_T0)
    assert d.dtype == dtype and np.all(np.isfinite(d)) and d[0, 0] == 0.0
    expected = -np.log(np.clip(t.astype(np.float64), MIN_T0, 1.0)) / MIN_BETA
    np.testing.assert_allclose(d, expected, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (200, 130), (3, 500)])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("threads", [1, 2])
def test_depth_map_matches_numpy(rng, dtype, shape, layout, threads):
    """The banded JIT + cv2.log path against −log(clip(t)) / β in float64."""
    big = rng.uniform(-0.2, 1.2, (2 * shape[0], 2 * shape[1])).astype(dtype)
    t = {
        "C": big[: shape[0], : shape[1]].copy(),
        "F": np.asfortranarray(big[: shape[0], : shape[1]]),
    }.get(layout, big[::2, ::2])
    with dehaze.num_threads(threads):
        d = dehaze.depth_map(t, beta=1.7, t0=0.05)
    expected = -np.log(np.clip(t.astype(np.float64), 0.05, 1.0)) / 1.7
    assert d.dtype == dtype and d.shape == shape
    tol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(d, expected, rtol=tol, atol=tol)
    assert not np.signbit(d).any()


def test_depth_map_keeps_float32():
    assert dehaze.depth_map(np.full((2, 2), 0.5, np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"beta": 0.0}, "beta must be in"), ({"t0": 0.0}, "t0 must be in"), ({"t0": 1.0}, "t0")],
)
def test_depth_map_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dehaze.depth_map(np.ones((2, 2)), **kwargs)


def test_colorize_depth():
    depth = np.linspace(0, 2, 50).reshape(5, 10)
    rgb = dehaze.colorize_depth(depth)
    assert rgb.shape == (5, 10, 3) and rgb.dtype == np.uint8
    expected = cv2.cvtColor(
        cv2.applyColorMap(np.rint(depth / 2 * 255).astype(np.uint8), cv2.COLORMAP_TURBO),
        cv2.COLOR_BGR2RGB,
    )
    np.testing.assert_array_equal(rgb, expected)
    gray = dehaze.colorize_depth(depth, colormap="gray")
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    assert dehaze.colorize_depth(np.zeros((3, 3))).shape == (3, 3, 3)
    with pytest.raises(ValueError, match="colormap must be one of"):
        dehaze.colorize_depth(depth, colormap="rainbow")
    with pytest.raises(ValueError, match="non-negative"):
        dehaze.colorize_depth(-depth - 1)


@pytest.mark.parametrize("suffix", (".png", ".bmp", ".tif"))
def test_imwrite_imread_round_trip_rgb(tmp_path: Path, rng, suffix):
    img = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    path = imwrite(tmp_path / f"a{suffix}", img)
    np.testing.assert_array_equal(imread(path), img)
    # the file on disk is BGR, as OpenCV writes it
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], img)


def test_uint16_and_gray_round_trip(tmp_path: Path, rng):
    img16 = rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    np.testing.assert_array_equal(imread(imwrite(tmp_path / "b.png", img16)), img16)
    gray = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    np.testing.assert_array_equal(imread(imwrite(tmp_path / "g.png", gray)), gray)
    with pytest.raises(ValueError, match="cannot store 16-bit"):
        imwrite(tmp_path / "b.jpg", img16)


def test_imwrite_refuses_to_overwrite(tmp_path: Path):
    path = imwrite(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        imwrite(path, np.ones((2, 2, 3), np.uint8))
    np.testing.assert_array_equal(imread(path), 0)
    imwrite(path, np.ones((2, 2, 3), np.uint8), overwrite=True)
    np.testing.assert_array_equal(imread(path), 1)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary files left


def test_imwrite_float_and_bad_input(tmp_path: Path):
    path = imwrite(tmp_path / "f.png", np.full((2, 2, 3), 0.5))
    np.testing.assert_array_equal(imread(path), 128)
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        imwrite(tmp_path / "g.png", np.full((2, 2, 3), 1.5))
    with pytest.raises(ValueError, match="cannot encode"):
        imwrite(tmp_path / "g.unknown", np.zeros((2, 2, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_imread_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        imread(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot decode"):
        imread(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot decode"):
        imread(empty)


def test_imread_keeps_alpha_in_rgba_order(tmp_path: Path):
    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 0] = 10  # blue
    bgra[..., 2] = 200  # red
    bgra[..., 3] = 77
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), bgra)
    rgba = imread(path)
    assert rgba.shape == (3, 3, 4)
    np.testing.assert_array_equal(rgba[0, 0], [200, 0, 10, 77])


def test_imwrite_gives_the_file_the_umask_mode(tmp_path: Path):
    import os

    old = os.umask(0o022)
    try:
        path = imwrite(tmp_path / "m.png", np.zeros((2, 2, 3), np.uint8))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_every_atomic_writer_gives_the_umask_mode(tmp_path: Path):
    # imwrite, the benchmark's result files and the networks' .npz share one writer
    import os

    from dehaze.io import write_bytes_atomic
    from dehaze.models._formats import write_npz

    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.csv", b"x\n", overwrite=False)
        write_npz(tmp_path / "w.npz", {"a": np.zeros(2)}, overwrite=False)
    finally:
        os.umask(old)
    for name in ("a.csv", "w.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    with pytest.raises(FileExistsError):
        write_bytes_atomic(tmp_path / "a.csv", b"y\n", overwrite=False)
    assert (tmp_path / "a.csv").read_bytes() == b"x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "w.npz"]  # no temporaries
