"""Banded kernels on several threads agree with the references and with one thread."""

from __future__ import annotations

import numpy as np
import pytest

import dehaze

from helpers import dcp_dehaze
from reference import (
    box_mean_ref,
    dehaze_ref,
    guided_color_ref,
    guided_gray_ref,
    min_filter_ref,
)


@pytest.fixture(params=[1, 2, 3, 5])
def threads(request):
    with dehaze.num_threads(request.param):
        yield request.param


def test_num_threads_context_restores(threads):
    assert dehaze.get_num_threads() == threads
    with dehaze.num_threads(7):
        assert dehaze.get_num_threads() == 7
    assert dehaze.get_num_threads() == threads


def test_bad_thread_count():
    with pytest.raises(ValueError, match="n must be an integer ≥ 1"):
        dehaze.set_num_threads(0)


def test_min_filter_bands(rng, threads):
    a = rng.random((211, 333))
    np.testing.assert_array_equal(dehaze.min_filter(a, 9), min_filter_ref(a, 9))


def test_box_filter_bands(rng, threads):
    a = rng.random((207, 390))
    np.testing.assert_allclose(dehaze.box_filter(a, 25), box_mean_ref(a, 25), atol=1e-12)


@pytest.mark.parametrize("radius", (3, 40, 500))
def test_guided_bands(rng, threads, radius):
    guide = rng.random((150, 260, 3))
    src = rng.random((150, 260))
    np.testing.assert_allclose(
        dehaze.guided_filter(guide[..., 0], src, radius, 1e-3),
        guided_gray_ref(guide[..., 0], src, radius, 1e-3),
        atol=1e-10,
    )
    if radius < 500:  # the per-pixel 3×3 reference solve is slow; one large radius suffices
        np.testing.assert_allclose(
            dehaze.guided_filter(guide, src, radius, 1e-2),
            guided_color_ref(guide, src, radius, 1e-2),
            atol=1e-9,
        )


def test_pipeline_bands(rng, threads):
    hazy = rng.random((160, 300, 3)) * 0.5 + 0.4
    result = dcp_dehaze(hazy, guided_radius=30, subsample=2)
    expected = dehaze_ref(hazy, guided_radius=30, subsample=2)
    np.testing.assert_allclose(result.image, expected["image"], atol=1e-5)
    np.testing.assert_allclose(result.depth, expected["depth"], atol=1e-5)


def test_uint8_pipeline_is_identical_across_thread_counts(rng):
    hazy = rng.integers(60, 255, (180, 330, 3), dtype=np.uint8)
    outputs = []
    for n in (1, 2, 4):
        with dehaze.num_threads(n):
            outputs.append(dcp_dehaze(hazy, guided_radius=20).image)
    for out in outputs[1:]:
        # banded float64 sums may differ in the last bits between thread counts, far below
        # what reaches a uint8 output: on this image every pixel is the same
        np.testing.assert_array_equal(out, outputs[0])


@pytest.mark.parametrize("guide", ("gray", "color"))
def test_float32_sums_are_exact_whatever_the_band_count(rng, guide):
    # float32 planes are summed exactly (terms snapped to 2^-34), so every field, not only
    # the uint8 image, is the same bit for bit with 1, 2, 3 or 5 bands
    hazy = (rng.random((170, 301, 3)) * 0.6 + 0.3).astype(np.float32)
    results = []
    for n in (1, 2, 3, 5):
        with dehaze.num_threads(n):
            results.append(
                (
                    dcp_dehaze(hazy, guided_radius=25, guide=guide),
                    dehaze.box_filter(hazy[..., 0], 17),
                    dehaze.guided_filter(hazy[..., 1], hazy[..., 2], 31, 1e-3),
                )
            )
    first = results[0]
    for other in results[1:]:
        for field in ("image", "transmission", "depth"):
            np.testing.assert_array_equal(getattr(other[0], field), getattr(first[0], field))
        np.testing.assert_array_equal(other[1], first[1])
        np.testing.assert_array_equal(other[2], first[2])


