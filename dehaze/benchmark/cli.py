"""``dehaze bench``: parse the command line, run the benchmark, write the result files."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dehaze._data import data_root
from dehaze.benchmark.photos import find_photos, photo_table, run_photos, summarize_photos
from dehaze.benchmark.plot import plot_psnr_vs_time, require_matplotlib
from dehaze.benchmark.report import (
    OUTPUT_FILES,
    markdown_table,
    records_csv,
    summarize,
    summary_markdown,
    write_output,
)
from dehaze.benchmark.runner import DEFAULT_METHODS, find_sets, run_benchmark
from dehaze.datasets import Skipped
from dehaze.registry import (
    DEFAULT_WEIGHTS,
    METHODS,
    MethodContext,
    MethodSpec,
    build_method,
    describe_method,
    parse_method_spec,
)
from dehaze.result import Dehazer

__all__ = ["main"]

#: The data root's folder of hazy photos without ground truth, and its split name.
PHOTO_SPLIT = "real"
#: Per-photo results of the photo sets.
PHOTO_FILE = "per_photo.csv"


class UsageError(ValueError):
    """A bad command line (exit status 2), found after argparse's own checks."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dehaze bench",
        description="Score dehazing methods on SOTS / O-HAZE pairs (PSNR, SSIM, CIEDE2000, "
        "time) and on hazy photos without ground truth (fog density FADE, brightness "
        "change), and write per_image.csv, per_photo.csv, summary.md and psnr_vs_time.png.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data root, SOTS root or one hazy/+gt/ folder (default: $DEHAZE_DATA, "
        "else ../shared/data)",
    )
    parser.add_argument(
        "--split",
        default=None,
        help="comma-separated sets of the data root to run (indoor, outdoor, ohaze, real; "
        "default: all found)",
    )
    parser.add_argument(
        "--photos",
        action="append",
        default=[],
        type=Path,
        metavar="FOLDER",
        help="also score the hazy photos of FOLDER (no ground truth: fog density and "
        "brightness change; repeatable)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="SPEC",
        help="methods as name or name:key=value,... (default: "
        + " ".join(m for m in DEFAULT_METHODS if m not in DEFAULT_WEIGHTS)
        + ", plus aodnet and dehazenet when their weights exist); names: "
        + ", ".join(sorted(METHODS)),
    )
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="weights file for a network method, e.g. aodnet=path/to/file.pth (repeatable)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N pairs of each set")
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("bench-results"), help="output folder"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-strict",
        action="store_true",
        help="skip (and report) unreadable or unpaired files instead of stopping",
    )
    return parser


def _parse_weights(items: Sequence[str]) -> dict[str, Path]:
    weights: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--weights takes NAME=PATH, got {item!r}")
        if name not in DEFAULT_WEIGHTS:
            accepted = ", ".join(sorted(DEFAULT_WEIGHTS))
            raise UsageError(f"--weights: unknown network {name!r}; accepted: {accepted}")
        weights[name] = Path(path)
    return weights


def _describe_spec(spec: MethodSpec, method: Dehazer, context: MethodContext) -> str:
    text = f"`{describe_method(method)}`"
    if spec.name in DEFAULT_WEIGHTS:
        path = spec.options.get("weights", context.weights.get(spec.name))
        text += (
            f" with weights `{path or context.data_root / 'weights' / DEFAULT_WEIGHTS[spec.name]}`"
        )
    return text


