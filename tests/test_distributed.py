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
    distributed = pytest.importorskip("distributed", reason=DASK_REASON)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as connected,
    ):
        yield connected


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


def test_import_dehaze_never_imports_dask() -> None:
    code = (
        "import sys, dehaze, dehaze.cli\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print(loaded)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
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
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'dehaze-dcp[dask]'" in proc.stdout
    # the command: a usage error naming the extra, nothing written
    monkeypatch.setitem(sys.modules, "dehaze.distributed", None)
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
