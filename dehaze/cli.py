"""The ``dehaze`` command: a thin layer over the public API.

Usage::

    dehaze IN... -o OUTDIR [options]   dehaze images, folders (recursively), globs and videos
    dehaze demo [-o OUTDIR]            dehaze the built-in synthetic sample
    dehaze bench [...]                 run the SOTS benchmark (see ``dehaze bench --help``)

A first argument ``demo`` or ``bench`` selects the subcommand; to process a file literally
named ``demo``, write ``./demo`` or start with ``--`` (``dehaze -- demo -o OUT``: a leading
``--`` only means "no subcommand").

Exit status: 0 when every input was dehazed, 1 when some failed (each failure is reported
and the batch goes on), 2 for usage errors (bad options, an output that would replace an
input, two inputs mapped to the same output, missing network weights).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dehaze import __version__
from dehaze.dcp import DarkChannelPrior
from dehaze.depth import COLORMAPS, colorize_depth
from dehaze.guided import GUIDES
from dehaze.io import imread, imwrite
from dehaze.registry import (
    DEFAULT_METHOD,
    METHODS,
    MethodContext,
    MethodSpec,
    build_method,
    method_options,
    parse_method_spec,
)
from dehaze.result import Dehazer

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "build_parser", "main"]

#: File suffixes taken as images when a folder or glob is expanded.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: File suffixes processed as videos.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")
#: First arguments that select a subcommand instead of naming an input.
SUBCOMMANDS = ("demo", "bench")
#: Guided-filter subsampling used by ``--fast`` (He & Sun 2015 suggest 4).
FAST_SUBSAMPLE = 4

#: Options of the command line that set a method's parameters (each is the dataclass field
#: of the same name; an option the chosen method does not have is a usage error).
METHOD_OPTIONS = (
    "omega",
    "t0",
    "patch_radius",
    "guided_radius",
    "eps",
    "guide",
    "subsample",
    "atmospheric_light",
    "top_fraction",
)


class UsageError(Exception):
    """A problem with the command line itself (exit status 2)."""


# --- methods: the registry's names and options ----------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _build_method(args: argparse.Namespace) -> Dehazer:
    """Build the method of ``--method NAME[:key=value,...]`` with the parameter options."""
    try:
        spec = parse_method_spec(args.method)
    except ValueError as exc:
        raise UsageError(f"--method: {exc}") from exc
    accepted = method_options(spec.name)
    options: dict[str, Any] = dict(spec.options)
    given = [name for name in METHOD_OPTIONS if getattr(args, name) is not None]
    refused = [_flag(name) for name in given if name not in accepted]
    if args.fast and "subsample" not in accepted:
        refused.append("--fast")
    if args.weights is not None and "weights" not in accepted:
        refused.append("--weights")
    if refused:
        verb = "does" if len(refused) == 1 else "do"
        raise UsageError(f"{', '.join(refused)} {verb} not apply to --method {spec.name}")
    options.update({name: getattr(args, name) for name in given})
    if args.fast and "subsample" not in options:
        options["subsample"] = FAST_SUBSAMPLE
    if args.weights is not None:
        weights = Path(args.weights)
        if not weights.is_file():
            raise UsageError(f"--weights: no such file: {weights}")
        options["weights"] = str(weights)
    try:
        return build_method(MethodSpec(spec.label, spec.name, options), MethodContext())
    except FileNotFoundError as exc:
        raise UsageError(
            f"--method {spec.name} needs weights: pass --weights PATH ({exc}; set DEHAZE_DATA "
            "to the folder holding weights/)"
        ) from exc
    except (ValueError, TypeError, ImportError) as exc:
        raise UsageError(f"--method {spec.name}: {exc}") from exc


# --- argument parsing -----------------------------------------------------------------


def _light_value(text: str) -> float | tuple[float, ...]:
    """Parse ``--atmospheric-light``: one number or three comma-separated numbers."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or R,G,B numbers in (0, 1], got {text!r}"
        ) from None
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"expected 1 or 3 comma-separated numbers, got {text!r}")
    return values[0] if len(values) == 1 else values


