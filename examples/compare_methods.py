"""Comparison grid: the dark channel prior against the network adapters on hazy photos.

    python examples/compare_methods.py OUTDIR [--image PATH] [--max-size N] [--all]

Rows are photos, columns are methods: the hazy input, DCP, DCP with the fast (subsampled)
guided filter, and AOD-Net / DehazeNet with their published weights from
$DEHAZE_DATA/weights. A network whose weights (or adapter) are not available gets an
empty column that says so, and the console says so too. Writes OUTDIR/compare_methods.png.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
from _common import load_images, parser, save

import dehaze
from dehaze._data import data_root

DEFAULT_IMAGES = ("canyon.png", "tiananmen.png", "city_skyline.jpg", "y01_yosemite.png")

NETWORKS = {
    "AOD-Net": ("AODNet", "aodnet_pytorch_MayankSingal_dehazer.pth"),
    "DehazeNet": ("DehazeNet", "dehazenet_matlab_caibolun_dehaze.mat"),
}


def methods() -> tuple[dict[str, Callable[[Any], dehaze.DehazeResult]], dict[str, str]]:
    """Return the available methods and, for the missing ones, why they are missing."""
    available: dict[str, Callable[[Any], dehaze.DehazeResult]] = {
        "DCP": dehaze.DarkChannelPrior(),
        "DCP fast (subsample 4)": dehaze.DarkChannelPrior(subsample=4),
    }
    missing: dict[str, str] = {}
    for label, (class_name, file_name) in NETWORKS.items():
        weights = data_root() / "weights" / file_name
        if not weights.is_file():
            missing[label] = f"weights not found:\n{weights}"
            continue
        try:
            import dehaze.models as models

            available[label] = getattr(models, class_name).from_file(weights)
        except (ImportError, AttributeError, OSError, ValueError) as exc:
            missing[label] = f"adapter not available:\n{exc}"
    return available, missing


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0], DEFAULT_IMAGES).parse_args(argv)
    images = load_images(args, DEFAULT_IMAGES)
    available, missing = methods()
    for label, reason in missing.items():
        print(f"{label} left out: {reason.replace(chr(10), ' ')}")
    columns = ["hazy", *available, *missing]
    fig, axes = plt.subplots(
        len(images),
        len(columns),
        figsize=(3.2 * len(columns), 2.6 * len(images) + 0.4),
        squeeze=False,
        constrained_layout=True,
    )
    for row, (name, hazy) in enumerate(images):
        axes[row, 0].imshow(hazy)
        axes[row, 0].set_title(name if row else f"hazy\n{name}", fontsize=9)
        for col, (label, method) in enumerate(available.items(), start=1):
            method(hazy)  # warm up (JIT compilation, caches) so the time is the method's
            start = time.perf_counter()
            result = method(hazy)
            ms = (time.perf_counter() - start) * 1000
            axes[row, col].imshow(result.image)
            title = f"{ms:.0f} ms" if row else f"{label}\n{ms:.0f} ms"
            axes[row, col].set_title(title, fontsize=9)
        for col, (label, reason) in enumerate(missing.items(), start=1 + len(available)):
            axes[row, col].text(
                0.5, 0.5, f"{label}\n{reason}", ha="center", va="center", wrap=True, fontsize=7
            )
    for ax in axes.ravel():
        ax.set_axis_off()
    save(fig, args.outdir, "compare_methods.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
