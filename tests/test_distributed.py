"""Dask: batches of files on a real LocalCluster (two worker processes), and dask arrays.

The cluster tests are skipped, with the reason, only when the ``dask`` extra is not
installed; the import rules (``import dehaze`` never imports Dask; a clear message when
Dask is missing) are tested either way.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dehaze import cli
from dehaze.io import imwrite

ROOT = Path(__file__).resolve().parents[1]
DASK_REASON = "the dask extra is not installed (pip install 'dehaze-dcp[dask]')"


def hazy(seed: int, height: int = 40, width: int = 56, dtype: Any = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scene = rng.random((height, width, 3)) * 0.5
    t = np.linspace(0.3, 0.9, height)[:, None, None]
    image = scene * t + 0.85 * (1 - t)
    scale = np.iinfo(dtype).max
    return np.rint(image * scale).astype(dtype)


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One real cluster for the module: 2 worker processes, one thread each."""
    pytest.importorskip("dask", reason=DASK_REASON)
    pytest.importorskip("distributed", reason=DASK_REASON)
    from dehaze.distributed import open_client

    with open_client("local:2") as connected:
        yield connected


def test_the_local_cluster(client: Any) -> None:
    from dehaze.distributed import MALLOC_TRIM

    workers = client.scheduler_info()["workers"].values()
    assert [worker["nthreads"] for worker in workers] == [1, 1]
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()  # processes
    # without Dask's trim threshold: it makes every temporary plane a fresh mmap
    assert set(client.run(os.environ.get, MALLOC_TRIM).values()) == {None}


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """in/a.png, in/b.jpg, in/sub/c.png (gray), in/d.tif (uint16), in/broken.png (corrupt)."""
    src = tmp_path / "in"
    imwrite(src / "a.png", hazy(1))
    imwrite(src / "b.jpg", hazy(2))
    imwrite(src / "sub" / "c.png", hazy(3, 30, 30)[..., 0])
    imwrite(src / "d.tif", hazy(4, 36, 28, np.uint16))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return src


