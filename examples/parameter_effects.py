"""The effect of omega (haze removed) and of the dark-channel patch size.

    python examples/parameter_effects.py OUTDIR [--image PATH] [--max-size N]

For one photo (the first given), writes
- OUTDIR/parameter_effects_omega.png: dehazed image and transmission for several omega
  (omega < 1 keeps some haze so distant objects still look distant);
- OUTDIR/parameter_effects_patch.png: dark channel and dehazed image for several patch radii
  (small patches follow edges but break the prior on bright objects; large patches give
  halos that the guided filter must remove).
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
from _common import load_images, parser, save

import dehaze

DEFAULT_IMAGES = ("tiananmen.png",)
OMEGAS = (0.5, 0.75, 0.9, 0.95, 1.0)
PATCH_RADII = (0, 2, 7, 15)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0], DEFAULT_IMAGES).parse_args(argv)
    name, hazy = load_images(args, DEFAULT_IMAGES)[0]

    fig, axes = plt.subplots(
        2, len(OMEGAS) + 1, figsize=(3 * (len(OMEGAS) + 1), 5.4), constrained_layout=True
    )
    axes[0, 0].imshow(hazy)
    axes[0, 0].set_title(f"hazy: {name}")
    axes[1, 0].set_visible(False)
    for col, omega in enumerate(OMEGAS, start=1):
        result = dehaze.DarkChannelPrior(omega=omega)(hazy)
        axes[0, col].imshow(result.image)
        axes[0, col].set_title(f"omega = {omega}")
        axes[1, col].imshow(result.transmission, cmap="gray", vmin=0, vmax=1)
        axes[1, col].set_title("transmission")
    for ax in axes.ravel():
        ax.set_axis_off()
    save(fig, args.outdir, "parameter_effects_omega.png")

    fig, axes = plt.subplots(
        2, len(PATCH_RADII) + 1, figsize=(3 * (len(PATCH_RADII) + 1), 5.4), constrained_layout=True
    )
    axes[0, 0].imshow(hazy)
    axes[0, 0].set_title(f"hazy: {name}")
    axes[1, 0].set_visible(False)
    for col, radius in enumerate(PATCH_RADII, start=1):
        result = dehaze.DarkChannelPrior(patch_radius=radius)(hazy)
        side = 2 * radius + 1
        axes[0, col].imshow(result.dark_channel, cmap="gray", vmin=0, vmax=1)
        axes[0, col].set_title(f"dark channel, {side}×{side} patch")
        axes[1, col].imshow(result.image)
        axes[1, col].set_title(f"dehazed, patch radius {radius}")
    for ax in axes.ravel():
        ax.set_axis_off()
    save(fig, args.outdir, "parameter_effects_patch.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
