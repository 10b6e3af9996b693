"""Forward-pass speed of the AOD-Net and DehazeNet adapters beside PyTorch, at 620 × 460.

Run with ``.venv/bin/pytest bench/bench_models.py -s --benchmark-json=bench.json`` (needs
the shared weights; the PyTorch references are skipped where torch is not installed), then
``python bench/report.py bench.json`` for the table of speed-ups. Each PyTorch network is
built in this file from the same weights the adapter loaded, checked to give the same output,
and timed in the same run; with ``-s`` the ratios adapter / PyTorch are also printed at the
end. OpenCV runs with its default thread count; PyTorch with its default ("reference") and
with one thread ("torch-1thread": on a busy machine PyTorch's thread pool suffers most).

The DehazeNet timings are of the network only (``DehazeNet.forward``: t before guided
filtering and recovery); ``test_dehazenet_full`` times the whole ``__call__``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dehaze.models import AODNet, DehazeNet

ROOT = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 460, 620
_TIMES: dict[str, float] = {}


def _data_root() -> Path:
    value = os.environ.get("DEHAZE_DATA")
    return Path(value) if value else ROOT.parent / "shared" / "data"


def _weights(name: str) -> Path:
    path = _data_root() / "weights" / name
    if not path.is_file():
        pytest.skip(f"weights not found: {path} (set DEHAZE_DATA)")
    return path


@pytest.fixture(scope="module")
def sots_image() -> np.ndarray:
    """A 620 × 460 SOTS hazy image (float32 RGB) or, without the data, a random one."""
    path = _data_root() / "sots" / "indoor" / "hazy" / "1400_1.png"
    if path.is_file():
        from dehaze.io import imread

        img = imread(path).astype(np.float32) / np.float32(255)
    else:
        img = np.random.default_rng(0).random((HEIGHT, WIDTH, 3), dtype=np.float32)
    assert img.shape == (HEIGHT, WIDTH, 3)
    return img


@pytest.fixture(scope="module")
def aodnet() -> AODNet:
    return AODNet.from_file(_weights("aodnet_pytorch_MayankSingal_dehazer.pth"))


@pytest.fixture(scope="module")
def dehazenet() -> DehazeNet:
    return DehazeNet.from_file(_weights("dehazenet_matlab_caibolun_dehaze.mat"))


@pytest.fixture(scope="module", autouse=True)
def report_ratios() -> Iterator[None]:
    yield
    lines = []
    for net in ("aodnet", "dehazenet"):
        for variant in ("torch", "torch_1thread"):  # default threads, then one thread
            ours, theirs = _TIMES.get(f"{net}_numpy"), _TIMES.get(f"{net}_{variant}")
            if ours is not None and theirs is not None:
                lines.append(
                    f"{net} forward at {WIDTH}x{HEIGHT}: numpy/opencv {ours * 1e3:.1f} ms, "
                    f"{variant} {theirs * 1e3:.1f} ms (medians), ratio {ours / theirs:.2f}"
                )
    for line in lines:  # shown with -s (or -rA); bench/report.py gives the same ratios
        print(line, file=sys.stderr)


def _run(benchmark: Any, key: str, func: Callable[[], Any]) -> Any:
    func()  # warm up (OpenCV/PyTorch first-call costs)
    result = benchmark.pedantic(func, rounds=12, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        _TIMES[key] = float(benchmark.stats.stats.median)
    return result


# --- PyTorch references built from the same weights --------------------------------------


def torch_aodnet(net: AODNet) -> Callable[[Any], Any]:
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    w = {k: torch.from_numpy(np.array(v)) for k, v in net.weights.arrays().items()}

    def layer(name: str, x: Any, pad: int) -> Any:
        return F.relu(F.conv2d(x, w[f"{name}_weight"], w[f"{name}_bias"], padding=pad))

    def forward(x: Any) -> Any:
        with torch.no_grad():
            x1 = layer("conv1", x, 0)
            x2 = layer("conv2", x1, 1)
            x3 = layer("conv3", torch.cat((x1, x2), 1), 2)
            x4 = layer("conv4", torch.cat((x2, x3), 1), 3)
            k = layer("conv5", torch.cat((x1, x2, x3, x4), 1), 1)
            return F.relu(k * x - k + 1)

    return forward


def torch_dehazenet(net: DehazeNet) -> Callable[[Any], Any]:
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    w = {k: torch.from_numpy(np.array(v)) for k, v in net.weights.arrays().items()}

    def symmetric(x: Any, before: int, after: int) -> Any:
        """MATLAB 'symmetric' padding (edge repeated) of the last two axes."""
        for axis in (2, 3):
            size = x.shape[axis]
            head = x.narrow(axis, 0, before).flip(axis)
            tail = x.narrow(axis, size - after, after).flip(axis)
            x = torch.cat((head, x, tail), axis)
        return x

    def conv(x: Any, name: str) -> Any:
        k = w[f"{name}_weight"].shape[-1]
        before = (k - 1) // 2
        return F.conv2d(
            symmetric(x, before, k - 1 - before), w[f"{name}_weight"], w[f"{name}_bias"]
        )

    def forward(x: Any) -> Any:
        with torch.no_grad():
            f1 = conv(x - 0.5, "conv1")
            f1 = f1.view(1, 4, 4, *f1.shape[2:]).amax(dim=2)
            f2 = torch.cat([conv(f1, b) for b in ("conv3x3", "conv5x5", "conv7x7")], 1)
            # PyTorch's stride-1 max pool is slow on CPU; channels_last is the fastest
            # layout measured for it (about 3x faster than NCHW here)
            padded = F.pad(f2, (3, 3, 3, 3), mode="replicate")
            f3 = F.max_pool2d(padded.contiguous(memory_format=torch.channels_last), 7, stride=1)
            f3 = f3.contiguous()
            return conv(f3, "regression").clamp(0.0, 1.0)

    return forward


def _tensor(image: np.ndarray) -> Any:
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, 2, 0)))[None]


# --- benchmarks ----------------------------------------------------------------------------
# Implementations: "dehaze" (this package), "reference" (PyTorch, default threads) and
# "torch-1thread" (PyTorch limited to one thread); bench/report.py turns a --benchmark-json
# file of these into speed-ups against "reference".

IMPLS = ("dehaze", "reference", "torch-1thread")


@pytest.fixture
def torch_threads(impl: str) -> Iterator[None]:
    """Limit PyTorch to one thread for the "torch-1thread" implementation."""
    if impl == "dehaze":
        yield
        return
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    if impl == "torch-1thread":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("impl", IMPLS)
def test_aodnet_forward(
    benchmark: Any, aodnet: AODNet, sots_image: np.ndarray, impl: str, torch_threads: None
) -> None:
    benchmark.group = f"aodnet-forward-{WIDTH}x{HEIGHT}"
    if impl == "dehaze":
        out = _run(benchmark, "aodnet_numpy", lambda: aodnet.forward(sots_image))
        assert out.shape == (HEIGHT, WIDTH, 3) and out.dtype == np.float32
        return
    forward = torch_aodnet(aodnet)
    x = _tensor(sots_image)
    key = "aodnet_torch" if impl == "reference" else "aodnet_torch_1thread"
    out = _run(benchmark, key, lambda: forward(x))
    np.testing.assert_allclose(
        np.moveaxis(out[0].numpy(), 0, 2), aodnet.forward(sots_image), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_dehazenet_forward(
    benchmark: Any, dehazenet: DehazeNet, sots_image: np.ndarray, impl: str, torch_threads: None
) -> None:
    benchmark.group = f"dehazenet-forward-{WIDTH}x{HEIGHT}"
    if impl == "dehaze":
        out = _run(benchmark, "dehazenet_numpy", lambda: dehazenet.forward(sots_image))
        assert out.shape == (HEIGHT, WIDTH) and out.dtype == np.float32
        return
    forward = torch_dehazenet(dehazenet)
    x = _tensor(sots_image)
    key = "dehazenet_torch" if impl == "reference" else "dehazenet_torch_1thread"
    out = _run(benchmark, key, lambda: forward(x))
    # float32 sums of ~2000 products: both sides are within 2e-5 of the float64 forward
    np.testing.assert_allclose(out[0, 0].numpy(), dehazenet.forward(sots_image), atol=5e-5)


def test_dehazenet_full(benchmark: Any, dehazenet: DehazeNet, sots_image: np.ndarray) -> None:
    """The whole call: network, light, guided filter (r = 50) and recovery."""
    benchmark.group = f"dehazenet-call-{WIDTH}x{HEIGHT}"
    result = _run(benchmark, "dehazenet_full", lambda: dehazenet(sots_image))
    assert result.image.shape == sots_image.shape