def _dcp_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(DarkChannelPrior)}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``dehaze IN... -o OUTDIR`` (the files command).

    Returns
    -------
    argparse.ArgumentParser
        The parser; ``demo`` and ``bench`` have their own (see :func:`main`).
    """
    defaults = _dcp_defaults()
    parser = argparse.ArgumentParser(
        prog="dehaze",
        description=(
            "Remove haze from images, folders (recursively), globs and videos. "
            "Other commands: 'dehaze demo' dehazes a built-in sample; 'dehaze bench' runs "
            "the SOTS benchmark. To process a file named 'demo' or 'bench', write ./demo."
        ),
        epilog=(
            "Outputs go to OUTDIR/<path of the input relative to the folder or glob it came "
            "from> with the input's suffix. Existing outputs are never replaced without "
            "--overwrite and an input is never written over. Exit status: 0 all done, "
            "1 some inputs failed, 2 usage error."
        ),
    )
    parser.add_argument("--version", action="version", version=f"dehaze {__version__}")
    parser.add_argument(
        "inputs", nargs="+", metavar="IN", help="image or video files, folders or glob patterns"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        metavar="NAME[:KEY=VALUE,...]",
        help=f"dehazing method, one of {', '.join(sorted(METHODS))}, optionally with "
        f"parameters as in 'dehaze bench' (default: {DEFAULT_METHOD}, the dark channel prior "
        "with sky and bright-region protection; dcp: the plain pipeline)",
    )
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="network weights for --method aodnet/dehazenet (default: the published file in "
        "$DEHAZE_DATA/weights)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--save-transmission", action="store_true", help="also write NAME_transmission.png"
    )
    parser.add_argument(
        "--save-depth", action="store_true", help="also write a colour-mapped NAME_depth.png"
    )
    parser.add_argument(
        "--colormap",
        choices=tuple(COLORMAPS),
        default="turbo",
        help="colour map of --save-depth (default: turbo)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar, only errors and the summary"
    )

    dcp = parser.add_argument_group(
        "method parameters (each applies to the methods that have it: --method dcp takes "
        "all, robust all but --guide and --atmospheric-light, cap --t0, --patch-radius, "
        "--guided-radius, --eps and --guide; defaults: the library's, shown for dcp)"
    )
    dcp.add_argument("--omega", type=float, help=f"haze removed, (0, 1] ({defaults['omega']})")
    dcp.add_argument("--t0", type=float, help=f"transmission lower bound ({defaults['t0']})")
    dcp.add_argument(
        "--patch-radius", type=int, help=f"dark-channel patch radius ({defaults['patch_radius']})"
    )
    dcp.add_argument(
        "--guided-radius", type=int, help=f"guided-filter radius ({defaults['guided_radius']})"
    )
    dcp.add_argument("--eps", type=float, help=f"guided-filter epsilon ({defaults['eps']})")
    dcp.add_argument("--guide", choices=GUIDES, help=f"guided-filter guide ({defaults['guide']})")
    dcp.add_argument(
        "--subsample", type=int, help=f"guided-filter subsampling ({defaults['subsample']})"
    )
    dcp.add_argument(
        "--fast",
        action="store_true",
        help=f"fast guided filter: --subsample {FAST_SUBSAMPLE} unless --subsample is given",
    )
    dcp.add_argument(
        "--atmospheric-light",
        type=_light_value,
        metavar="A",
        help="fixed atmospheric light: one value or R,G,B in (0, 1] (estimated by default)",
    )
    dcp.add_argument(
        "--top-fraction",
        type=float,
        help=f"brightest dark-channel fraction searched for A ({defaults['top_fraction']})",
    )

    video = parser.add_argument_group("video (inputs ending in " + ", ".join(VIDEO_SUFFIXES) + ")")
    video.add_argument(
        "--light-weight",
        type=float,
        default=None,
        help="EMA weight of each frame's atmospheric-light estimate, (0, 1]; 1 = no "
        "smoothing (default 0.1)",
    )
    video.add_argument(
        "--light-every", type=int, default=1, help="re-estimate A every N frames (default 1)"
    )
    video.add_argument(
        "--light-downscale",
        type=int,
        default=1,
        help="estimate A on a copy shrunk by this factor (default 1)",
    )
    video.add_argument(
        "--save-light",
        action="store_true",
        help="also write NAME_light.csv: per-frame estimate and smoothed A",
    )
    return parser


def _build_demo_parser() -> argparse.ArgumentParser:
    demo = argparse.ArgumentParser(
        prog="dehaze demo",
        description="Dehaze a built-in synthetic hazy sample and write hazy, dehazed, "
        "transmission and depth PNGs.",
    )
    demo.add_argument("-o", "--output", default="dehaze-demo", help="output folder")
    demo.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return demo


# --- the demo -------------------------------------------------------------------------


def _demo(argv: Sequence[str]) -> int:
    """Dehaze the built-in synthetic sample and write hazy, dehazed, t and depth PNGs."""
    args = _build_demo_parser().parse_args(argv)
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
    existing = [out_dir / name for name in outputs if (out_dir / name).exists()]
    if existing and not args.overwrite:
        print(f"dehaze demo: {existing[0]} exists; use --overwrite", file=sys.stderr)
        return 1
    print(f"dehazed the {hazy.shape[1]}x{hazy.shape[0]} synthetic sample in {elapsed:.3f} s")
    before = peak_signal_noise_ratio(clear, hazy)
    after = peak_signal_noise_ratio(clear, result.image)
    print(f"PSNR against the clear image: hazy {before:.2f} dB, dehazed {after:.2f} dB")
    for name, image in outputs.items():
        print(f"wrote {imwrite(out_dir / name, image, overwrite=args.overwrite)}")
    return 0


def _bench(argv: Sequence[str]) -> int:
    """Forward to the SOTS benchmark runner ``dehaze.benchmark.main``."""
    import importlib

    # lazily: the runner pulls in the metrics and dataset readers
    benchmark = importlib.import_module("dehaze.benchmark")
    status: int = benchmark.main(list(argv))
    return status


# --- collecting inputs ----------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One input and where its outputs go."""

    source: Path
    output: Path
    is_video: bool


