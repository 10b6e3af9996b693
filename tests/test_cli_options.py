"""Every option of the ``dehaze`` command, end to end through ``dehaze.cli.main``.

Each test runs the command in-process on small generated files in ``tmp_path`` and checks
the option's effect: the written file equals what the public API gives with the same
parameter (PNG is lossless), and differs from the default so the option is not ignored.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

import dehaze
from dehaze import cli
from dehaze.io import imread, imwrite
from dehaze.video import dehaze_video

# small, so that the library default radii (patch 20, guided 80) cover most of the image
SHAPE = (48, 64)


def hazy_image(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = SHAPE
    scene = rng.random((h, w, 3)) * 0.6
    t = np.linspace(0.3, 0.9, h)[:, None, None]
    return np.rint((scene * t + np.array([0.85, 0.87, 0.9]) * (1 - t)) * 255).astype(np.uint8)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "hazy.png"
    imwrite(path, hazy_image())
    return path


def run_cli(source: Path, out: Path, *options: str) -> Path:
    status = cli.main([str(source), "-o", str(out), "-q", *options])
    assert status == 0
    return out / source.name


def output_of(source: Path, tmp_path: Path, name: str, *options: str) -> np.ndarray:
    return imread(run_cli(source, tmp_path / name, *options))


@pytest.mark.parametrize(
    ("option", "value", "param"),
    [
        ("--guided-radius", "3", {"guided_radius": 3}),
        ("--eps", "0.0005", {"eps": 0.0005}),
        ("--subsample", "3", {"subsample": 3}),
        ("--top-fraction", "0.001", {"top_fraction": 0.001}),
    ],
)
@pytest.mark.parametrize("method", ["robust", "dcp"])
def test_pipeline_options_reach_the_method(source, tmp_path, option, value, param, method):
    cls = dehaze.RobustDCP if method == "robust" else dehaze.DarkChannelPrior
    image = imread(source)
    # a small patch, so that He's rule sees many distinct dark-channel values
    common = ("--method", method, "--patch-radius", "2")
    got = output_of(source, tmp_path, "opt", *common, option, value)
    np.testing.assert_array_equal(got, cls(patch_radius=2, **param)(image).image)
    default = output_of(source, tmp_path, "default", *common)
    np.testing.assert_array_equal(default, cls(patch_radius=2)(image).image)
    assert not np.array_equal(got, default), f"{option} {value} had no effect"


@pytest.mark.parametrize(
    ("value", "light"), [("0.8,0.85,0.9", (0.8, 0.85, 0.9)), ("0.7", 0.7)], ids=["rgb", "one"]
)
def test_atmospheric_light_fixes_a(source, tmp_path, value, light):
    got = output_of(source, tmp_path, "fixed", "--method", "dcp", "--atmospheric-light", value)
    method = dehaze.DarkChannelPrior(atmospheric_light=light)
    result = method(imread(source))
    np.testing.assert_allclose(result.atmospheric_light, np.broadcast_to(light, (3,)), atol=1e-7)
    np.testing.assert_array_equal(got, result.image)
    estimated = dehaze.DarkChannelPrior()(imread(source))
    assert not np.array_equal(got, estimated.image)


def test_guide_color(source, tmp_path):
    got = output_of(source, tmp_path, "color", "--method", "dcp", "--guide", "color")
    image = imread(source)
    np.testing.assert_array_equal(got, dehaze.DarkChannelPrior(guide="color")(image).image)
    assert not np.array_equal(got, dehaze.DarkChannelPrior(guide="gray")(image).image)


@pytest.mark.parametrize("colormap", ["gray", "viridis"])
def test_colormap_of_the_saved_depth(source, tmp_path, colormap):
    out = tmp_path / colormap
    run_cli(source, out, "--save-depth", "--colormap", colormap)
    depth = dehaze.dehaze(imread(source)).depth  # the default method
    got = imread(out / "hazy_depth.png")
    np.testing.assert_array_equal(got, dehaze.colorize_depth(depth, colormap=colormap))
    run_cli(source, tmp_path / "turbo", "--save-depth")  # the default map differs
    assert not np.array_equal(got, imread(tmp_path / "turbo" / "hazy_depth.png"))


def test_colorize_depth_vmax():
    depth = np.array([[0.0, 0.5, 1.0], [2.0, 3.0, 4.0]])
    gray = dehaze.colorize_depth(depth, colormap="gray", vmax=2.0)
    # depth / vmax, clipped to 1, on 0..255: beyond vmax saturates
    want = np.rint(np.clip(depth / 2.0, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(gray, np.repeat(want[..., None], 3, axis=2))
    # default vmax is the map's maximum
    np.testing.assert_array_equal(
        dehaze.colorize_depth(depth, colormap="gray")[..., 0],
        np.rint(depth / 4.0 * 255).astype(np.uint8),
    )
    # a colour map applies to the same levels
    turbo = dehaze.colorize_depth(depth, vmax=2.0)
    bgr = cv2.applyColorMap(want, cv2.COLORMAP_TURBO)
    np.testing.assert_array_equal(turbo, bgr[..., ::-1])
    with pytest.raises(ValueError, match="vmax"):
        dehaze.colorize_depth(depth, vmax=0.0)
    with pytest.raises(ValueError, match="vmax"):
        dehaze.colorize_depth(depth, vmax=-1.0)


# --- video options --------------------------------------------------------------------------


def write_clip(path: Path, n: int = 6) -> None:
    """An MJPG clip whose brightest region moves and whose haze changes per frame."""
    h, w = 40, 48
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    rng = np.random.default_rng(11)
    for k in range(n):
        scene = rng.random((h, w, 3)) * 0.5
        a = np.array([0.7, 0.75, 0.8]) + 0.03 * k
        frame = scene * 0.5 + a * 0.5
        frame[4 + 3 * k : 14 + 3 * k, 30:44] = a + 0.05  # bright, moving
        rgb = np.rint(np.clip(frame, 0, 1) * 255).astype(np.uint8)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "clip.avi"
    path.parent.mkdir(parents=True)
    write_clip(path)
    return path


def cli_log(clip: Path, out: Path, *options: str) -> list[dict[str, str]]:
    run_cli(clip, out, "--method", "dcp", "--patch-radius", "3", "--save-light", *options)
    return read_log(out / "clip_light.csv")


def api_log(clip: Path, out: Path, **kwargs) -> list[dict[str, str]]:
    log = out / "api_light.csv"
    method = dehaze.DarkChannelPrior(patch_radius=3)
    dehaze_video(clip, out / "api.avi", method, light_log=log, **kwargs)
    return read_log(log)


def test_light_weight(clip, tmp_path):
    got = cli_log(clip, tmp_path / "w1", "--light-weight", "1")
    assert got == api_log(clip, tmp_path, light_weight=1.0)
    # weight 1: no smoothing, the light used is each frame's own estimate
    for row in got:
        assert [row[f"light_{c}"] for c in range(3)] == [row[f"estimate_{c}"] for c in range(3)]
    smoothed = cli_log(clip, tmp_path / "default")
    assert smoothed == api_log(clip, tmp_path / "default")  # DEFAULT_LIGHT_WEIGHT
    assert [r["light_0"] for r in smoothed] != [r["light_0"] for r in got]


def test_light_every(clip, tmp_path):
    got = cli_log(clip, tmp_path / "every", "--light-every", "2", "--light-weight", "1")
    assert got == api_log(clip, tmp_path, light_every=2, light_weight=1.0)
    estimated = [row["estimate_0"] != "" for row in got]
    assert estimated == [k % 2 == 0 for k in range(len(got))]
    # frames without an estimate keep the previous light
    for k in range(1, len(got), 2):
        assert got[k]["light_0"] == got[k - 1]["light_0"]


def test_light_downscale(clip, tmp_path):
    got = cli_log(clip, tmp_path / "down", "--light-downscale", "2", "--light-weight", "1")
    assert got == api_log(clip, tmp_path, light_downscale=2, light_weight=1.0)
    full = cli_log(clip, tmp_path / "full", "--light-weight", "1")
    assert [r["estimate_0"] for r in got] != [r["estimate_0"] for r in full]


def test_the_command_says_when_an_image_was_left_nearly_as_it_was(tmp_path, capsys):
    from dehaze.cli import LITTLE_CHANGE, main, mean_change

    rng = np.random.default_rng(4)
    flat = np.clip(0.85 + rng.normal(0, 0.003, (80, 100, 3)), 0, 1)  # fog or sky: no signal
    imwrite(tmp_path / "flat.png", np.rint(flat * 255).astype(np.uint8))
    y = np.linspace(0, 1, 80)[:, None, None]
    scene = np.clip(0.3 + 0.5 * rng.random((80, 100, 3)), 0, 1)
    hazy = scene * (0.3 + 0.4 * y) + 0.85 * (0.7 - 0.4 * y)
    imwrite(tmp_path / "hazy.png", np.rint(hazy * 255).astype(np.uint8))
    assert (
        main([str(tmp_path / "flat.png"), str(tmp_path / "hazy.png"), "-o", str(tmp_path / "o")])
        == 0
    )
    err = capsys.readouterr().err
    assert "flat.png: little haze found" in err
    assert "hazy.png: little haze found" not in err
    flat_in = imread(tmp_path / "flat.png")
    assert mean_change(flat_in, imread(tmp_path / "o" / "flat.png")) < LITTLE_CHANGE
    assert mean_change(np.zeros((2, 2), np.uint16), np.full((2, 2), 65535, np.uint16)) == 255.0
    assert mean_change(np.zeros(3), np.full(3, 0.5)) == pytest.approx(127.5)


def test_mean_change_by_bands_equals_the_whole_mean(monkeypatch):
    import dehaze.cli as cli

    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (37, 23, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (37, 23, 3), dtype=np.uint8)
    want = float(np.abs(a.astype(float) - b.astype(float)).mean())
    monkeypatch.setattr(cli, "MEAN_CHANGE_BAND", 100)  # a band of one or two rows
    assert cli.mean_change(a, b) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        cli.mean_change(a, b[:-1])