@pytest.mark.parametrize("channels", (1, 3))
def test_guided_sums_do_not_depend_on_where_they_start(rng, channels):
    # The coefficient kernel's float64 outputs show its window sums to the last bit: a band
    # split, or a crop that keeps every window inside, must give the same bits. Before the
    # terms were snapped (products of float32 values carry 48 bits), most pixels differed.
    from dehaze._kernels import guided as gk

    guide = rng.random((120, 170, channels)).astype(np.float32)
    src = rng.random((120, 170)).astype(np.float32)
    r = 13

    def run(g, p, bands):
        ab = np.zeros((channels + 1, *p.shape))
        for j0, j1 in bands:
            if channels == 1:
                gk.coefficients_gray(np.ascontiguousarray(g[..., 0]), p, r, 1e-3, ab, j0, j1)
            else:
                gk.coefficients_color(g, p, r, 1e-3, ab, j0, j1)
        return ab

    whole = run(guide, src, [(0, 170)])
    np.testing.assert_array_equal(run(guide, src, [(0, 61), (61, 170)]), whole)
    crop = run(
        np.ascontiguousarray(guide[29:, 41:]), np.ascontiguousarray(src[29:, 41:]), [(0, 129)]
    )
    np.testing.assert_array_equal(crop[:, r:, r:], whole[:, 29 + r :, 41 + r :])


def test_concurrent_callers_get_their_own_results(rng):
    # several user threads calling dehaze at once share the kernel pool: every call must
    # still get exactly its serial result (no band of one call lands in another's output)
    from concurrent.futures import ThreadPoolExecutor

    images = [rng.integers(0, 256, (180, 150 + 7 * k, 3), dtype=np.uint8) for k in range(6)]
    with dehaze.num_threads(2):
        serial = [dcp_dehaze(im, guided_radius=12).image for im in images]
        with ThreadPoolExecutor(max_workers=4) as users:
            parallel = list(users.map(lambda im: dcp_dehaze(im, guided_radius=12).image, images))
    for want, got in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(got, want)


# --- changing the thread count while other threads compute ----------------------------

# The reproduction, bounded: one thread dehazes 30 times while the main thread
# toggles the thread count between 1 and 2. Run in a subprocess so that heap corruption
# ("malloc(): invalid next size", SIGABRT/SIGSEGV) is a failed test, not a dead run.
_TOGGLE_SCRIPT = """
import sys, threading, time, traceback
import numpy as np, dehaze
pin = sys.argv[1] == "pin"
if pin:
    from dehaze._parallel import fixed_threads
img = np.random.default_rng(0).random((256, 384, 3)).astype(np.float32)
dehaze.DarkChannelPrior(guided_radius=8)(img)  # compile before the race
expected = dehaze.DarkChannelPrior(guided_radius=8)(img).image
failures = []
def work():
    try:
        for _ in range(30):
            if pin:
                with fixed_threads():
                    out = dehaze.DarkChannelPrior(guided_radius=8)(img).image
            else:
                out = dehaze.DarkChannelPrior(guided_radius=8)(img).image
            if not np.allclose(out, expected, atol=1e-5):
                failures.append("result differs from the undisturbed one")
    except Exception:
        failures.append(traceback.format_exc())
t = threading.Thread(target=work)
t.start()
k = 0
while t.is_alive():
    dehaze.set_num_threads(1 + k % 2)
    k += 1
    time.sleep(0.0005)
t.join()
print("toggles", k)
print("\\n".join(failures))
sys.exit(3 if failures else 0)
"""


def _run_toggle(mode):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", _TOGGLE_SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_thread_toggle_during_dehaze_never_corrupts_memory():
    # plain calls: the process survives and every call succeeds (the two-pass light
    # selection fixes its bands once with _parallel.fixed_threads)
    proc = _run_toggle("plain")
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "toggles" in proc.stdout


def test_thread_toggle_during_pinned_dehaze_gives_the_undisturbed_result():
    proc = _run_toggle("pin")
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)


def test_pool_is_not_shut_down_under_a_running_call():
    # two threads run banded work while the main thread makes the pool grow: a call that
    # grew it used to shut down the executor the other thread was submitting to ("cannot
    # schedule new futures after shutdown"). Growth is forced over and over by making the
    # pool look too small (the state a larger set_num_threads leads to).
    import threading
    import time

    from dehaze import _parallel

    errors = []
    stop = threading.Event()

    def work():
        try:
            while not stop.is_set():
                _parallel.run_bands(lambda i0, i1: None, 64 * 8)
        except Exception as exc:  # noqa: BLE001 - any error is the failure
            errors.append(exc)

    with dehaze.num_threads(8):
        workers = [threading.Thread(target=work) for _ in range(2)]
        for worker in workers:
            worker.start()
        try:
            for _ in range(300):
                with _parallel._lock:
                    _parallel._executor_size = 0
                time.sleep(0.0003)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
    assert errors == []


