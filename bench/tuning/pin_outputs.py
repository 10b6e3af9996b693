"""Record, or check, hashes of every method's outputs on the shared photos.

A refactor that must not change results runs this before (``--write pins.json``) and after
(``--check pins.json``): every field of every result (image, transmission, atmospheric light,
dark channel, depth) is hashed byte for byte, for uint8 and float32 inputs, and for the video
path (smoothed scene) on a short sequence. Hashes are of this machine's floating-point results;
compare runs on the same machine.

    python bench/tuning/pin_outputs.py --write /tmp/pins.json
    python bench/tuning/pin_outputs.py --check /tmp/pins.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import dehaze
from dehaze.io import imread

DATA = Path(os.environ.get("DEHAZE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def _digest(value: Any) -> str:
    if value is None:
        return "none"
    arr = np.ascontiguousarray(np.asarray(value))
    return hashlib.sha256(
        str(arr.dtype).encode() + str(arr.shape).encode() + arr.tobytes()
    ).hexdigest()[:16]


def _result_digest(result: Any) -> dict[str, str]:
    fields = ("image", "transmission", "atmospheric_light", "dark_channel", "depth")
    return {f: _digest(getattr(result, f, None)) for f in fields}


def _methods() -> dict[str, Callable[[], Any]]:
    methods: dict[str, Callable[[], Any]] = {
        "dcp": lambda: dehaze.DarkChannelPrior(),
        "dcp_paper": lambda: dehaze.DarkChannelPrior.paper(),
        "dcp_color_fast": lambda: dehaze.DarkChannelPrior(guide="color", subsample=4),
        "dcp_fixed_light": lambda: dehaze.DarkChannelPrior(atmospheric_light=(0.9, 0.85, 0.8)),
        "robust": lambda: dehaze.RobustDCP(),
        "robust_quadtree": lambda: dehaze.RobustDCP(light="quadtree", amount=0.8, subsample=2),
        "robust_no_tolerance": lambda: dehaze.RobustDCP(tolerance=None, amount=0.7),
        "cap": lambda: dehaze.ColorAttenuationPrior(),
        "clear": lambda: dehaze.ClearHaze(),
        "clear_small_fast": lambda: dehaze.ClearHaze(working_size=200, t0=0.1),
        "cap_tolerance": lambda: dehaze.ColorAttenuationPrior(
            guide="color", tolerance=0.3, amount=0.8
        ),
    }
    return methods


def _networks() -> dict[str, Callable[[], Any]]:
    from dehaze.models import AODNet, DehazeNet

    weights = DATA / "weights"
    return {
        "aodnet": lambda: AODNet.from_file(weights / "aodnet_pytorch_MayankSingal_dehazer.pth"),
        "dehazenet": lambda: DehazeNet.from_file(weights / "dehazenet_matlab_caibolun_dehaze.mat"),
    }


def _images(limit: int | None) -> Iterator[tuple[str, np.ndarray]]:
    real = sorted(
        p for p in (DATA / "real").iterdir() if p.suffix.lower() in {".png", ".jpg", ".bmp"}
    )
    sots = (
        sorted((DATA / "sots" / "indoor" / "hazy").iterdir())[:6]
        + sorted((DATA / "sots" / "outdoor" / "hazy").iterdir())[:6]
    )
    paths = real + sots
    for p in paths[:limit]:
        yield f"{p.parent.parent.name}/{p.name}", imread(p)


def collect(limit: int | None) -> dict[str, dict[str, str]]:
    pins: dict[str, dict[str, str]] = {}
    methods = {name: make() for name, make in _methods().items()}
    networks = {name: make() for name, make in _networks().items()}
    for index, (name, image) in enumerate(_images(limit)):
        small = image.shape[0] * image.shape[1] <= 700 * 700
        for mname, method in methods.items():
            pins[f"{mname}|{name}|u8"] = _result_digest(method(image))
            if index % 4 == 0:
                pins[f"{mname}|{name}|f32"] = _result_digest(method(image.astype(np.float32) / 255))
        if small and index % 3 == 0:
            for mname, method in networks.items():
                pins[f"{mname}|{name}|u8"] = _result_digest(method(image))
        print(name, file=sys.stderr)
    # video: a short sequence of shifted crops, smoothed scene
    from dehaze.video import dehaze_frames

    base = imread(DATA / "real" / "canon.jpg")
    frames = [base[i * 4 : i * 4 + 300, i * 6 : i * 6 + 400] for i in range(6)]
    for mname in ("dcp", "robust", "clear"):
        method = methods[mname]
        for opts in ({}, {"light_every": 2, "light_downscale": 2, "light_weight": 0.3}):
            key = f"video|{mname}|{sorted(opts.items())}"
            for item in dehaze_frames(frames, method, **opts):
                pins[f"{key}|{item.index}"] = _result_digest(item.result)
                pins[f"{key}|{item.index}"]["estimate"] = _digest(item.light_estimate)
    return pins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path)
    group.add_argument("--check", type=Path)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    pins = collect(args.limit)
    if args.write:
        args.write.write_text(json.dumps(pins, indent=1, sort_keys=True))
        print(f"{len(pins)} results pinned in {args.write}")
        return 0
    expected = json.loads(args.check.read_text())
    differ = [k for k in expected if pins.get(k) != expected[k]]
    missing = [k for k in expected if k not in pins]
    print(f"{len(expected)} pinned, {len(differ)} differ, {len(missing)} missing")
    for key in differ[:40]:
        bad = {f for f in expected[key] if pins.get(key, {}).get(f) != expected[key][f]}
        print("  differs:", key, sorted(bad))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
