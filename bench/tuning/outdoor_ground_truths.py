"""How hazy SOTS-outdoor's ground truths are, against issue 11's real-photo rule.

Usage (from the project root; data from ``$DEHAZE_DATA``, default ../shared/data)::

    .venv/bin/python bench/tuning/outdoor_ground_truths.py

For each of the 12 shared SOTS-outdoor pairs it prints the fog density (FADE,
:func:`dehaze.metrics.fog_density`) of the hazy image, of its "clear" ground truth and of the
default method's output; the ground truth's fog density as a fraction of the hazy image's;
and the PSNR against the ground truth of the hazy input, of the default's output and of the
default's output with the true airlight (the synthetic A is in each file name, the same in
every channel). Then the real photos' fog density, for the same comparison.

Issue 11 asks for real photos with input fog density ≥ 1.0 to be brought to ≤ 0.6× it, and
for no SOTS-outdoor pair more than 0.5 dB below its hazy input. A pair whose ground truth
keeps more than 0.6× of the hazy image's fog density is a pair on which reproducing the
ground truth exactly would fail the first rule, were the image a real photo; nothing in a
hazy image tells whether its haze is synthetic or real (the held-out set has both).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

import dehaze
from dehaze.datasets import iter_loaded, sots_pairs
from dehaze.io import imread
from dehaze.metrics import fog_density, psnr

DATA = Path(os.environ.get("DEHAZE_DATA", Path(__file__).resolve().parents[2] / "../shared/data"))


def main() -> None:
    method = dehaze.ClearHaze()
    print(
        "| pair | FADE hazy | FADE ground truth | GT / hazy | FADE output "
        "| PSNR input | output | output, true A |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for pair, hazy, clear in iter_loaded(sots_pairs(DATA / "sots" / "outdoor")):
        true_a = float(pair.name.split("_")[1])
        out = method(hazy).image
        scene = dataclasses.replace(method.estimate(hazy), atmospheric_light=np.full(3, true_a))
        out_true_a = method.apply(hazy, scene).image
        f_hazy, f_gt, f_out = fog_density(hazy), fog_density(clear), fog_density(out)
        ratios.append(f_gt / f_hazy)
        flag = " **> 0.6**" if f_gt / f_hazy > 0.6 and f_hazy >= 1.0 else ""
        print(
            f"| {pair.name} | {f_hazy:.2f} | {f_gt:.2f} | {f_gt / f_hazy:.2f}{flag} | {f_out:.2f} "
            f"| {psnr(clear, hazy):.2f} | {psnr(clear, out):.2f} | {psnr(clear, out_true_a):.2f} |"
        )
    print(
        f"\nground truth / hazy fog density: mean {np.mean(ratios):.2f}, "
        f"range {min(ratios):.2f}–{max(ratios):.2f}"
    )

    photos = sorted(p for p in (DATA / "real").iterdir() if p.suffix.lower() != ".csv")
    inputs, outputs = [], []
    for path in photos:
        image = imread(path)
        inputs.append(fog_density(image))
        outputs.append(fog_density(method(image).image))
    fin, fout = np.array(inputs), np.array(outputs)
    print(
        f"real photos ({len(photos)}): input mean {fin.mean():.3f}, default's output mean "
        f"{fout.mean():.3f} ({fout.mean() / fin.mean():.2f}× the input's mean; the mean target "
        f"0.65 is {0.65 / fin.mean():.2f}×); per photo output / input: median "
        f"{np.median(fout / fin):.2f}"
    )


if __name__ == "__main__":
    main()