@dataclass
class Collected:
    """The jobs found on the command line and the inputs that could not be used."""

    jobs: list[Job] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _glob_base(pattern: str) -> Path:
    """Return the folder a glob pattern starts from: its longest prefix without magic."""
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def _is_media(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES


def _in_output(path: Path, base: Path, out_dir: Path) -> bool:
    """Whether ``path`` lies in ``out_dir`` when that is a proper subfolder of ``base``."""
    out = out_dir.resolve()
    return out != base.resolve() and path.resolve().is_relative_to(out)


def _collect(inputs: Sequence[str], out_dir: Path) -> Collected:
    """Expand files, folders (recursively, image files) and globs into jobs.

    When the output folder lies below an input folder, the files already in it are left
    out of the expansion, so a second run does not dehaze its own outputs.
    """
    found = Collected()
    pairs: list[tuple[Path, Path]] = []  # (source, path relative to the output folder)
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not _in_output(p, path, out_dir)
            )
            if not files:
                found.problems.append(f"{path}: no image files in this folder")
            pairs.extend((p, p.relative_to(path)) for p in files)
        elif path.is_file():
            pairs.append((path, Path(path.name)))
        elif glob.has_magic(text):
            base = _glob_base(text)
            files = sorted(Path(p) for p in glob.glob(text, recursive=True) if _is_media(Path(p)))
            files = [p for p in files if p.is_file() and not _in_output(p, base, out_dir)]
            if not files:
                found.problems.append(f"{text}: no image or video file matches")
            pairs.extend((p, p.relative_to(base)) for p in files)
        else:
            found.problems.append(f"{path}: no such file or folder")
    seen: dict[Path, Path] = {}
    for source, relative in pairs:
        key = source.resolve()
        if key in seen:
            continue  # the same file named twice (e.g. a file and its folder)
        seen[key] = source
        suffix = source.suffix.lower()
        found.jobs.append(Job(source, out_dir / relative, suffix in VIDEO_SUFFIXES))
    return found


def _sidecars(job: Job, args: argparse.Namespace) -> dict[str, Path]:
    """Extra outputs of a job: transmission and depth PNGs, or the light log of a video."""
    stem = job.output.with_suffix("")
    extra: dict[str, Path] = {}
    if job.is_video:
        if args.save_light:
            extra["light"] = stem.with_name(stem.name + "_light.csv")
        return extra
    if args.save_transmission:
        extra["transmission"] = stem.with_name(stem.name + "_transmission.png")
    if args.save_depth:
        extra["depth"] = stem.with_name(stem.name + "_depth.png")
    return extra


def _check_targets(jobs: Sequence[Job], args: argparse.Namespace) -> None:
    """Refuse outputs that equal an input or collide with another output (usage errors)."""
    inputs = {job.source.resolve(): job.source for job in jobs}
    owners: dict[Path, Path] = {}
    for job in jobs:
        for target in (job.output, *_sidecars(job, args).values()):
            key = target.resolve()
            if key in inputs:
                raise UsageError(
                    f"output {target} would replace the input {inputs[key]}; choose another -o"
                )
            if key in owners:
                raise UsageError(
                    f"inputs {owners[key]} and {job.source} would both be written to {target}"
                )
            owners[key] = job.source


# --- processing -----------------------------------------------------------------------


@dataclass
class Tally:
    """Counts for the summary line."""

    done: int = 0
    failed: int = 0
    megapixels: float = 0.0
    warnings: set[str] = field(default_factory=set)