# --- without the cluster -----------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's dehaze."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_import_dehaze_never_imports_dask() -> None:
    code = (
        "import sys, dehaze, dehaze.cli\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print(loaded)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_missing_dask_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the module itself, in a fresh interpreter where `import dask` fails
    code = (
        "import sys\n"
        "sys.modules['dask'] = None\n"
        "try:\n"
        "    import dehaze.distributed\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'dehaze-dcp[dask]'" in proc.stdout
    # the command: a usage error naming the extra, nothing written
    import dehaze

    monkeypatch.setitem(sys.modules, "dehaze.distributed", None)
    monkeypatch.delattr(dehaze, "distributed", raising=False)  # if imported by another test
    imwrite(tmp_path / "a.png", hazy(1))
    with pytest.raises(SystemExit) as exc:
        cli.main([str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--scheduler", "local:2"])
    assert exc.value.code == 2
    assert "pip install 'dehaze-dcp[dask]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", ["local:0", "local:-1", "local:two"])
def test_bad_local_scheduler_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    pytest.importorskip("distributed", reason=DASK_REASON)
    imwrite(tmp_path / "a.png", hazy(1))
    with pytest.raises(SystemExit) as exc:
        cli.main([str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--scheduler", bad])
    assert exc.value.code == 2
    assert "N ≥ 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_scheduler_workers() -> None:
    distributed = pytest.importorskip("dehaze.distributed", reason=DASK_REASON)
    assert distributed.scheduler_workers("local:3") == 3
    assert distributed.scheduler_workers(" local:1 ") == 1
    assert distributed.scheduler_workers("local") == len(os.sched_getaffinity(0))
    assert distributed.scheduler_workers("tcp://10.1.2.3:8786") is None
    assert distributed.scheduler_workers("localhost:8786") is None


# --- batches on the cluster --------------------------------------------------------------


def test_batch_equals_the_command_bit_for_bit(client: Any, batch: Path, tmp_path: Path) -> None:
    from dehaze.distributed import dehaze_files

    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    options = ["--save-transmission", "--save-depth", "--method", "dcp:subsample=2"]
    assert cli.main([str(batch), "-o", str(serial), "-q", *options]) == 1  # broken.png
    report = dehaze_files(
        [batch],
        parallel,
        client=client,
        method="dcp:subsample=2",
        save_transmission=True,
        save_depth=True,
    )
    expected = digests(serial)
    assert len(expected) == 12  # 4 images × (image, transmission, depth)
    assert digests(parallel) == expected
    by_name = {item.source.name: item for item in report.files}
    assert sorted(by_name) == ["a.png", "b.jpg", "broken.png", "c.png", "d.tif"]
    assert [item.source for item in report.files] == sorted(item.source for item in report.files)
    assert by_name["broken.png"].status == "failed"
    assert "cannot decode" in (by_name["broken.png"].message or "")
    assert str(batch) in (by_name["broken.png"].message or "")
    for name in ("a.png", "b.jpg", "c.png", "d.tif"):
        assert by_name[name].status == "done" and by_name[name].message is None
        assert by_name[name].megapixels > 0
    assert by_name["c.png"].output == parallel / "sub" / "c.png"
    assert report.count("done") == 4 and report.count("failed") == 1
    assert report.count("skipped") == 0 and report.problems == ()


def test_command_on_a_running_scheduler(
    client: Any,
    batch: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths, as typed on a command line
    assert cli.main(["in", "-o", "serial", "-q", "--fast"]) == 1
    capsys.readouterr()
    address = client.scheduler.address
    assert cli.main(["in", "missing.png", "-o", "dask", "--fast", "--scheduler", address]) == 1
    err = capsys.readouterr().err
    assert digests(tmp_path / "dask") == digests(tmp_path / "serial")
    # each failure one line, named as given (relative), and counted; no traceback
    assert f"dehaze: {Path('in', 'broken.png')}: cannot decode" in err
    assert str(tmp_path) not in err
    assert "missing.png: no such file or folder" in err
    assert "4 done, 0 skipped, 2 failed" in err
    assert "Traceback" not in err
    # a second run skips every existing output, as the command does
    assert cli.main(["in", "-o", "dask", "--fast", "--scheduler", address]) == 1
    err = capsys.readouterr().err
    assert "0 done, 4 skipped, 1 failed" in err
    assert err.count("exists (--overwrite replaces it") == 4


def test_existing_outputs_are_never_replaced(client: Any, batch: Path, tmp_path: Path) -> None:
    from dehaze.distributed import dehaze_files

    (batch / "broken.png").unlink()
    out = tmp_path / "out"
    imwrite(out / "a.png", np.zeros((5, 5, 3), np.uint8))  # an existing output
    kept = (out / "a.png").read_bytes()
    report = dehaze_files([batch], out, client=client, method="dcp")
    statuses = {item.source.name: item.status for item in report.files}
    assert statuses == {"a.png": "skipped", "b.jpg": "done", "c.png": "done", "d.tif": "done"}
    skipped = next(item for item in report.files if item.source.name == "a.png")
    assert "exists" in (skipped.message or "") and "--overwrite" in (skipped.message or "")
    assert (out / "a.png").read_bytes() == kept
    # resume: only the missing side output of a.png is written, a.png itself stays
    report = dehaze_files(
        [batch / "a.png"], out, client=client, method="dcp", skip_existing=True, save_depth=True
    )
    assert [item.status for item in report.files] == ["done"]
    assert (out / "a.png").read_bytes() == kept and (out / "a_depth.png").is_file()
    # overwrite replaces
    report = dehaze_files([batch / "a.png"], out, client=client, method="dcp", overwrite=True)
    assert [item.status for item in report.files] == ["done"]
    assert (out / "a.png").read_bytes() != kept
    assert not [p for p in out.rglob("*") if ".part" in p.name]


def test_failures_are_per_file(client: Any, tmp_path: Path) -> None:
    from dehaze.distributed import dehaze_files

    src = tmp_path / "in"
    imwrite(src / "small.png", hazy(5, 20, 20))
    imwrite(src / "large.png", hazy(6, 50, 50))
    (src / "empty.jpg").write_bytes(b"")
    report = dehaze_files(
        [src, tmp_path / "nowhere"], tmp_path / "out", client=client, max_pixels=1000
    )
    by_name = {item.source.name: item for item in report.files}
    assert by_name["small.png"].status == "done"
    assert by_name["large.png"].status == "failed"
    assert "50×50" in (by_name["large.png"].message or "")
    assert by_name["empty.jpg"].status == "failed" and by_name["empty.jpg"].message
    assert len(report.problems) == 1 and "nowhere" in report.problems[0]
    assert report.count("failed") == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small.png"]


def test_bad_batch_options_raise_before_anything_runs(
    client: Any, batch: Path, tmp_path: Path
) -> None:
    from dehaze.distributed import dehaze_files

    out = tmp_path / "out"
    for kwargs, message in [
        ({"method": "magic"}, "unknown method"),
        ({"method": "dcp:radius=3"}, "has no option 'radius'"),
        ({"colormap": "rainbow"}, "colormap"),
        ({"max_pixels": 0}, "max_pixels"),
        ({"overwrite": True, "skip_existing": True}, "exclude each other"),
        ({"threads_per_task": 0}, "threads_per_task"),
    ]:
        with pytest.raises(ValueError, match=message):
            dehaze_files([batch], out, client=client, **kwargs)
    with pytest.raises(ValueError, match="would replace the input"):
        dehaze_files([batch], batch, client=client, overwrite=True)
    assert not out.exists()


# --- dask arrays ---------------------------------------------------------------------------


def scene_image(height: int, width: int, seed: int = 7) -> np.ndarray:
    """A float64 hazy scene in [0, 1]: textured, haze thickening upwards, a bright sky band."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(0, 1, width)[None, :, None]
    scene = 0.35 + 0.25 * np.sin(9 * x + 4 * y + np.array([0.0, 1.0, 2.0]))
    scene = scene + 0.15 * rng.random((height, width, 3))
    t = 0.25 + 0.7 * y
    hazy = np.clip(scene, 0, 1) * t + 0.92 * (1 - t)
    hazy[: height // 8] = 0.95 + 0.02 * rng.random((height // 8, width, 3))
    return np.clip(hazy, 0, 1)


def as_dtype(image: np.ndarray, dtype: Any) -> np.ndarray:
    if np.dtype(dtype).kind == "u":
        return np.rint(image * np.iinfo(dtype).max).astype(dtype)
    return image.astype(dtype)


def array_methods() -> dict[str, Any]:
    import dehaze

    return {
        "dcp": dehaze.DarkChannelPrior(patch_radius=3, guided_radius=10),
        "dcp_fast_color": dehaze.DarkChannelPrior(
            patch_radius=2, guided_radius=12, subsample=4, guide="color"
        ),
        "robust": dehaze.RobustDCP(patch_radius=3, guided_radius=8),
        "cap": dehaze.ColorAttenuationPrior(guided_radius=6),
        "clear": dehaze.ClearHaze(),
    }


@pytest.mark.parametrize(
    ("name", "dtype"),
    [(name, dtype) for name in array_methods() for dtype in (np.uint8, np.float32)]
    + [("dcp_fast_color", np.uint16), ("clear", np.float64)],  # float64: float32 maps
)
def test_dask_array_equals_the_whole_image(client: Any, name: str, dtype: Any) -> None:
    import dask.array as da

    from dehaze.distributed import dehaze_dask

    method = array_methods()[name]
    image = as_dtype(scene_image(157, 133), dtype)  # no tile divides it
    expected = method(image)
    lazy = dehaze_dask(
        method,
        da.from_array(image, chunks=(45, 38, 3)),
        tile=40,
        outputs={"transmission", "depth"},
    )
    assert isinstance(lazy.image, da.Array) and lazy.image.numblocks[0] >= 3
    image_out = lazy.image.compute()
    assert image_out.dtype == expected.image.dtype and image_out.shape == image.shape
    if np.dtype(dtype).kind == "u":
        np.testing.assert_array_equal(image_out, expected.image)
    else:
        np.testing.assert_allclose(image_out, expected.image, rtol=0, atol=1e-6)
    assert lazy.transmission is not None and lazy.depth is not None
    assert expected.transmission is not None and expected.depth is not None
    for got, want in ((lazy.transmission, expected.transmission), (lazy.depth, expected.depth)):
        plane = got.compute()
        assert plane.dtype == want.dtype and plane.shape == image.shape[:2]
        np.testing.assert_allclose(plane, want, rtol=0, atol=1e-6)


def test_dask_array_gray_given_scene_and_numpy_input(client: Any) -> None:
    import dask.array as da

    import dehaze
    from dehaze.distributed import dehaze_dask

    method = dehaze.DarkChannelPrior(patch_radius=4, guided_radius=9, subsample=2)
    gray = as_dtype(scene_image(120, 181)[..., 1], np.uint8)
    expected = method(gray).image
    # the blocks follow the tile grid, whatever the input's chunks
    lazy = dehaze_dask(method, da.from_array(gray, chunks=(7, 200)), tile=30)
    assert lazy.image.chunks[0][0] == 30 and lazy.image.chunks[1][0] == 30
    np.testing.assert_array_equal(lazy.image.compute(), expected)
    # a last block thinner than the halo is merged into its neighbour (181 = 6·30 + 1)
    assert min(lazy.image.chunks[1]) >= method.halo_for(lazy.scene)
    # a given scene is used as it is, and a NumPy array is accepted
    scene = method.estimate(gray)
    again = dehaze_dask(method, gray, scene=scene, tile=30)
    assert again.scene is scene
    np.testing.assert_array_equal(again.image.compute(), expected)
    # a tile smaller than the halo: blocks grow to the halo, the result is unchanged
    small = dehaze_dask(method, gray, scene=scene, tile=4)
    assert min(small.image.chunks[0]) >= method.halo_for(scene)
    np.testing.assert_array_equal(small.image.compute(), expected)


def test_dask_array_gray_with_planes_and_images_below_the_halo(client: Any) -> None:
    # a gray image asking for planes in several blocks, and images narrower than the
    # method's halo (one block per axis), failed inside Dask; both equal the whole call
    import dask.array as da

    import dehaze
    from dehaze.distributed import dehaze_dask

    method = dehaze.DarkChannelPrior(patch_radius=3, guided_radius=8)
    gray = as_dtype(scene_image(130, 70)[..., 0], np.uint8)
    lazy = dehaze_dask(method, da.from_array(gray), tile=32, outputs={"transmission"})
    assert lazy.image.numblocks[0] >= 2 and lazy.transmission is not None
    expected = method(gray)
    np.testing.assert_array_equal(lazy.image.compute(), expected.image)
    np.testing.assert_allclose(lazy.transmission.compute(), expected.transmission, atol=1e-6)
    rgb = as_dtype(scene_image(130, 70), np.uint8)  # the default halo is 180
    for m in (dehaze.DarkChannelPrior(), dehaze.ColorAttenuationPrior()):
        out = dehaze_dask(m, rgb, outputs={"depth"})
        np.testing.assert_array_equal(out.image.compute(), m(rgb).image)


def test_dask_array_rejects_what_it_cannot_give(client: Any) -> None:
    import dehaze
    from dehaze.distributed import dehaze_dask

    method = dehaze.DarkChannelPrior(patch_radius=2, guided_radius=4)
    image = as_dtype(scene_image(40, 40), np.uint8)
    with pytest.raises(ValueError, match="transmission"):
        dehaze_dask(method, image, outputs={"dark_channel"})
    with pytest.raises(ValueError, match="outputs"):
        dehaze_dask(method, image, outputs={"haze"})
    with pytest.raises(ValueError, match="shape"):
        dehaze_dask(method, np.zeros((4, 4, 3, 1), np.uint8))


@pytest.mark.data
def test_network_weights_reach_the_workers(
    client: Any, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dehaze.distributed import dehaze_files
    from dehaze.registry import DEFAULT_WEIGHTS

    weights = data_dir / "weights" / DEFAULT_WEIGHTS["aodnet"]
    src = tmp_path / "in"
    imwrite(src / "a.png", hazy(8))
    imwrite(src / "b.png", hazy(9, 33, 47))
    monkeypatch.chdir(weights.parent)  # a relative --weights path, as typed
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert (
        cli.main([str(src), "-o", str(serial), "-q", "--method", f"aodnet:weights={weights.name}"])
        == 0
    )
    report = dehaze_files([src], parallel, client=client, method=f"aodnet:weights={weights.name}")
    assert [item.status for item in report.files] == ["done", "done"]
    assert digests(parallel) == digests(serial)


class CrashOnThirteenRows:
    """A method that kills its worker process on an image 13 rows high (a lost worker)."""

    def __call__(self, image: Any) -> Any:
        from dehaze.result import DehazeResult

        if np.asarray(image).shape[0] == 13:
            os._exit(3)
        return DehazeResult(image=np.asarray(image))


def crash_factory(options: Any, context: Any) -> CrashOnThirteenRows:
    return CrashOnThirteenRows()


class RegisterCrash:
    """A worker plugin: every worker, also one restarted after a crash, knows crash13."""

    name = "dehaze-test-crash13"
    idempotent = True

    def setup(self, worker: Any) -> None:
        from dehaze import registry

        registry.register_method("crash13", crash_factory, replace=True)

    def teardown(self, worker: Any) -> None:
        pass


def test_a_lost_worker_fails_its_file_only(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed.diagnostics.plugin import WorkerPlugin

    from dehaze import registry
    from dehaze.distributed import dehaze_files

    plugin = type("RegisterCrashPlugin", (RegisterCrash, WorkerPlugin), {})()
    monkeypatch.setitem(registry.METHODS, "crash13", crash_factory)
    client.register_plugin(plugin, name=RegisterCrash.name)
    try:
        src = tmp_path / "in"
        imwrite(src / "fine.png", hazy(10, 20, 20))
        imwrite(src / "deadly.png", hazy(11, 13, 20))
        report = dehaze_files([src], tmp_path / "out", client=client, method="crash13")
    finally:
        client.unregister_worker_plugin(RegisterCrash.name)
    by_name = {item.source.name: item for item in report.files}
    assert by_name["fine.png"].status == "done"
    # the task killed every worker it was tried on (Dask gives up after a few): one failed
    # file with the reason, not an exception from the batch
    deadly = by_name["deadly.png"]
    assert deadly.status == "failed" and "KilledWorker" in (deadly.message or "")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fine.png"]
    client.wait_for_workers(2, timeout=60)


def test_videos_and_empty_batches_on_the_cluster(client: Any, tmp_path: Path) -> None:
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    writer = cv2.VideoWriter(str(src / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(5):
        writer.write(hazy(20 + k, 48, 64)[..., ::-1].copy())
    writer.release()
    address = client.scheduler.address
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    pattern = str(src / "*.avi")
    assert cli.main([pattern, "-o", str(serial), "-q", "--save-light"]) == 0
    assert (
        cli.main([pattern, "-o", str(parallel), "-q", "--save-light", "--scheduler", address]) == 0
    )
    assert digests(parallel) == digests(serial) and len(digests(serial)) == 2
    # nothing to do: no cluster is reached (this address has none), the problem is reported
    empty = tmp_path / "empty"
    empty.mkdir()
    status = cli.main([str(empty), "-o", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"])
    assert status == 1
