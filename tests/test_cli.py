"""The ``dehaze`` command, run for real in a subprocess on temporary folders."""

from __future__ import annotations

import csv
import gc
import hashlib
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

import dehaze
from dehaze import cli
from dehaze.io import imread, imwrite
from dehaze.registry import DEFAULT_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "dehaze", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def hazy(seed: int, height: int = 40, width: int = 56) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scene = rng.random((height, width, 3)) * 0.5
    t = np.linspace(0.3, 0.9, height)[:, None, None]
    return np.rint((scene * t + 0.85 * (1 - t)) * 255).astype(np.uint8)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """in/a.png, in/b.jpg, in/sub/c.png, in/broken.png (corrupt), in/notes.txt (ignored)."""
    src = tmp_path / "in"
    imwrite(src / "a.png", hazy(1))
    imwrite(src / "b.jpg", hazy(2))
    imwrite(src / "sub" / "c.png", hazy(3, 30, 30))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (src / "notes.txt").write_text("not an image")
    return src


def inputs_digests(src: Path) -> dict[Path, str]:
    return {p: digest(p) for p in src.rglob("*") if p.is_file()}


def test_batch_with_a_corrupt_file(batch: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    imwrite(out / "b.jpg", np.zeros((5, 5, 3), np.uint8))  # an existing output: must stay
    kept = digest(out / "b.jpg")
    before = inputs_digests(batch)
    proc = run(batch, "-o", out, "--save-transmission", "--save-depth")
    assert proc.returncode == 1, proc.stderr
    assert "broken.png" in proc.stderr and "cannot decode" in proc.stderr
    assert "skipped" in proc.stderr and "b.jpg exists" in proc.stderr
    assert "--overwrite" in proc.stderr
    assert "2 done, 1 skipped, 1 failed" in proc.stderr and "megapixels/s" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert inputs_digests(batch) == before
    assert digest(out / "b.jpg") == kept
    for name, shape in [("a", (40, 56)), ("sub/c", (30, 30))]:
        dehazed = imread(out / f"{name}.png")
        assert dehazed.shape == (*shape, 3) and dehazed.dtype == np.uint8
        assert imread(out / f"{name}_transmission.png").shape == shape
        assert imread(out / f"{name}_depth.png").shape == (*shape, 3)
    assert not (out / "broken.png").exists() and not (out / "notes.txt").exists()
    assert not [p for p in out.rglob("*") if ".part" in p.name]


def test_overwrite_replaces_outputs_never_inputs(
    batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (batch / "broken.png").unlink()
    out = tmp_path / "out"
    imwrite(out / "a.png", np.zeros((5, 5, 3), np.uint8))
    proc = run(batch, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr  # a.png exists: skipped, not failed
    assert "2 done, 1 skipped, 0 failed" in proc.stderr
    assert imread(out / "a.png").shape == (5, 5, 3)
    assert imread(out / "b.jpg").shape == (40, 56, 3)
    proc = run(batch, "-o", out, "-q", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert imread(out / "a.png").shape == (40, 56, 3)
    # even with --overwrite an input is never an output: usage error, nothing written
    before = inputs_digests(batch)
    for args in ([str(batch / "a.png")], [str(batch)]):
        with pytest.raises(SystemExit) as exc:
            cli.main([*args, "-o", str(batch), "--overwrite"])
        assert exc.value.code == 2
        assert "would replace the input" in capsys.readouterr().err
    assert inputs_digests(batch) == before


def test_output_below_the_input_folder_is_not_reprocessed(batch: Path) -> None:
    (batch / "broken.png").unlink()
    out = batch / "dehazed"
    assert run(batch, "-o", out, "-q").returncode == 0
    proc = run(batch, "-o", out, "-q", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "dehazed").exists()


def test_files_globs_and_collisions(batch: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run(batch / "a.png", str(batch / "**" / "c.png"), "-o", out, "--fast", "--omega", "0.8")
    assert proc.returncode == 0, proc.stderr
    assert (out / "a.png").is_file() and (out / "sub" / "c.png").is_file()
    other = tmp_path / "other"
    imwrite(other / "a.png", hazy(4))
    proc = run(batch / "a.png", other / "a.png", "-o", tmp_path / "out2")
    assert proc.returncode == 2 and "would both be written" in proc.stderr
    assert not (tmp_path / "out2").exists()
    proc = run(tmp_path / "missing.png", batch / "a.png", "-o", tmp_path / "out3")
    assert proc.returncode == 1 and "no such file" in proc.stderr
    assert (tmp_path / "out3" / "a.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "required"),
        (("x.png",), "-o"),
        (("x.png", "-o", "o", "--omega", "2"), "omega"),
        (("x.png", "-o", "o", "--omega", "abc"), "invalid float"),
        (("x.png", "-o", "o", "--guide", "blue"), "invalid choice"),
        (("x.png", "-o", "o", "--method", "magic"), "unknown method 'magic'"),
        (("x.png", "-o", "o", "--method", "aodnet", "--omega", "0.9"), "does not apply"),
        (("x.png", "-o", "o", "--method", "dcp:radius=3"), "has no option 'radius'"),
        (("x.png", "-o", "o", "--method", "aodnet", "--weights", "nope.pth"), "no such file"),
        (("x.png", "-o", "o", "--atmospheric-light", "0.9,0.8"), "1 or 3"),
        (("x.png", "-o", "o", "--light-weight", "0"), "light-weight"),
        (("x.png", "-o", "x.png"), "not a folder"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    """In-process (the same code path as the script); one real subprocess check below."""
    imwrite(tmp_path / "x.png", hazy(0))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(list(args))
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_usage_error_in_a_real_process(tmp_path: Path) -> None:
    imwrite(tmp_path / "x.png", hazy(0))
    proc = run("x.png", "-o", "o", "--omega", "1.5", cwd=tmp_path)
    assert proc.returncode == 2 and "omega must be in (0, 1]" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_the_program_freezes_its_objects_before_it_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry point: main's status, and nothing left for the shutdown's collector."""
    monkeypatch.setattr(cli, "main", lambda: 3)
    gc.unfreeze()  # whatever an earlier test froze
    assert gc.get_freeze_count() == 0
    try:
        with pytest.raises(SystemExit) as exc:
            cli.run()
        assert exc.value.code == 3
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process goes on: its objects are collectable again


def test_main_leaves_the_callers_collector_alone(tmp_path: Path) -> None:
    gc.unfreeze()
    imwrite(tmp_path / "x.png", hazy(0))
    assert cli.main([str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "-q"]) == 0
    assert gc.get_freeze_count() == 0


def test_missing_default_weights_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    imwrite(tmp_path / "x.png", hazy(0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEHAZE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["x.png", "-o", "o", "--method", "dehazenet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--weights" in err and "DEHAZE_DATA" in err


def test_video(tmp_path: Path) -> None:
    height, width, fps, count = 64, 96, 20.0, 15
    writer = cv2.VideoWriter(
        str(tmp_path / "clip.avi"), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height)
    )
    for k in range(count):
        frame = np.full((height, width, 3), (215, 210, 205), np.uint8)  # BGR haze
        frame[30:60, (2 * k) % 40 : (2 * k) % 40 + 40] = (90, 70, 50)
        if k % 2:
            frame[0:24, 60:90] = 255  # a flickering white object larger than the patch
        writer.write(frame)
    writer.release()
    proc = run(tmp_path / "clip.avi", "-o", tmp_path / "out", "--save-light", "--patch-radius", "3")
    assert proc.returncode == 0, proc.stderr
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip.avi"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == count
    assert capture.get(cv2.CAP_PROP_FPS) == fps
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        width,
        height,
    )
    capture.release()
    with (tmp_path / "out" / "clip_light.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == count
    light = np.array([[float(r[f"light_{c}"]) for c in range(3)] for r in rows])
    estimate = np.array([[float(r[f"estimate_{c}"]) for c in range(3)] for r in rows])
    assert np.abs(np.diff(estimate, axis=0)).max() > 0.1  # the per-frame estimate flickers
    # A_k − A_{k−1} = w (Â_k − A_{k−1}) and A_{k−1} lies within the range of the estimates
    spread = estimate.max(axis=0) - estimate.min(axis=0)
    assert np.all(np.abs(np.diff(light, axis=0)) <= 0.1 * spread + 1e-6)
    assert f"videos: {count} frames at" in proc.stderr and "without audio" in proc.stderr
    # a second run skips, --overwrite replaces (in-process: the same code path)
    clip, out = str(tmp_path / "clip.avi"), str(tmp_path / "out")
    before = digest(tmp_path / "out" / "clip.avi")
    assert cli.main([clip, "-o", out, "-q"]) == 0
    assert digest(tmp_path / "out" / "clip.avi") == before
    assert cli.main([clip, "-o", out, "-q", "--overwrite"]) == 0
    with pytest.raises(SystemExit) as exc:
        cli.main([clip, "-o", str(tmp_path / "o2"), "--method", "robust", "--guide", "color"])
    assert exc.value.code == 2
    # the robust method dehazes videos too, with its own smoothed A
    robust_out = tmp_path / "o3"
    args = [clip, "-o", str(robust_out), "-q", "--method", "robust", "--save-light"]
    assert cli.main([*args, "--patch-radius", "3"]) == 0
    with (robust_out / "clip_light.csv").open() as fh:
        robust_rows = list(csv.DictReader(fh))
    assert len(robust_rows) == count
    robust_light = np.array([[float(r[f"light_{c}"]) for c in range(3)] for r in robust_rows])
    robust_estimate = np.array([[float(r[f"estimate_{c}"]) for c in range(3)] for r in robust_rows])
    jumps = np.abs(np.diff(robust_estimate, axis=0)).max()
    assert np.abs(np.diff(robust_light, axis=0)).max() <= 0.1 * jumps + 1e-6


def test_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    proc = run("demo", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "PSNR" in proc.stdout
    names = ["demo_hazy.png", "demo_dehazed.png", "demo_transmission.png", "demo_depth.png"]
    for name in names:
        assert imread(out / name).shape[:2] == (512, 512)
    # the demo can be run again: it replaces its own four files, and only those
    (out / "mine.png").write_bytes(b"a file of the user")
    stale = out / "demo_hazy.png"
    os.utime(stale, (0, 0))
    assert cli.main(["demo", "-o", str(out)]) == 0
    assert stale.stat().st_mtime > 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "mine.png"])
    assert (out / "mine.png").read_bytes() == b"a file of the user"
    assert cli.main(["demo", "-o", str(out), "--overwrite"]) == 0


def test_a_folder_named_demo_is_processed_with_dashdash(tmp_path: Path) -> None:
    imwrite(tmp_path / "demo" / "x.png", hazy(5))
    proc = run("--", "demo", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "x.png").is_file()
    proc = run("./demo", "-o", "out2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out2" / "x.png").is_file()


def test_interrupted_batch_leaves_no_partial_file(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for k in range(40):
        imwrite(src / f"{k:02d}.png", hazy(k, 300, 400))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dehaze", str(src), "-o", str(out), "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(out.glob("*.png"))) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    written = sorted(out.iterdir())
    assert 0 < len(written) < 40
    for path in written:
        assert not path.name.startswith("."), path  # no temporary file left behind
        assert imread(path).shape == (300, 400, 3)


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--help", "--version"):
        with pytest.raises(SystemExit) as exc:
            cli.main([flag])
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "dehaze demo" in out and "--save-depth" in out and "\ndehaze 0." in out


def test_bench_forwards_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The forwarding itself (the runner is dehaze.benchmark, tested with it)."""
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    module = types.ModuleType("dehaze.benchmark")
    module.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dehaze.benchmark", module)
    assert cli.main(["bench", "--limit", "3", "demo"]) == 7
    assert seen == [["--limit", "3", "demo"]]


def test_method_options_and_specs_reach_the_method(tmp_path: Path) -> None:
    image = hazy(2)
    imwrite(tmp_path / "x.png", image)
    argv = [str(tmp_path / "x.png"), "-q", "--method", "dcp", "--fast", "--omega", "0.7"]
    assert cli.main([*argv, "-o", str(tmp_path / "a")]) == 0
    expected = dehaze.DarkChannelPrior(subsample=cli.FAST_SUBSAMPLE, omega=0.7)(image).image
    np.testing.assert_array_equal(imread(tmp_path / "a" / "x.png"), expected)
    # the registry's name:key=value spec works on the command line too
    spec = ["--method", "cap:beta=1.5,t0=0.2"]
    assert cli.main([str(tmp_path / "x.png"), "-q", *spec, "-o", str(tmp_path / "b")]) == 0
    expected = dehaze.ColorAttenuationPrior(beta=1.5, t0=0.2)(image).image
    np.testing.assert_array_equal(imread(tmp_path / "b" / "x.png"), expected)


def test_bench_reaches_the_real_runner() -> None:
    proc = run("bench", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: dehaze bench" in proc.stdout


@pytest.mark.data
@pytest.mark.parametrize("method", ["aodnet", "dehazenet"])
def test_network_methods_with_the_published_weights(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    method: str,
) -> None:
    imwrite(tmp_path / "x.png", hazy(0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEHAZE_DATA", str(data_dir))
    status = cli.main(["x.png", "-o", "out", "-q", "--method", method, "--save-transmission"])
    assert status == 0
    assert imread(tmp_path / "out" / "x.png").shape == (40, 56, 3)
    written_t = (tmp_path / "out" / "x_transmission.png").is_file()
    if method == "aodnet":  # AOD-Net estimates no transmission: skipped with a warning
        assert not written_t
        assert "gives no transmission" in capsys.readouterr().err
    else:
        assert written_t
    weights = data_dir / "weights" / DEFAULT_WEIGHTS[method]
    status = cli.main(["x.png", "-o", "out2", "-q", "--method", method, "--weights", str(weights)])
    assert status == 0


def test_robust_method_and_its_usage_errors(tmp_path):
    from dehaze import RobustDCP

    image = hazy(4)
    src = tmp_path / "in" / "a.png"
    imwrite(src, image)
    out = tmp_path / "out"
    done = run(src, "-o", out, "--method", "robust", "--t0", "0.2")
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(imread(out / "a.png"), RobustDCP(t0=0.2)(image).image)
    bad = run(src, "-o", tmp_path / "o2", "--method", "robust", "--guide", "color")
    assert bad.returncode == 2 and "--guide does not apply to --method robust" in bad.stderr
    # --fast means the fast guided filter for robust, a smaller working size for clear (the
    # default method), its radii still given for the default working size
    fast_robust = [str(src), "-o", str(tmp_path / "o3"), "-q", "--fast", "--method", "robust"]
    assert cli.main(fast_robust) == 0
    expected = RobustDCP(subsample=cli.FAST_SUBSAMPLE)(image).image
    np.testing.assert_array_equal(imread(tmp_path / "o3" / "a.png"), expected)
    assert cli.main([str(src), "-o", str(tmp_path / "o5"), "-q", "--fast"]) == 0
    fast_clear = dehaze.ClearHaze(
        working_size=cli.FAST_WORKING_SIZE, radii_size=cli.FAST_RADII_SIZE
    )
    assert cli.FAST_RADII_SIZE == dehaze.ClearHaze().working_size
    expected = fast_clear(image).image
    np.testing.assert_array_equal(imread(tmp_path / "o5" / "a.png"), expected)
    assert cli.main([str(src), "-o", str(tmp_path / "o4"), "-q", "--method", "dcp"]) == 0
    np.testing.assert_array_equal(
        imread(tmp_path / "o4" / "a.png"), dehaze.DarkChannelPrior()(image).image
    )


# --- hardening: loops, paths outside -o, leftovers, resume, alpha, limits, tracebacks ------


def test_glob_over_symlink_loops_finishes(tmp_path: Path) -> None:
    src = tmp_path / "in"
    imwrite(src / "a" / "x.png", hazy(6))
    (src / "a" / "loop").symlink_to(src, target_is_directory=True)  # in/a/loop -> in
    (src / "a" / "self").symlink_to(src / "a", target_is_directory=True)
    collected = cli.collect_jobs([str(src / "**" / "*.png")], tmp_path / "out")
    assert [job.source for job in collected.jobs] == [src / "a" / "x.png"]
    folder = cli.collect_jobs([str(src)], tmp_path / "out2")
    assert [job.source for job in folder.jobs] == [src / "a" / "x.png"]
    proc = run(str(src / "**" / "*.png"), "-o", tmp_path / "out", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "a" / "x.png").is_file()


def test_glob_never_writes_outside_the_output_folder(tmp_path: Path) -> None:
    imwrite(tmp_path / "in" / "sub" / "x.png", hazy(7))
    imwrite(tmp_path / "victim.png", hazy(8))
    before = digest(tmp_path / "victim.png")
    out = tmp_path / "in" / "out"
    proc = run(str(tmp_path / "in" / "*" / ".." / ".." / "*.png"), "-o", out, "-q")
    assert proc.returncode == 1
    assert "'..' after a wildcard" in proc.stderr
    assert digest(tmp_path / "victim.png") == before
    assert not out.exists()
    # '..' before the wildcard is fine: the pattern starts from that folder
    proc = run(str(tmp_path / "in" / "sub" / ".." / "sub" / "*.png"), "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["x.png"]


def test_stale_part_files_are_removed_in_the_folders_written(tmp_path: Path) -> None:
    imwrite(tmp_path / "in" / "sub" / "x.png", hazy(9))
    out = tmp_path / "out"
    leftovers = [out / ".x.png.k3j4h5g6.part", out / "sub" / ".clip.mp4.abcdefgh.part.mp4"]
    elsewhere = tmp_path / "other" / ".y.png.abcdefgh.part"  # not an output folder: kept
    for path in [*leftovers, elsewhere]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
        os.utime(path, (time.time() - 600, time.time() - 600))
    proc = run(tmp_path / "in", "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 temporary file" in proc.stderr
    assert not leftovers[1].exists()  # out/sub is written to
    assert leftovers[0].exists()  # out/ itself receives nothing from this run
    assert elsewhere.exists()
    proc = run(tmp_path / "in" / "sub" / "x.png", "-o", out, "-q")
    assert proc.returncode == 0 and not leftovers[0].exists()


def test_skip_existing_resumes_a_batch(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for k in range(3):
        imwrite(src / f"{k}.png", hazy(k))
    out = tmp_path / "out"
    assert run(src, "-o", out, "-q").returncode == 0
    kept = digest(out / "1.png")
    (out / "0.png").unlink()  # as if interrupted before 0.png was written
    proc = run(src, "-o", out, "-q", "--skip-existing", "--save-depth")
    assert proc.returncode == 0, proc.stderr
    assert "3 done, 0 skipped, 0 failed" in proc.stderr  # depth maps were missing for all
    assert digest(out / "1.png") == kept  # existing outputs untouched
    assert all((out / f"{k}_depth.png").is_file() for k in range(3))
    assert (out / "0.png").is_file()
    proc = run(src, "-o", out, "-q", "--skip-existing", "--save-depth")
    assert "0 done, 3 skipped, 0 failed" in proc.stderr and proc.returncode == 0
    assert len(proc.stderr.splitlines()) == 1  # quiet: the summary, no line per file
    proc = run(src, "-o", out, "-q", "--save-depth")  # without the flag: one line per file
    assert proc.stderr.count(": skipped, ") == 3 and proc.returncode == 0
    proc = run(src, "-o", out, "--skip-existing", "--overwrite")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


def test_alpha_is_carried_through_or_refused(tmp_path: Path) -> None:
    src = tmp_path / "in"
    rgb = hazy(10)
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    imwrite(src / "rgba.png", np.dstack([rgb, alpha]))
    imwrite(src / "la.png", np.dstack([rgb[..., 1], alpha]))
    out = tmp_path / "out"
    proc = run(src, "-o", out, "-q", "--method", "dcp")
    assert proc.returncode == 0, proc.stderr
    written = imread(out / "rgba.png")
    assert written.shape == (*rgb.shape[:2], 4)
    np.testing.assert_array_equal(written[..., 3], alpha)  # unchanged
    dcp = dehaze.DarkChannelPrior()
    np.testing.assert_array_equal(written[..., :3], dcp(rgb).image)  # RGB dehazed
    gray = imread(out / "la.png")  # gray+alpha is stored as RGBA (gray in each colour)
    np.testing.assert_array_equal(gray[..., 3], alpha)
    np.testing.assert_array_equal(gray[..., 0], dcp(rgb[..., 1]).image)
    bmp = tmp_path / "bmp"
    bmp.mkdir()
    cv2.imwrite(str(bmp / "a.bmp"), np.dstack([rgb, alpha]))  # a 32-bit BMP with alpha
    assert imread(bmp / "a.bmp").shape[2] == 4
    proc = run(bmp / "a.bmp", "-o", tmp_path / "out2", "-q")
    assert proc.returncode == 1 and "alpha channel" in proc.stderr and ".bmp" in proc.stderr
    assert not (tmp_path / "out2" / "a.bmp").exists()


def test_alpha_opencv_would_drop_survives_the_command(tmp_path: Path) -> None:
    import tifffile
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    gray = hazy(12)[..., 0]
    alpha = np.tile(np.linspace(0, 255, gray.shape[1]).astype(np.uint8), (gray.shape[0], 1))
    tifffile.imwrite(
        src / "la.tif", np.dstack([gray, alpha]), photometric="minisblack", extrasamples=[2]
    )
    key = int(gray[0, 0])
    Image.fromarray(gray).save(src / "key.png", transparency=key)  # gray PNG + tRNS
    out = tmp_path / "out"
    proc = run(src, "-o", out, "-q", "--method", "identity")
    assert proc.returncode == 0, proc.stderr
    written = imread(out / "la.tif")  # a TIFF keeps gray+alpha as two samples
    np.testing.assert_array_equal(written, np.dstack([gray, alpha]))
    with tifffile.TiffFile(out / "la.tif") as tiff:  # marked unassociated
        assert tuple(int(e) for e in tiff.pages[0].extrasamples) == (2,)
    written = imread(out / "key.png")  # PNG: gray+alpha as RGBA, gray in each colour
    np.testing.assert_array_equal(written[..., 3], np.where(gray == key, 0, 255))
    np.testing.assert_array_equal(written[..., 0], gray)


def test_max_pixels_flag(tmp_path: Path) -> None:
    imwrite(tmp_path / "in" / "x.png", hazy(11))  # 40 × 56 = 2240 pixels
    proc = run(tmp_path / "in", "-o", tmp_path / "out", "-q", "--max-pixels", "2000")
    assert proc.returncode == 1 and "more than the limit" in proc.stderr
    assert "--max-pixels" in proc.stderr
    proc = run(tmp_path / "in", "-o", tmp_path / "out", "-q", "--max-pixels", "2240")
    assert proc.returncode == 0, proc.stderr
    proc = run(tmp_path / "in", "-o", tmp_path / "o2", "--max-pixels", "0")
    assert proc.returncode == 2 and "--max-pixels" in proc.stderr


def test_no_traceback_for_memory_errors_or_bad_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    imwrite(tmp_path / "in" / "x.png", hazy(12))

    def exhausted(args: object) -> object:
        def method(image: object) -> object:
            raise MemoryError

        return method

    monkeypatch.setattr(cli, "_build_method", exhausted)
    assert cli.main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--method", "dcp"]) == 1
    err = capsys.readouterr().err
    assert "not enough memory" in err and "Traceback" not in err

    def damaged(args: object) -> object:
        raise AttributeError("'NoneType' object has no attribute 'shape'")

    monkeypatch.setattr(cli, "_build_method", damaged)
    with pytest.raises(SystemExit) as exc:
        cli.main([str(tmp_path / "in"), "-o", str(tmp_path / "o2"), "--method", "dcp"])
    assert exc.value.code == 2
    assert "AttributeError" in capsys.readouterr().err
    monkeypatch.undo()

    # a real damaged weights file, through a real process: a message and status 2
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    proc = run(tmp_path / "in", "-o", tmp_path / "o3", "--method", "aodnet", "--weights", bad)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "aodnet" in proc.stderr

    import dehaze.benchmark as benchmark

    def broken(argv: object) -> int:
        raise KeyError("weights")

    monkeypatch.setattr(benchmark, "main", broken)
    assert cli.main(["bench"]) == 1
    assert "dehaze bench: error: KeyError" in capsys.readouterr().err


def test_no_progress_bar_when_not_a_terminal(tmp_path: Path) -> None:
    for k in range(3):
        imwrite(tmp_path / "in" / f"{k}.png", hazy(k))
    proc = run(tmp_path / "in", "-o", tmp_path / "out")  # no -q; stderr is a pipe
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "file/s" not in proc.stderr and "it/s" not in proc.stderr


def test_exif_orientation_through_the_command_line(tmp_path: Path) -> None:
    from PIL import Image

    rgb = hazy(13)  # 40 × 56
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; a viewer rotates it upright (56 × 40)
    (tmp_path / "in").mkdir()
    Image.fromarray(rgb).save(tmp_path / "in" / "p.jpg", exif=exif, quality=95)
    assert run(tmp_path / "in", "-o", tmp_path / "out", "-q").returncode == 0
    with Image.open(tmp_path / "out" / "p.jpg") as im:
        assert im.size == (40, 56)  # width × height: upright
        assert im.getexif().get(0x0112, 1) == 1


def test_demo_folder_is_ignored_by_git() -> None:
    proc = subprocess.run(
        ["git", "check-ignore", "-q", "dehaze-demo/demo_hazy.png"], cwd=ROOT, check=False
    )
    assert proc.returncode == 0


def _png_bomb(path: Path, side: int) -> None:
    """A real side × side gray PNG of zeros: about 1 MB on disk, side² bytes decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + a row of zeros
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.skipif(sys.platform != "linux", reason="address-space limit via setrlimit")
def test_decompression_bomb_under_a_memory_limit(tmp_path: Path) -> None:
    import resource

    bomb = tmp_path / "in" / "bomb.png"
    bomb.parent.mkdir()
    _png_bomb(bomb, 20000)  # 400 megapixels
    assert bomb.stat().st_size < 2_000_000
    limit = 1_500_000_000  # bytes of address space: the command itself needs far less

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "dehaze", str(bomb), "-o", str(tmp_path / "out"), "-q"]
    proc = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, preexec_fn=limited
    )
    assert proc.returncode == 1, proc.stderr
    assert "400,000,000 pixels per image, more than the limit" in proc.stderr
    # with the limit raised the decoder runs out of memory: reported, never a traceback
    proc = subprocess.run(
        [*command, "--max-pixels", "500000000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limited,
    )
    assert proc.returncode == 1, proc.stderr
    assert "not enough memory" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "bomb.png").exists()


def test_sigterm_during_a_video_leaves_no_temporary_file(tmp_path: Path) -> None:
    height, width = 240, 320
    source = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (width, height))
    for k in range(400):
        frame = np.full((height, width, 3), (215, 210, 205), np.uint8)
        frame[100:200, k % 200 : k % 200 + 80] = (90, 70, 50)
        writer.write(frame)
    writer.release()
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dehaze", str(source), "-o", str(out), "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(".part" in p.name for p in out.iterdir()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert list(out.iterdir()) == []  # neither the clip nor its temporary file


def test_small_images_side_by_side_give_the_one_by_one_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a batch of small images runs two at once (one kernel thread each); the files, the
    # reports (in input order) and the counts are those of one file after another
    from dehaze import tiles

    src = tmp_path / "in"
    for k in range(6):
        imwrite(src / f"{k}.png", hazy(k, 60, 80))
    (src / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")  # fails, mid-batch
    imwrite(src / "6.png", np.full((60, 80, 3), 128, np.uint8))  # "little haze found"
    lanes: list[tuple[list[str], int]] = []
    real = tiles.in_order

    def spy(func, items, threads, **options):  # type: ignore[no-untyped-def]
        lanes.append(([job.source.name for job in items], threads))
        return real(func, items, threads, **options)

    monkeypatch.setattr(tiles, "in_order", spy)
    outputs = {}
    for threads in (2, 1):
        out = tmp_path / f"out{threads}"
        imwrite(out / "5.png", np.zeros((4, 4, 3), np.uint8))  # exists: skipped
        with dehaze.num_threads(threads):
            assert cli.main([str(src), "-o", str(out), "-q"]) == 1
        err = capsys.readouterr().err.replace(str(out), "OUT")
        lines = [line for line in err.splitlines() if " done, " not in line]
        outputs[threads] = (lines, {p.name: digest(p) for p in sorted(out.iterdir())})
    assert lanes == [(["0.png", "1.png", "2.png"], 2), (["4.png", "5.png", "6.png"], 2)]
    assert outputs[2] == outputs[1]
    lines, files = outputs[2]
    assert sorted(files) == ["0.png", "1.png", "2.png", "4.png", "5.png", "6.png"]
    assert [line.split(":")[1].strip() for line in lines[:2]] == [
        str(src / "3.png"),
        str(src / "5.png"),
    ]
    assert "little haze found" in lines[-1] and "6.png" in lines[-1]


def test_which_jobs_run_side_by_side(tmp_path: Path) -> None:
    from argparse import Namespace

    args = Namespace(tile=None, max_pixels=None)
    imwrite(tmp_path / "small.jpg", hazy(1))
    imwrite(tmp_path / "large.png", np.zeros((2000, 2100, 3), np.uint8))  # 4.2 MP
    (tmp_path / "junk.png").write_bytes(b"not an image")
    job = lambda name, video=False: cli.Job(tmp_path / name, tmp_path / "o" / name, video)  # noqa: E731
    assert cli._concurrent(job("small.jpg"), args)
    assert not cli._concurrent(job("large.png"), args)
    assert not cli._concurrent(job("junk.png"), args)
    assert not cli._concurrent(job("clip.mp4", True), args)  # a video: never beside others


def test_a_long_run_of_small_images_is_taken_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dehaze import tiles

    src = tmp_path / "in"
    for k in range(5):
        imwrite(src / f"{k}.png", hazy(k, 20, 24))
    lanes: list[list[str]] = []
    real = tiles.in_order

    def spy(func, items, threads, **options):  # type: ignore[no-untyped-def]
        lanes.append([job.source.name for job in items])
        return real(func, items, threads, **options)

    monkeypatch.setattr(tiles, "in_order", spy)
    monkeypatch.setattr(cli, "LANE_FILES", 2)
    with dehaze.num_threads(2):
        assert cli.main([str(src), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert lanes == [["0.png", "1.png"], ["2.png", "3.png"], ["4.png"]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{k}.png" for k in range(5)]


def test_a_video_between_small_images_runs_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the side-by-side lane is drained before a video, which runs on its own
    from dehaze import tiles

    src = tmp_path / "in"
    for name in ("a.png", "b.png", "d.png", "e.png"):
        imwrite(src / name, hazy(len(name) + ord(name[0]), 30, 40))
    writer = cv2.VideoWriter(str(src / "c.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (40, 30))
    for k in range(4):
        writer.write(np.full((30, 40, 3), 200 - 10 * k, np.uint8))
    writer.release()
    lanes: list[list[str]] = []
    real = tiles.in_order

    def spy(func, items, threads, **options):  # type: ignore[no-untyped-def]
        if items and isinstance(items[0], cli.Job):
            lanes.append([job.source.name for job in items])
        return real(func, items, threads, **options)

    monkeypatch.setattr(tiles, "in_order", spy)
    out = tmp_path / "out"
    names = ["a.png", "b.png", "c.avi", "d.png", "e.png"]  # a folder gives its images only
    with dehaze.num_threads(2):
        assert cli.main([*(str(src / name) for name in names), "-o", str(out), "-q"]) == 0
    assert lanes == [["a.png", "b.png"], ["d.png", "e.png"]]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.avi", "d.png", "e.png"]
    capture = cv2.VideoCapture(str(out / "c.avi"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 4


def test_an_input_name_near_the_file_system_limit_is_written(tmp_path: Path) -> None:
    # a valid 244-byte name: the temporary file beside the output adds ~16 characters,
    # which must not push it past the file system's 255-byte limit
    name = "a" * 240 + ".png"
    imwrite(tmp_path / "in" / name, hazy(11))
    proc = run(tmp_path / "in" / name, "-o", tmp_path / "out", "-q")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [name]


@pytest.mark.parametrize("stem", ["a" * 250, "é" * 126, "x"])
def test_temporary_names_fit_the_limit_and_stay_recognisable(stem: str) -> None:
    from dehaze import _files

    for suffix in ("", ".mp4"):
        part = _files._part_name(stem + ".png", "k3j4h5g6", suffix, 255)
        assert len(os.fsencode(part)) <= 255
        assert _files._PART_NAME.match(part), part
        assert part.endswith(f".k3j4h5g6.part{suffix}")
    assert _files._part_name("x.png", "k3j4h5g6", "", 255) == ".x.png.k3j4h5g6.part"


def test_a_link_beside_its_file_gets_its_own_output(tmp_path: Path) -> None:
    # a folder holding photo.png and alias.png -> photo.png: both names get an output
    # (one was dropped silently); a file named again through its folder is still one job
    src = tmp_path / "in"
    imwrite(src / "photo.png", hazy(12))
    (src / "alias.png").symlink_to(src / "photo.png")
    out = tmp_path / "out"
    found = cli.collect_jobs([str(src), str(src / "photo.png")], out)
    assert not found.problems
    assert sorted(job.output.name for job in found.jobs) == ["alias.png", "photo.png"]
    proc = run(src, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["alias.png", "photo.png"]
    assert digest(out / "alias.png") == digest(out / "photo.png")


def test_a_side_output_of_another_input_is_not_taken_as_this_ones(tmp_path: Path) -> None:
    # a.jpg and a.png share the side output a_depth.png: after a.jpg's run, resuming with
    # a.png must neither keep a.jpg's depth map as a.png's nor replace it silently
    src = tmp_path / "in"
    imwrite(src / "a.jpg", hazy(13))
    imwrite(src / "a.png", hazy(14, 30, 44))
    out = tmp_path / "out"
    assert run(src / "a.jpg", "-o", out, "-q", "--save-depth").returncode == 0
    kept = digest(out / "a_depth.png")
    for flags in (("--skip-existing",), ()):
        proc = run(src / "a.png", "-o", out, "-q", "--save-depth", *flags)
        assert proc.returncode == 0, proc.stderr
        assert "a_depth.png exists but not its output" in proc.stderr
        assert "0 done, 1 skipped" in proc.stderr
        assert not (out / "a.png").exists() and digest(out / "a_depth.png") == kept
    proc = run(src / "a.png", "-o", out, "-q", "--save-depth", "--overwrite")
    assert proc.returncode == 0 and (out / "a.png").is_file()
    assert imread(out / "a_depth.png").shape[:2] == (30, 44)


def test_an_error_names_its_file_once(tmp_path: Path) -> None:
    # the command prints "dehaze: SOURCE: message"; a reader's message that starts with
    # the path too was shown as "SOURCE: SOURCE: ..."
    import tifffile

    pixels = np.zeros((20, 30, 4), np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", pixels, photometric="rgb", extrasamples=[1])
    proc = run(tmp_path / "p.tif", "-o", tmp_path / "out", "-q")
    assert proc.returncode == 1
    line = next(s for s in proc.stderr.splitlines() if "premultiplied" in s)
    assert line.count(str(tmp_path / "p.tif")) == 1, line


def test_demo_output_that_is_no_folder_is_one_line(tmp_path: Path) -> None:
    # `dehaze demo -o FILE` ended in a FileExistsError traceback after the work
    (tmp_path / "afile").write_text("x")
    (tmp_path / "d2" / "demo_hazy.png").mkdir(parents=True)
    for target, status in (("afile", 2), ("afile/sub", 1), ("d2", 2)):
        proc = run("demo", "-o", tmp_path / target)
        assert proc.returncode == status, proc.stderr
        assert "Traceback" not in proc.stderr and "error:" in proc.stderr
    assert (tmp_path / "afile").read_text() == "x"
