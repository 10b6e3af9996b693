"""Score the AOD-Net and DehazeNet adapters on the shared SOTS-indoor pairs.

Pinned protocol: images read as RGB and scaled to float64 in [0, 1]; each method's output
(float64, clipped to [0, 1]) is compared with the clear image by
``skimage.metrics.peak_signal_noise_ratio(data_range=1)`` and
``structural_similarity(channel_axis=-1, data_range=1)``; the table gives the mean over
pairs. Where PyTorch is installed, the MIT ``.pth`` is also run through a PyTorch forward
(float32, as in its original code) as the reference the NumPy port must reproduce.

Usage (from the project root)::

    .venv/bin/python bench/models_sots.py [--limit N] [--csv results.csv]

The published figures beside ours are on the full SOTS-indoor set (500 pairs), not on
these 60: they are context, not a target.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dehaze.io import imread
from dehaze.models import AODNet, DehazeNet

ROOT = Path(__file__).resolve().parents[1]

#: The MIT .pth on the 60 shared pairs, measured with a PyTorch forward (data README), and
#: the tolerance the NumPy port must reproduce it to when all 60 pairs are scored.
MIT_REFERENCE = {"psnr": 18.40, "ssim": 0.8301}
PSNR_TOLERANCE_DB = 0.05
SSIM_TOLERANCE = 0.0005

#: (method label, weight file, loader, published PSNR/SSIM and where they come from)
METHODS: list[tuple[str, str, Callable[[Path], Any], str]] = [
    (
        "AOD-Net (MIT PyTorch .pth)",
        "aodnet_pytorch_MayankSingal_dehazer.pth",
        AODNet.from_file,
        "18.40 / 0.8301 (PyTorch forward, these 60 pairs)",
    ),
    (
        "AOD-Net (official Caffe)",
        "aodnet_caffe_Boyiliee_AOD_Net.caffemodel",
        AODNet.from_file,
        "19.06 / 0.850 (paper/RESIDE, full SOTS indoor)",
    ),
    (
        "DehazeNet (official MATLAB)",
        "dehazenet_matlab_caibolun_dehaze.mat",
        DehazeNet.from_file,
        "21.14 / 0.847 (RESIDE, full SOTS indoor)",
    ),
]


def data_root() -> Path:
    value = os.environ.get("DEHAZE_DATA")
    return Path(value) if value else ROOT.parent / "shared" / "data"


def sots_pairs(root: Path, limit: int | None) -> list[tuple[str, Path, Path]]:
    hazy_dir = root / "sots" / "indoor" / "hazy"
    pairs = []
    for hazy in sorted(hazy_dir.glob("*.png")):
        clear = root / "sots" / "indoor" / "gt" / f"{hazy.stem.split('_')[0]}.png"
        if not clear.is_file():
            raise FileNotFoundError(f"no clear image {clear} for {hazy}")
        pairs.append((hazy.stem, hazy, clear))
    if not pairs:
        raise FileNotFoundError(f"no SOTS-indoor pairs under {hazy_dir}")
    return pairs[:limit] if limit else pairs


def as_float64(path: Path) -> np.ndarray:
    image = imread(path)
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit image, got {image.dtype}")
    return image.astype(np.float64) / 255.0


def scores(clear: np.ndarray, output: np.ndarray) -> tuple[float, float]:
    psnr = peak_signal_noise_ratio(clear, output, data_range=1)
    ssim = structural_similarity(clear, output, channel_axis=-1, data_range=1)
    return float(psnr), float(ssim)


def torch_aodnet_method(net: AODNet) -> Callable[[np.ndarray], np.ndarray] | None:
    """The PyTorch forward of the same weights (float32), or None without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    w = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in net.weights.arrays().items()}

    def layer(name: str, x: Any, pad: int) -> Any:
        return F.relu(F.conv2d(x, w[f"{name}_weight"], w[f"{name}_bias"], padding=pad))

    def run(image: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, 2, 0))).float()[None]
            x1 = layer("conv1", x, 0)
            x2 = layer("conv2", x1, 1)
            x3 = layer("conv3", torch.cat((x1, x2), 1), 2)
            x4 = layer("conv4", torch.cat((x2, x3), 1), 3)
            k = layer("conv5", torch.cat((x1, x2, x3, x4), 1), 1)
            out = F.relu(k * x - k + 1).clamp(0, 1)
        return np.moveaxis(out[0].numpy(), 0, 2).astype(np.float64)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument("--limit", type=int, default=None, help="first N pairs only")
    parser.add_argument("--csv", type=Path, default=None, help="write per-image scores here")
    args = parser.parse_args(argv)
    root = args.data or data_root()
    pairs = sots_pairs(root, args.limit)
    if args.csv is not None and args.csv.exists():
        print(f"{args.csv} exists; not overwriting", file=sys.stderr)
        return 1

    methods: list[tuple[str, Callable[[np.ndarray], np.ndarray], str]] = []
    for label, filename, loader, published in METHODS:
        method = loader(root / "weights" / filename)
        methods.append((label, lambda img, m=method: m(img).image, published))
        if isinstance(method, AODNet) and "pth" in filename:
            reference = torch_aodnet_method(method)
            if reference is not None:
                methods.append(("  same .pth, PyTorch forward", reference, "(reference)"))

    rows: list[dict[str, Any]] = []
    hazy_scores = []
    for name, hazy_path, clear_path in pairs:
        hazy, clear = as_float64(hazy_path), as_float64(clear_path)
        hazy_scores.append(scores(clear, hazy))
        for label, run, _ in methods:
            start = time.perf_counter()
            output = run(hazy)
            elapsed = time.perf_counter() - start
            if output.dtype != np.float64 or output.shape != clear.shape:
                raise RuntimeError(f"{label}: bad output {output.dtype} {output.shape}")
            psnr, ssim = scores(clear, output)
            rows.append(
                {"pair": name, "method": label.strip(), "psnr": psnr, "ssim": ssim, "s": elapsed}
            )
        print(f"  {name} done", file=sys.stderr)

    hazy_mean = np.mean(hazy_scores, axis=0)
    print(f"SOTS indoor, {len(pairs)} shared pairs, float64 in [0, 1], skimage PSNR/SSIM")
    print(f"{'method':32s} {'PSNR dB':>8s} {'SSIM':>7s} {'s/img':>6s}   published PSNR / SSIM")
    print(f"{'hazy input':32s} {hazy_mean[0]:8.2f} {hazy_mean[1]:7.4f}")
    means: dict[str, tuple[float, float]] = {}
    for label, _, published in methods:
        mine = [r for r in rows if r["method"] == label.strip()]
        psnr = float(np.mean([r["psnr"] for r in mine]))
        ssim = float(np.mean([r["ssim"] for r in mine]))
        secs = np.median([r["s"] for r in mine])
        means[label] = (psnr, ssim)
        print(f"{label:32s} {psnr:8.2f} {ssim:7.4f} {secs:6.2f}   {published}")

    if args.csv is not None:
        with open(args.csv, "x", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["pair", "method", "psnr", "ssim", "s"])
            writer.writeheader()
            writer.writerows(rows)

    if len(pairs) == 60:  # the reference figure is the mean over exactly these 60 pairs
        psnr, ssim = means[METHODS[0][0]]
        ok = (
            abs(psnr - MIT_REFERENCE["psnr"]) <= PSNR_TOLERANCE_DB
            and abs(ssim - MIT_REFERENCE["ssim"]) <= SSIM_TOLERANCE
        )
        verdict = "reproduced" if ok else "NOT reproduced"
        print(
            f"MIT .pth: {psnr:.3f} dB / {ssim:.4f} vs reference {MIT_REFERENCE['psnr']:.2f} dB / "
            f"{MIT_REFERENCE['ssim']:.4f} (±{PSNR_TOLERANCE_DB} dB): {verdict}"
        )
        if not ok:
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
