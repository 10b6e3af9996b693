"""Side-by-side figure: hazy photo, dehazed result, transmission and depth heat map.

    python examples/side_by_side.py OUTDIR [--image PATH] [--max-size N]

Writes OUTDIR/side_by_side_<photo>.png for each photo (by default a few classic hazy photos
from $DEHAZE_DATA/real, else the built-in synthetic sample).
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
from _common import load_images, parser, save

import dehaze

DEFAULT_IMAGES = ("canyon.png", "tiananmen.png", "forest_avenue.jpg")


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0], DEFAULT_IMAGES).parse_args(argv)
    method = dehaze.DarkChannelPrior()
    for name, hazy in load_images(args, DEFAULT_IMAGES):
        result = method(hazy)
        assert result.transmission is not None and result.depth is not None
        light = result.atmospheric_light
        fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), constrained_layout=True)
        axes[0].imshow(hazy)
        axes[0].set_title(f"hazy: {name}")
        axes[1].imshow(result.image)
        axes[1].set_title("dehazed (dark channel prior)")
        shown = axes[2].imshow(result.transmission, cmap="gray", vmin=0, vmax=1)
        axes[2].set_title("transmission t")
        fig.colorbar(shown, ax=axes[2], shrink=0.8)
        shown = axes[3].imshow(result.depth, cmap="turbo")
        axes[3].set_title("relative depth −ln t")
        fig.colorbar(shown, ax=axes[3], shrink=0.8)
        for ax in axes:
            ax.set_axis_off()
        if light is not None:
            values = ", ".join(f"{v:.2f}" for v in light)
            fig.suptitle(f"atmospheric light A = ({values})")
        save(fig, args.outdir, f"side_by_side_{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