def _build_methods(
    specs: Sequence[str] | None, context: MethodContext, note: Callable[[str], None]
) -> tuple[list[tuple[str, Dehazer]], list[tuple[str, str]]]:
    """Build the methods; return them with their descriptions for the summary."""
    methods: list[tuple[str, Dehazer]] = []
    descriptions: list[tuple[str, str]] = []
    optional = specs is None
    for spec in DEFAULT_METHODS if specs is None else specs:
        try:
            parsed = parse_method_spec(spec)
        except ValueError as exc:
            raise UsageError(f"--methods: {exc}") from exc
        try:
            method = build_method(parsed, context)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"--methods {parsed.label}: {exc}") from exc
        except (FileNotFoundError, ImportError) as exc:
            if not (optional and parsed.name in DEFAULT_WEIGHTS):
                raise
            note(f"not running {parsed.name}: {exc}")
            continue
        methods.append((parsed.label, method))
        descriptions.append((parsed.label, _describe_spec(parsed, method, context)))
    labels = [label for label, _ in methods]
    if len(set(labels)) != len(labels):
        raise UsageError(f"--methods lists a method twice: {labels}")
    return methods, descriptions


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (``sys.argv[1:]`` when None).

    Returns
    -------
    int
        0 on success, 1 when the run cannot be done (missing data or weights, existing
        outputs, an unreadable file in strict mode), 2 for usage errors (bad options, an
        unknown method or method option, a method listed twice).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    args = parser.parse_args(args_list)

    def note(message: str) -> None:
        print(f"dehaze bench: {message}", file=sys.stderr)

    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be ≥ 1, got {args.limit}")
    if args.split is not None and not any(s.strip() for s in args.split.split(",")):
        parser.error(f"--split needs at least one set name, got {args.split!r}")
    try:
        output: Path = args.output
        names = [n for n in OUTPUT_FILES if not (args.no_plot and n.endswith(".png"))]
        names.append(PHOTO_FILE)
        existing = [output / n for n in names if (output / n).exists()]
        if existing and not args.overwrite:
            raise FileExistsError(
                f"{existing[0]} exists; pass --overwrite to replace it or choose --output"
            )
        if not args.no_plot:
            require_matplotlib()
        data = args.data if args.data is not None else data_root()
        splits = [s.strip() for s in args.split.split(",") if s.strip()] if args.split else None
        pair_splits = [s for s in splits if s != PHOTO_SPLIT] if splits else None
        sets = []
        if splits is None or pair_splits:
            try:
                sets = find_sets(data, splits=pair_splits, strict=not args.no_strict)
            except ValueError as exc:  # an unknown set: the photos folder is one too
                if (data / PHOTO_SPLIT).is_dir() and "available:" in str(exc):
                    raise ValueError(f"{exc}, {PHOTO_SPLIT}") from None
                raise
        photo_sets = [find_photos(folder) for folder in args.photos]
        if (splits is None or PHOTO_SPLIT in splits) and (data / PHOTO_SPLIT).is_dir():
            photo_sets.insert(0, find_photos(data / PHOTO_SPLIT, PHOTO_SPLIT))
        elif splits is not None and PHOTO_SPLIT in splits:
            raise FileNotFoundError(f"split {PHOTO_SPLIT!r}: no folder {data / PHOTO_SPLIT}")
        # default weights: <data>/weights when --data holds them, else $DEHAZE_DATA/weights
        weights_root = data if (data / "weights").is_dir() else data_root()
        context = MethodContext(data_root=weights_root, weights=_parse_weights(args.weights))
        methods, descriptions = _build_methods(args.methods, context, note)
        skipped: list[Skipped] = [s for pair_set in sets for s in pair_set.skipped]
        for item in skipped:
            note(f"skipped {item}")

        def on_skip(item: Skipped) -> None:
            skipped.append(item)
            note(f"skipped {item}")

        started = time.perf_counter()
        records = run_benchmark(
            sets,
            methods,
            limit=args.limit,
            strict=not args.no_strict,
            progress=False if args.no_progress else None,
            on_skip=on_skip,
        )
        rows = summarize(records)

        def skip_photo(path: Path, reason: str) -> None:
            skipped.append(Skipped(path, reason))
            note(f"skipped {path}: {reason}")

        photo_records = run_photos(
            photo_sets,
            methods,
            limit=args.limit,
            progress=False if args.no_progress else None,
            on_skip=None if not args.no_strict else skip_photo,
        )
        photo_rows = summarize_photos(photo_records)
        command = "dehaze bench " + " ".join(shlex.quote(a) for a in args_list)
        summary = summary_markdown(
            rows,
            descriptions,
            sets,
            skipped,
            command.strip(),
            args.limit,
            photo_rows=photo_rows,
            photo_sets=photo_sets,
        )
        if records:
            write_output(
                output / "per_image.csv", records_csv(records).encode(), overwrite=args.overwrite
            )
        if photo_records:
            write_output(
                output / PHOTO_FILE, records_csv(photo_records).encode(), overwrite=args.overwrite
            )
        write_output(output / "summary.md", summary.encode(), overwrite=args.overwrite)
        if not args.no_plot and rows:
            png = plot_psnr_vs_time(rows)
            write_output(output / "psnr_vs_time.png", png, overwrite=args.overwrite)
    except UsageError as exc:
        note(f"error: {exc}")
        return 2
    except (OSError, ValueError, ImportError) as exc:
        note(f"error: {exc}")
        return 1
    if rows:
        print(markdown_table(rows), end="")
    if photo_rows:
        print(photo_table(photo_rows), end="")
    count = len(records) + len(photo_records)
    print(f"{count} results in {time.perf_counter() - started:.1f} s; wrote {output}/")
    return 0
