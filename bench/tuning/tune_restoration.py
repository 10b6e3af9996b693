"""Grids and ablations of the restoration methods on the shared pairs (the benchmark's protocol).

Each grid is a list of configurations run by the benchmark runner (``dehaze.benchmark``:
the same pair readers, metrics, warm-up and timing as ``dehaze bench``); the table gives mean
PSNR / SSIM / CIEDE2000 per set, the worst per-pair PSNR change against the hazy input and the
median time. How the grids were used to choose RobustDCP's defaults: docs/benchmarks.md.

Usage::

    python bench/tuning/tune_restoration.py [--split indoor,outdoor] [--grid NAME] [--out FILE]

Grids: ``ablation`` (default; the building blocks of RobustDCP switched off one at a time, and
CAP), ``tolerance`` (a fixed K × amount), ``adaptive`` (the sky-adaptive K: low K, sky K, ramp,
amount), ``cap`` (CAP's β).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from dehaze import ColorAttenuationPrior, DarkChannelPrior, RobustDCP
from dehaze._data import data_root
from dehaze.benchmark import find_sets, markdown_table, run_benchmark, summarize
from dehaze.registry import Identity
from dehaze.result import Dehazer


def label(method: Dehazer) -> str:
    """The class name and the parameters that differ from its defaults."""
    if not dataclasses.is_dataclass(method):
        return type(method).__name__
    changed = [
        f"{f.name}={getattr(method, f.name)!r}"
        for f in dataclasses.fields(method)
        if getattr(method, f.name) != f.default
    ]
    return f"{type(method).__name__}({', '.join(changed)})"


def grid_methods(grid: str) -> list[Dehazer]:
    """The configurations of one grid, with the hazy input and plain DCP for reference."""
    methods: list[Dehazer] = [Identity(), DarkChannelPrior()]
    fixed = {"sky_tolerance": None}
    if grid == "ablation":
        methods += [
            RobustDCP(),
            RobustDCP(**fixed),
            RobustDCP(light="quadtree"),
            RobustDCP(guard_radius=0),
            RobustDCP(tolerance=None),
            RobustDCP(amount=0.9),
            ColorAttenuationPrior(),
            ColorAttenuationPrior(tolerance=0.25, amount=0.9),
        ]
    elif grid == "tolerance":
        for k in (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
            for amount in (1.0, 0.9, 0.8):
                methods.append(RobustDCP(tolerance=k, amount=amount, **fixed))
    elif grid == "adaptive":
        for k_low in (0.0, 0.1, 0.2):
            for k_sky in (0.4, 0.5, 0.6):
                for ramp in ((0.4, 0.8), (0.5, 0.8), (0.5, 0.7)):
                    for amount in (0.95, 1.0):
                        methods.append(
                            RobustDCP(
                                tolerance=k_low, sky_tolerance=k_sky, sky_range=ramp, amount=amount
                            )
                        )
    elif grid == "cap":
        methods += [ColorAttenuationPrior(beta=beta) for beta in (0.7, 0.8, 0.9, 1.0, 1.1)]
    else:
        raise SystemExit(f"unknown grid {grid!r}; accepted: ablation, tolerance, adaptive, cap")
    return methods


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="data root (default: $DEHAZE_DATA)")
    parser.add_argument("--split", default="indoor,outdoor", help="indoor,outdoor,ohaze")
    parser.add_argument("--grid", default="ablation", help="ablation, tolerance, adaptive, cap")
    parser.add_argument("--limit", type=int, default=None, help="first N pairs of each set")
    parser.add_argument("--out", type=Path, help="also write the markdown table here (new file)")
    args = parser.parse_args(argv)
    sets = find_sets(args.data or data_root(), splits=args.split.split(","))
    methods = [(label(m), m) for m in grid_methods(args.grid)]
    records = run_benchmark(sets, methods, limit=args.limit, progress=sys.stderr.isatty())
    command = "python bench/tuning/tune_restoration.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = f"Command: `{command.strip()}`\n\n" + markdown_table(summarize(records))
    print(text)
    if args.out is not None:
        if args.out.exists():
            raise SystemExit(f"{args.out} exists; not overwriting")
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