def _process_image(job: Job, method: Dehazer, args: argparse.Namespace, tally: Tally) -> None:
    extra = _sidecars(job, args)
    for target in (job.output, *extra.values()):
        if target.exists() and not args.overwrite:
            raise FileExistsError(f"{target} exists; use --overwrite to replace it")
    image = imread(job.source)
    result = method(image)
    images: dict[Path, Any] = {job.output: result.image}
    if "transmission" in extra:
        if result.transmission is None:
            tally.warnings.add(f"--method {args.method} gives no transmission; not written")
        else:
            images[extra["transmission"]] = result.transmission.clip(0.0, 1.0)
    if "depth" in extra:
        if result.depth is None:
            tally.warnings.add(f"--method {args.method} gives no depth; not written")
        else:
            images[extra["depth"]] = colorize_depth(result.depth, colormap=args.colormap)
    for target, picture in images.items():
        imwrite(target, picture, overwrite=args.overwrite)
    tally.megapixels += image.shape[0] * image.shape[1] / 1e6


def _process_video(
    job: Job, method: Dehazer, args: argparse.Namespace, tally: Tally, show: bool
) -> None:
    from tqdm import tqdm

    from dehaze.result import Method
    from dehaze.video import DEFAULT_LIGHT_WEIGHT, dehaze_video

    assert isinstance(method, Method)  # every registered method has the two-phase shape
    extra = _sidecars(job, args)
    bar = tqdm(desc=job.source.name, unit="frame", disable=not show, file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        summary = dehaze_video(
            job.source,
            job.output,
            method,
            light_weight=DEFAULT_LIGHT_WEIGHT if args.light_weight is None else args.light_weight,
            light_every=args.light_every,
            light_downscale=args.light_downscale,
            overwrite=args.overwrite,
            light_log=extra.get("light"),
            progress=progress,
        )
    finally:
        bar.close()
    tally.megapixels += summary.frames * summary.width * summary.height / 1e6


def _run_files(argv: Sequence[str]) -> int:
    from tqdm import tqdm

    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    try:
        out_dir = Path(args.output)
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"-o {out_dir} exists and is not a folder")
        collected = _collect(args.inputs, out_dir)
        jobs = collected.jobs
        _check_targets(jobs, args)
        videos = [job for job in jobs if job.is_video]
        if videos and (args.save_transmission or args.save_depth):
            print(
                "dehaze: --save-transmission/--save-depth apply to images, not videos",
                file=sys.stderr,
            )
        if args.light_weight is not None and not 0.0 < args.light_weight <= 1.0:
            raise UsageError(f"--light-weight must be in (0, 1], got {args.light_weight}")
        if args.light_every < 1 or args.light_downscale < 1:
            raise UsageError("--light-every and --light-downscale must be integers ≥ 1")
        method = _build_method(args)
    except UsageError as exc:
        parser.error(str(exc))  # exits with status 2

    tally = Tally(failed=len(collected.problems))
    for problem in collected.problems:
        print(f"dehaze: {problem}", file=sys.stderr)
    show = not args.quiet
    start = time.perf_counter()
    bar = tqdm(jobs, unit="file", disable=len(jobs) <= 1 or not show, file=sys.stderr)
    for job in bar:
        try:
            if job.is_video:
                _process_video(job, method, args, tally, show and len(jobs) == 1)
            else:
                _process_image(job, method, args, tally)
        except KeyboardInterrupt:
            bar.close()
            print("dehaze: interrupted", file=sys.stderr)
            return 130
        except (OSError, ValueError, TypeError, MemoryError) as exc:
            tally.failed += 1
            tqdm.write(f"dehaze: {job.source}: {exc}", file=sys.stderr)
        else:
            tally.done += 1
    bar.close()
    elapsed = time.perf_counter() - start
    for warning in sorted(tally.warnings):
        print(f"dehaze: warning: {warning}", file=sys.stderr)
    rate = tally.megapixels / elapsed if elapsed > 0 else 0.0
    print(
        f"dehaze: {tally.done} done, {tally.failed} failed in {elapsed:.2f} s "
        f"({tally.megapixels:.2f} megapixels, {rate:.2f} megapixels/s) -> {out_dir}",
        file=sys.stderr,
    )
    return 0 if tally.failed == 0 else 1


# --- entry point ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dehaze`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``). A first argument
        ``demo`` or ``bench`` selects that subcommand; anything else is the files command.

    Returns
    -------
    int
        Exit status: 0 success, 1 some inputs failed, 2 usage error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--":
        return _run_files(args[1:])  # `dehaze -- demo -o OUT`: a file named like a command
    if args and args[0] in SUBCOMMANDS:
        return _bench(args[1:]) if args[0] == "bench" else _demo(args[1:])
    return _run_files(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