def test_band_plan_is_fixed_once_made():
    from dehaze._parallel import band_plan, run_bands

    with dehaze.num_threads(3):
        plan = band_plan(1000)
    assert plan.threads == 3
    assert plan.edges[0] == 0 and plan.edges[-1] == 1000
    seen = []
    with dehaze.num_threads(1):
        run_bands(lambda i0, i1: seen.append((i0, i1)), 1000, plan=plan)
    assert sorted(seen) == plan.bands()
    with pytest.raises(ValueError, match="plan cuts range"):
        run_bands(lambda i0, i1: None, 999, plan=plan)
    # fewer than MIN_BAND rows per band are not split
    assert band_plan(100, 8).threads == 1
    assert band_plan(0).bands() == [(0, 0)]


def test_fixed_threads_pins_only_the_calling_thread():
    import threading

    from dehaze._parallel import band_plan, fixed_threads

    with dehaze.num_threads(4):
        with fixed_threads() as pinned:
            assert pinned == 4
            dehaze.set_num_threads(2)  # from "another caller": ignored by this thread's plans
            assert band_plan(1000).threads == 4
            with fixed_threads() as inner:  # nested: the outer pin holds
                assert inner == 4
            assert band_plan(1000).threads == 4
            other = []
            t = threading.Thread(target=lambda: other.append(band_plan(1000).threads))
            t.start()
            t.join()
            assert other == [2]
        assert band_plan(1000).threads == 2


def test_serial_bands_runs_the_same_bands_in_the_calling_thread(rng):
    import threading

    from dehaze._parallel import band_plan, run_bands, serial_bands

    seen = []
    with dehaze.num_threads(3):
        with serial_bands():
            run_bands(lambda i0, i1: seen.append((i0, i1, threading.get_ident())), 1000)
            with serial_bands():  # nested: still serial inside, and after the inner block
                pass
            image = rng.random((200, 300, 3)).astype(np.float32)
            serial = dcp_dehaze(image)
        threaded = dcp_dehaze(image)
        other = []
        with serial_bands():  # other threads keep the pool
            t = threading.Thread(
                target=lambda: run_bands(lambda i0, i1: other.append(threading.get_ident()), 1000)
            )
            t.start()
            t.join()
        assert [(i0, i1) for i0, i1, _ in seen] == band_plan(1000, 3).bands()
    assert {ident for _, _, ident in seen} == {threading.get_ident()}
    assert len(set(other)) > 1  # the other thread's bands went to the pool
    # the same bands: the same result bit for bit as with the threads
    np.testing.assert_array_equal(serial.image, threaded.image)
    np.testing.assert_array_equal(serial.transmission, threaded.transmission)


def test_split_kernel_refuses_an_undersized_buffer():
    # a band plan changed between the counting and the splitting pass used to make this
    # kernel write past its buffers (heap corruption); now it raises
    from dehaze._kernels import atmosphere as atm

    dark = np.full((8, 8), 0.5)
    image = np.full((8, 8, 3), 0.5)
    target = int(0.5 * atm.N_BINS)
    values = np.empty(10)
    index = np.empty(10, dtype=np.int64)
    with pytest.raises(IndexError, match="buffer"):
        atm.split_at_bin(dark, image, target, values, index, np.empty(4), 0, 8)
    values = np.empty(64)
    index = np.empty(64, dtype=np.int64)
    atm.split_at_bin(dark, image, target, values, index, np.empty(4), 0, 8)
    np.testing.assert_array_equal(index, np.arange(64))


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5"])
def test_bad_thread_env_var_warns_and_uses_the_default(monkeypatch, value):
    from dehaze import _parallel

    monkeypatch.setenv("DEHAZE_NUM_THREADS", value)
    with pytest.warns(RuntimeWarning, match=r"DEHAZE_NUM_THREADS=.* integers ≥ 1"):
        got = _parallel._default_threads()
    assert got == _parallel._available_cpus()


def test_thread_env_var_is_read(monkeypatch):
    from dehaze import _parallel

    monkeypatch.setenv("DEHAZE_NUM_THREADS", "3")
    assert _parallel._default_threads() == 3
    monkeypatch.setenv("DEHAZE_NUM_THREADS", "")
    assert _parallel._default_threads() == _parallel._available_cpus()


def test_bad_thread_env_var_is_not_a_traceback_at_import():
    import os
    import subprocess
    import sys

    env = dict(os.environ, DEHAZE_NUM_THREADS="abc")
    proc = subprocess.run(
        [sys.executable, "-c", "import dehaze; print(dehaze.get_num_threads())"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "DEHAZE_NUM_THREADS='abc' is ignored" in proc.stderr
    assert int(proc.stdout) >= 1
