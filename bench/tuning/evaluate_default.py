"""Print every target of issue 11 for one or more dehazing methods.

Usage (from the project root; data from ``$DEHAZE_DATA``, default ../shared/data)::

    .venv/bin/python bench/tuning/evaluate_default.py                  # all methods, all targets
    .venv/bin/python bench/tuning/evaluate_default.py --methods clear dcp --parts sots real
    .venv/bin/python bench/tuning/evaluate_default.py --save /work/proto/h5   # + side-by-sides

Targets (issue 11): real photos mean FADE ≤ 0.65 and every photo with input FADE ≥ 1.0 to
≤ 0.6× its input's; O-HAZE ≥ 19.5 dB and not below the input on either pair; SOTS indoor
≥ 22.0 dB / 0.885, outdoor ≥ 21.5 / 0.92, never > 0.5 dB below the hazy input; SOTS
upscaled 2× and 3× (bicubic), dehazed, scaled back (area) within 0.3 dB of native; half-size
vs full-size output ≥ 35 dB (O-HAZE 27, 35, real/foggy_house.jpg); time ≤ 1.3× plain DCP at
1080p.

Fog density is FADE (Choi, You & Bovik 2015), ``dehaze.metrics.fog_density``; ``clear`` is
``dehaze.ClearHaze`` (prototyped in this folder, then moved into the library; how it was
developed: docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

import dehaze
from dehaze.datasets import iter_loaded, ohaze_pairs, sots_pairs
from dehaze.io import imread, imwrite
from dehaze.metrics import fog_density, psnr, ssim

Image = NDArray[Any]
Method = Callable[[Image], Image]

DATA = Path(os.environ.get("DEHAZE_DATA", Path(__file__).resolve().parents[2] / "../shared/data"))

METHODS: dict[str, Callable[[], Any]] = {
    "clear": dehaze.ClearHaze,
    "dcp": dehaze.DarkChannelPrior,
    "robust": dehaze.RobustDCP,
    "cap": dehaze.ColorAttenuationPrior,
}
PARTS = ("real", "blocks", "ohaze", "sots", "upscaled", "halfsize", "time")


def run(method: Any, image: Image) -> Image:
    out: Image = method(image).image
    return out


def area(image: Image, shape: tuple[int, int]) -> Image:
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def real_photos(methods: dict[str, Any], fog: Callable[[Image], float], save: Path | None) -> None:
    files = sorted(p for p in (DATA / "real").iterdir() if p.suffix.lower() != ".csv")
    inputs = {p.stem: imread(p) for p in files}
    fog_in = {k: fog(v) for k, v in inputs.items()}
    vals = list(fog_in.values())
    dense = [k for k, v in fog_in.items() if v >= 1.0]
    print(
        f"  input: mean {np.mean(vals):.3f} median {statistics.median(vals):.3f}; "
        f"{len(dense)} photos with input ≥ 1.0"
    )
    outputs: dict[str, dict[str, Image]] = {}
    for name, method in methods.items():
        outs = {k: run(method, v) for k, v in inputs.items()}
        outputs[name] = outs
        f_out = {k: fog(v) for k, v in outs.items()}
        vals = list(f_out.values())
        stay = [f"{k} {f_out[k] / fog_in[k]:.2f}" for k in dense if f_out[k] > 0.6 * fog_in[k]]
        bright = np.mean([float(outs[k].mean()) - float(inputs[k].mean()) for k in inputs])
        print(
            f"  {name:7s} mean {np.mean(vals):.3f} median {statistics.median(vals):.3f}; "
            f"dense photos above 0.6× input: {len(stay)} {stay}; "
            f"mean brightness change {bright:+.1f} grey levels"
        )
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for k, img in inputs.items():
            row = [img] + [outputs[m][k] for m in ("clear", "dcp") if m in outputs]
            imwrite(save / f"real_{k}.png", np.concatenate(row, axis=1), overwrite=True)


def block_energy(image: Image, flat: NDArray[np.bool_]) -> float:
    """JPEG blockiness in flat regions: mean squared step across 8×8 block borders minus
    the mean squared step inside blocks (both directions), on the luma in grey levels."""
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    energies = []
    for axis in (0, 1):
        step = np.diff(luma, axis=axis) ** 2
        keep = flat[:-1, :] & flat[1:, :] if axis == 0 else flat[:, :-1] & flat[:, 1:]
        index = np.arange(step.shape[axis]) % 8 == 7  # step between pixel 7 and 8 of a block
        border = np.take(step, np.flatnonzero(index), axis=axis)
        inner = np.take(step, np.flatnonzero(~index), axis=axis)
        k_border = np.take(keep, np.flatnonzero(index), axis=axis)
        k_inner = np.take(keep, np.flatnonzero(~index), axis=axis)
        energies.append(border[k_border].mean() - inner[k_inner].mean())
    return float(np.mean(energies))


def blocks(methods: dict[str, Any]) -> None:
    for stem in ("city_tv_tower", "twin_towers_city"):
        img = imread(DATA / "real" / f"{stem}.jpg")
        luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
        mean = cv2.blur(luma, (9, 9))
        std = np.sqrt(np.maximum(cv2.blur(luma * luma, (9, 9)) - mean * mean, 0))
        flat = std < 2.0  # flat in the input: within 2 grey levels over 9 × 9
        base = block_energy(img, flat)
        parts = []
        for name, method in methods.items():
            out = run(method, img)
            parts.append(f"{name} {block_energy(out, flat) / base:.1f}×")
        print(
            f"  {stem}: flat {flat.mean():.0%} of pixels, input block-edge energy "
            f"{base:.3f} grey²; output/input: {', '.join(parts)}"
        )


def ohaze(methods: dict[str, Any]) -> None:
    loaded = list(iter_loaded(ohaze_pairs(DATA / "ohaze")))
    base = [(psnr(c, h), ssim(c, h)) for _, h, c in loaded]
    names = [p.name.split("_")[0] for p, _, _ in loaded]
    print(
        f"  input   {np.mean([b[0] for b in base]):.2f} dB / {np.mean([b[1] for b in base]):.3f}"
        f"  per pair {', '.join(f'{n}: {b[0]:.2f}' for n, b in zip(names, base, strict=True))}"
    )
    for name, method in methods.items():
        sc = []
        for _, h, c in loaded:
            out = run(method, h)
            sc.append((psnr(c, out), ssim(c, out)))
        below = [n for n, s, b in zip(names, sc, base, strict=True) if s[0] < b[0]]
        print(
            f"  {name:7s} {np.mean([s[0] for s in sc]):.2f} dB / "
            f"{np.mean([s[1] for s in sc]):.3f}  per pair "
            f"{', '.join(f'{n}: {s[0]:.2f}' for n, s in zip(names, sc, strict=True))}; "
            f"below input: {below}"
        )


def sots_sets() -> dict[str, list[tuple[str, Image, Image]]]:
    return {
        split: [(p.name, h, c) for p, h, c in iter_loaded(sots_pairs(DATA / "sots" / split))]
        for split in ("indoor", "outdoor")
    }


def sots(methods: dict[str, Any], sets: dict[str, list[tuple[str, Image, Image]]]) -> None:
    for split, pairs in sets.items():
        base = [psnr(c, h) for _, h, c in pairs]
        print(
            f"  {split}: input {np.mean(base):.2f} dB / "
            f"{np.mean([ssim(c, h) for _, h, c in pairs]):.3f}"
        )
        for name, method in methods.items():
            p_, s_ = [], []
            for _, h, c in pairs:
                out = run(method, h)
                p_.append(psnr(c, out))
                s_.append(ssim(c, out))
            gain = np.array(p_) - np.array(base)
            worst = int(np.argmin(gain))
            below = int(np.sum(gain < -0.5))
            print(
                f"    {name:7s} {np.mean(p_):.2f} dB / {np.mean(s_):.3f}; worst pair "
                f"{pairs[worst][0]} {gain[worst]:+.2f} dB vs input; "
                f"{below} pairs > 0.5 dB below input"
            )


def upscaled(methods: dict[str, Any], sets: dict[str, list[tuple[str, Image, Image]]]) -> None:
    for split, pairs in sets.items():
        for name, method in methods.items():
            scores = {}
            for factor in (1, 2, 3):
                vals = []
                for _, h, c in pairs:
                    if factor == 1:
                        out = run(method, h)
                    else:
                        big = cv2.resize(
                            h, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC
                        )
                        out = area(run(method, big), h.shape[:2])
                    vals.append(psnr(c, out))
                scores[factor] = float(np.mean(vals))
            print(
                f"  {split:7s} {name:7s} native {scores[1]:.2f}  2× {scores[2]:.2f} "
                f"({scores[2] - scores[1]:+.2f})  3× {scores[3]:.2f} "
                f"({scores[3] - scores[1]:+.2f}) dB"
            )


def halfsize(methods: dict[str, Any]) -> None:
    files = [
        DATA / "ohaze/hazy/27_outdoor_hazy.jpg",
        DATA / "ohaze/hazy/35_outdoor_hazy.jpg",
        DATA / "real/foggy_house.jpg",
    ]
    images = {p.stem: imread(p) for p in files}
    for name, method in methods.items():
        res = []
        for k, img in images.items():
            h, w = img.shape[:2]
            half = area(img, (round(h / 2), round(w / 2)))
            full_out = area(run(method, img), half.shape[:2])
            res.append(f"{k.split('_')[0]} {psnr(full_out, run(method, half)):.2f}")
        print(f"  {name:7s} half vs full: {', '.join(res)} dB")


def timing(methods: dict[str, Any]) -> None:
    img = cv2.resize(
        imread(DATA / "real/foggy_house.jpg"), (1920, 1080), interpolation=cv2.INTER_AREA
    )
    times = {}
    for name, method in methods.items():
        run(method, img)  # JIT warm-up
        t = []
        for _ in range(5):
            start = time.perf_counter()
            run(method, img)
            t.append(time.perf_counter() - start)
        times[name] = min(t)
    ref = times.get("dcp")
    for name, t in times.items():
        ratio = f"  {t / ref:.2f}× DCP" if ref else ""
        print(f"  {name:7s} {t * 1000:.0f} ms at 1920×1080 (best of 5){ratio}")


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument(
        "--save",
        type=Path,
        default=None,
        help="folder for input | clear | dcp side-by-sides of the real photos",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        action="extend",  # --set a=1 --set b=2 keeps both (a plain store kept only the last)
        default=[],
        metavar="NAME=VALUE",
        help="override ClearHaze parameters, e.g. --set snr_margin=2 (repeatable)",
    )
    args = parser.parse_args()
    overrides = {k: _value(v) for k, v in (item.split("=", 1) for item in args.set)}
    methods = {m: METHODS[m](**overrides) if m == "clear" else METHODS[m]() for m in args.methods}
    for name, method in methods.items():
        print(f"{name}: {method!r}")
    fog, fog_name = fog_density, "FADE (dehaze.metrics.fog_density)"
    sets = sots_sets() if {"sots", "upscaled"} & set(args.parts) else {}
    steps: dict[str, tuple[str, Callable[[], None]]] = {
        "real": (
            f"Real photos (41), fog density = {fog_name}",
            lambda: real_photos(methods, fog, args.save),
        ),
        "blocks": (
            "JPEG 8×8 block-edge energy in flat regions, output / input",
            lambda: blocks(methods),
        ),
        "ohaze": ("O-HAZE (pairs 27, 35): PSNR / SSIM", lambda: ohaze(methods)),
        "sots": ("SOTS: PSNR / SSIM", lambda: sots(methods, sets)),
        "upscaled": (
            "SOTS upscaled (bicubic), dehazed, area back: PSNR",
            lambda: upscaled(methods, sets),
        ),
        "halfsize": (
            "Half-size output vs full-size output scaled down: PSNR",
            lambda: halfsize(methods),
        ),
        "time": ("Time at 1080p", lambda: timing(methods)),
    }
    for part in PARTS:
        if part in args.parts:
            title, step = steps[part]
            print(f"\n== {title}")
            start = time.perf_counter()
            step()
            print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
