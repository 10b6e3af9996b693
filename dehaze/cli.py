"""The ``dehaze`` command: a thin layer over the public API."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dehaze import __version__
from dehaze.dcp import DarkChannelPrior
from dehaze.depth import colorize_depth
from dehaze.io import imwrite


def _demo(args: argparse.Namespace) -> int:
    """Dehaze the built-in synthetic sample and write hazy, dehazed, t and depth PNGs."""
    from skimage.metrics import peak_signal_noise_ratio

    from dehaze._sample import synthetic_hazy

    out_dir = Path(args.output)
    hazy, clear, _ = synthetic_hazy()
    method = DarkChannelPrior()
    start = time.perf_counter()
    result = method(hazy)
    elapsed = time.perf_counter() - start
    assert result.transmission is not None and result.depth is not None
    outputs = {
        "demo_hazy.png": hazy,
        "demo_dehazed.png": result.image,
        "demo_transmission.png": result.transmission.clip(0.0, 1.0),
        "demo_depth.png": colorize_depth(result.depth),
    }
    for name in outputs:
        if (out_dir / name).exists() and not args.overwrite:
            print(f"dehaze: {out_dir / name} exists; use --overwrite", file=sys.stderr)
            return 1
    print(f"dehazed the {hazy.shape[1]}x{hazy.shape[0]} synthetic sample in {elapsed:.3f} s")
    before = peak_signal_noise_ratio(clear, hazy)
    after = peak_signal_noise_ratio(clear, result.image)
    print(f"PSNR against the clear image: hazy {before:.2f} dB, dehazed {after:.2f} dB")
    for name, image in outputs.items():
        print(f"wrote {imwrite(out_dir / name, image, overwrite=args.overwrite)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``dehaze`` command."""
    parser = argparse.ArgumentParser(prog="dehaze", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dehaze {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="dehaze a built-in synthetic hazy sample")
    demo.add_argument("-o", "--output", default="dehaze-demo", help="output folder")
    demo.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dehaze`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
