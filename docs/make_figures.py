"""Generate the user guide's figures and the CLI help text into ``docs/_generated/``.

Run by ``conf.py`` at the start of every build (a few seconds); also runnable alone::

    .venv/bin/python docs/make_figures.py docs/_generated

Everything is computed from the built-in synthetic sample, so the docs build needs no
data. Everything is regenerated on every build, so the figures follow the library.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import dehaze  # noqa: E402
from dehaze._sample import synthetic_hazy  # noqa: E402
from dehaze.io import write_bytes_atomic  # noqa: E402

SCRIPT = Path(__file__).resolve()


def _save(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue(), overwrite=True)


def pipeline_figure(path: Path) -> None:
    hazy, clear, true_t = synthetic_hazy()
    method = dehaze.DarkChannelPrior()
    result = method(hazy)
    assert result.atmospheric_light is not None and result.transmission is not None
    raw_t = dehaze.transmission(hazy, result.atmospheric_light)
    panels = [
        ("1. hazy input I", hazy, {}),
        ("2. dark channel", result.dark_channel, {"cmap": "gray", "vmin": 0, "vmax": 1}),
        ("3. coarse t̃ = 1 − ω dark(I/A)", raw_t, {"cmap": "gray", "vmin": 0, "vmax": 1}),
        (
            "4. t refined (guided filter)",
            result.transmission,
            {"cmap": "gray", "vmin": 0, "vmax": 1},
        ),
        ("5. recovered J", result.image, {}),
        ("6. relative depth −ln t", result.depth, {"cmap": "turbo"}),
        ("true t (synthetic haze)", true_t, {"cmap": "gray", "vmin": 0, "vmax": 1}),
        ("clear original", clear, {}),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(13, 7), constrained_layout=True)
    for ax, (title, image, style) in zip(axes.ravel(), panels, strict=True):
        ax.imshow(image, **style)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    light = ", ".join(f"{v:.2f}" for v in result.atmospheric_light)
    fig.suptitle(f"dark-channel-prior pipeline on the synthetic sample (estimated A = {light})")
    _save(fig, path)


def guided_figure(path: Path) -> None:
    hazy, _, _ = synthetic_hazy()
    light = dehaze.atmospheric_light(hazy)
    raw_t = dehaze.transmission(hazy, light)
    crop = (slice(60, 316), slice(150, 406))
    panels = [("coarse t̃ (blocky halos)", raw_t)]
    for radius, eps, subsample in ((60, 1e-4, 1), (60, 1e-2, 1), (60, 1e-4, 4)):
        refined = dehaze.guided_filter(hazy, raw_t, radius, eps, subsample=subsample)
        label = f"r={radius}, ε={eps:g}" + (f", fast s={subsample}" if subsample > 1 else "")
        panels.append((label, refined))
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), constrained_layout=True)
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.imshow(image[crop], cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    _save(fig, path)


def video_light_figure(path: Path) -> None:
    from dehaze.video import dehaze_frames

    hazy, _, _ = synthetic_hazy()
    small = hazy[::4, ::4]
    frames = []
    for k in range(60):
        frame = np.roll(small, k, axis=1).copy()
        if (k // 3) % 2 == 1:  # a white object flashes in and out every three frames
            frame[4:40, 4:40] = 255
        frames.append(frame)
    method = dehaze.DarkChannelPrior(guided_radius=15)
    fig, ax = plt.subplots(figsize=(8, 3.4), constrained_layout=True)
    for weight, style in ((1.0, ":"), (0.3, "--"), (0.1, "-")):
        out = list(dehaze_frames(frames, method, light_weight=weight))
        red = [float(item.result.atmospheric_light[0]) for item in out]  # type: ignore[index]
        ax.plot(
            red,
            style,
            label=f"light_weight = {weight:g}" + (" (no smoothing)" if weight == 1 else ""),
        )
    ax.set_xlabel("frame")
    ax.set_ylabel("A (red channel)")
    ax.set_title("atmospheric light of a flickering clip, per-frame estimate vs EMA")
    ax.legend(fontsize=8)
    _save(fig, path)


def cli_help(path: Path) -> None:
    os.environ["COLUMNS"] = "88"  # argparse wraps help to the terminal width
    from dehaze import cli

    text = cli.build_parser().format_help()
    demo = io.StringIO()
    with redirect_stdout(demo):
        try:
            cli.main(["demo", "--help"])
        except SystemExit:
            pass
    path.write_text(text + "\n\n" + demo.getvalue(), encoding="utf-8")


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    cli_help(out_dir / "cli_help.txt")  # cheap: always in step with the parser
    for name, make in (
        ("pipeline.png", pipeline_figure),
        ("guided_filter.png", guided_figure),
        ("video_light.png", video_light_figure),
    ):
        make(out_dir / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SCRIPT.parent / "_generated")
