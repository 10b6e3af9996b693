"""The ``dehaze`` command: a thin layer over the public API.

Usage::

    dehaze IN... -o OUTDIR [options]   dehaze images, folders (recursively), globs and videos
    dehaze demo [-o OUTDIR]            dehaze the built-in synthetic sample
    dehaze bench [...]                 run the SOTS benchmark (see ``dehaze bench --help``)

A first argument ``demo`` or ``bench`` selects the subcommand; to process a file literally
named ``demo``, write ``./demo`` or start with ``--`` (``dehaze -- demo -o OUT``: a leading
``--`` only means "no subcommand").

Exit status: 0 when every input was dehazed or skipped, 1 when some failed (each failure is
reported and the batch goes on), 2 for usage errors (bad options, an output that would
replace an input, two inputs mapped to the same output, missing network weights). Bad input
never ends in a traceback: every error of a file is reported as one line and counted.

An input whose output exists is skipped (reported, exit status 0); ``--skip-existing`` skips
quietly and, for images, writes only the missing side outputs, so an interrupted batch is
resumed by running the same command again. Temporary files that an interrupted run left in
an output folder (``.NAME.XXXXXXXX.part*``, older than the current run) are removed.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import fnmatch
import gc
import glob
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from dehaze import __version__
from dehaze.dcp import DarkChannelPrior
from dehaze.depth import COLORMAPS, colorize_depth
from dehaze.guided import GUIDES
from dehaze.io import (
    ALPHA_SUFFIXES,
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    header_pixels,
    imread,
    imwrite,
    merge_alpha,
    remove_stale_parts,
    split_alpha,
)
from dehaze.largeimage import MAX_EXPANSION
from dehaze.registry import (
    DEFAULT_METHOD,
    METHODS,
    MethodContext,
    MethodSpec,
    build_method,
    method_options,
    parse_method_spec,
)
from dehaze.result import Dehazer, Method

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "build_parser", "main"]

#: First arguments that select a subcommand instead of naming an input.
SUBCOMMANDS = ("demo", "bench")
#: Guided-filter subsampling used by ``--fast`` (He & Sun 2015 suggest 4).
FAST_SUBSAMPLE = 4
#: Working size used by ``--fast`` for methods that work at a fixed resolution (clear)...
FAST_WORKING_SIZE = 200
#: ... with the radii still given for the default working size (``radii_size``): the
#: default's windows, sampled half as finely, not windows twice as large.
FAST_RADII_SIZE = 400
#: TIFF inputs larger than this (width × height) are dehazed from file to file one tile at
#: a time (:func:`dehaze.largeimage.dehaze_file_tiled`), as all TIFF inputs are with
#: ``--tile``: 100 megapixels take 1–2 GB in memory at once, a tiled pass about 0.2 GB.
TILED_PIXELS = 100_000_000

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


def method_spec(args: argparse.Namespace) -> MethodSpec:
    """Return the spec of ``--method NAME[:key=value,...]`` with the parameter options merged in.

    The spec (with :class:`MethodContext`) is what :func:`build_method` builds from; it is
    small and picklable, so ``--scheduler`` sends it to the workers, which build the method
    themselves.
    """
    try:
        spec = parse_method_spec(args.method)
    except ValueError as exc:
        raise UsageError(f"--method: {exc}") from exc
    accepted = method_options(spec.name)
    options: dict[str, Any] = dict(spec.options)
    given = [name for name in METHOD_OPTIONS if getattr(args, name) is not None]
    refused = [_flag(name) for name in given if name not in accepted]
    fast = "subsample" if "subsample" in accepted else "working_size"
    if args.fast and fast not in accepted:
        refused.append("--fast")
    if args.weights is not None and "weights" not in accepted:
        refused.append("--weights")
    if refused:
        verb = "does" if len(refused) == 1 else "do"
        listed = refused[0] if len(refused) == 1 else f"{', '.join(refused[:-1])} and {refused[-1]}"
        raise UsageError(f"{listed} {verb} not apply to --method {spec.name}")
    options.update({name: getattr(args, name) for name in given})
    if args.fast and fast not in options:
        options[fast] = FAST_SUBSAMPLE if fast == "subsample" else FAST_WORKING_SIZE
        if fast == "working_size" and "radii_size" in accepted:
            options.setdefault("radii_size", FAST_RADII_SIZE)
    if args.weights is not None:
        weights = Path(args.weights)
        if not weights.is_file():
            raise UsageError(f"--weights: no such file: {weights}")
        options["weights"] = str(weights)
    return MethodSpec(spec.label, spec.name, options)


def _build_method(args: argparse.Namespace) -> Dehazer:
    """Build the method of ``--method NAME[:key=value,...]`` with the parameter options."""
    spec = method_spec(args)
    try:
        return build_method(spec, MethodContext())
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
            "--overwrite (the input is skipped) and an input is never written over. Alpha "
            "is carried through unchanged; EXIF orientation is applied; videos are written "
            "without audio. Exit status: 0 all done or skipped, 1 some inputs failed, "
            "2 usage error."
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
        f"parameters as in 'dehaze bench' (default: {DEFAULT_METHOD}, ClearHaze: clears dense "
        "haze, leaves sky alone, the same result at any resolution; dcp: the plain dark "
        "channel prior)",
    )
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="network weights for --method aodnet/dehazenet (default: the published file in "
        "$DEHAZE_DATA/weights)",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="resume: skip inputs whose outputs exist without reporting each, and write only "
        "the missing side outputs of an image",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="refuse images (and video frames) larger than N pixels (width × height), checked "
        f"before decoding (default {DEFAULT_MAX_PIXELS:_}: 200 megapixels, except for TIFF "
        "files dehazed tile by tile, which are not limited unless N is given, but are "
        f"refused when they declare more than {MAX_EXPANSION} times their file size in "
        "pixels: sparse files or decompression bombs; giving N processes them within N)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="dehaze in N×N tiles (a multiple of 16), with the same result: TIFF inputs from "
        "file to file holding one tile at a time (done anyway for TIFFs above "
        f"{TILED_PIXELS // 1_000_000} megapixels, with the default tile of "
        "1024), other images in memory tile by tile",
    )
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
        "--scheduler",
        metavar="ADDRESS",
        help="run the batch on a Dask cluster, one task per file: the address of a running "
        "scheduler (tcp://host:8786; the workers must see the same paths), or local:N for N "
        "worker processes on this machine (local: one per CPU). Needs pip install "
        "'dehaze-dcp[dask]'",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar (shown only on a terminal anyway), only errors and the summary",
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
        help=f"faster: the fast guided filter (--subsample {FAST_SUBSAMPLE}) for dcp and robust, "
        f"a {FAST_WORKING_SIZE} px working size for clear (the same windows, sampled more "
        "coarsely)",
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
    demo.add_argument(
        "--overwrite",
        action="store_true",
        help="accepted for compatibility: the demo always replaces its own demo_*.png files",
    )
    return demo


# --- the demo -------------------------------------------------------------------------


#: The files ``dehaze demo`` writes (and replaces on a second run).
DEMO_FILES = ("demo_hazy.png", "demo_dehazed.png", "demo_transmission.png", "demo_depth.png")


def _demo(argv: Sequence[str]) -> int:
    """Dehaze the built-in synthetic sample and write hazy, dehazed, t and depth PNGs.

    The outputs ``demo_hazy.png``, ``demo_dehazed.png``, ``demo_transmission.png`` and
    ``demo_depth.png`` are replaced when they exist, so the demo can be run again.
    """
    parser = _build_demo_parser()
    args = parser.parse_args(argv)
    from skimage.metrics import peak_signal_noise_ratio

    from dehaze._sample import synthetic_hazy

    out_dir = Path(args.output)
    # checked before the work, as the main command does: a clear line, no traceback
    if out_dir.exists() and not out_dir.is_dir():
        parser.error(f"-o {out_dir} exists and is not a folder")
    taken = [out_dir / name for name in DEMO_FILES if (out_dir / name).is_dir()]
    if taken:
        parser.error(f"{taken[0]} is a folder; the demo writes a file there")
    hazy, clear, _ = synthetic_hazy()
    method = build_method(DEFAULT_METHOD, MethodContext())  # the command's default method
    start = time.perf_counter()
    with _announce_compilation():  # the README's first command: say why it takes seconds
        result = method(hazy)
    elapsed = time.perf_counter() - start
    assert result.transmission is not None and result.depth is not None
    outputs = dict(
        zip(
            DEMO_FILES,
            (hazy, result.image, result.transmission.clip(0.0, 1.0), colorize_depth(result.depth)),
            strict=True,
        )
    )
    # the four demo_*.png files are this command's own: a second run replaces them
    print(
        f"dehazed the {hazy.shape[1]}x{hazy.shape[0]} synthetic sample with --method "
        f"{DEFAULT_METHOD} in {elapsed:.3f} s"
    )
    before = peak_signal_noise_ratio(clear, hazy)
    after = peak_signal_noise_ratio(clear, result.image)
    print(f"PSNR against the clear image: hazy {before:.2f} dB, dehazed {after:.2f} dB")
    try:
        for name, image in outputs.items():
            print(f"wrote {imwrite(out_dir / name, image, overwrite=True)}")
    except OSError as exc:  # a folder that cannot be made or written: one line
        print(f"dehaze demo: error: {describe_error(exc)}", file=sys.stderr)
        return 1
    return 0


def _bench(argv: Sequence[str]) -> int:
    """Forward to the SOTS benchmark runner ``dehaze.benchmark.main``."""
    import importlib

    # lazily: the runner pulls in the metrics and dataset readers
    try:
        benchmark = importlib.import_module("dehaze.benchmark")
        status: int = benchmark.main(list(argv))
    except KeyboardInterrupt:
        print("dehaze bench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # no traceback for bad data or weights: one line, status 1
        print(f"dehaze bench: error: {describe_error(exc)}", file=sys.stderr)
        return 1
    return status


def describe_error(exc: BaseException) -> str:
    """One line for an error: its message, with the type where the message is not enough."""
    text = str(exc).strip() or "no details"
    if isinstance(exc, MemoryError) or "Insufficient memory" in text:  # OpenCV's own
        return "not enough memory; try a smaller input or fewer threads"
    if isinstance(exc, (OSError, ValueError, TypeError)):
        return text
    return f"{type(exc).__name__}: {text}"


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


def _split_glob(pattern: str) -> tuple[Path, list[str]]:
    """Split a glob pattern into its start folder and the segments after it.

    The start folder is the pattern's longest prefix without wildcards.
    """
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        base.append(part)
    return (Path(*base) if base else Path(".")), list(parts[len(base) :])


def _subfolders(folder: Path) -> list[Path]:
    """Real (not symlinked) subfolders, unreadable folders giving none."""
    try:
        with os.scandir(folder) as entries:
            return [
                folder / e.name
                for e in entries
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
            ]
    except OSError:
        return []


def _match(folder: Path, segments: Sequence[str]) -> Iterator[Path]:
    """Paths below ``folder`` matching glob ``segments`` (``**``: any depth).

    Unlike :func:`glob.glob`, ``**`` never descends into a symlinked folder, so a symlink
    loop cannot make the expansion endless; a symlinked folder named by a plain or
    single-star segment is entered, which is bounded by the pattern's depth. As in glob,
    wildcards do not match names starting with a dot.
    """
    if not segments:
        yield folder
        return
    head, rest = segments[0], segments[1:]
    if head == "**":
        yield from _match(folder, rest)
        for sub in _subfolders(folder):
            yield from _match(sub, segments)
    elif glob.has_magic(head):
        try:
            with os.scandir(folder) as entries:
                names = sorted(e.name for e in entries)
        except OSError:
            return
        for name in names:
            if name.startswith(".") and not head.startswith("."):
                continue
            if fnmatch.fnmatchcase(name, head):
                yield from _match(folder / name, rest)
    else:
        yield from _match(folder / head, rest)


def _is_media(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES


def _in_output(path: Path, base: Path, out_dir: Path) -> bool:
    """Whether ``path`` lies in ``out_dir`` when that is a proper subfolder of ``base``."""
    out = out_dir.resolve()
    return out != base.resolve() and path.resolve().is_relative_to(out)


def _folder_images(folder: Path, out_dir: Path) -> list[Path]:
    """Image files below ``folder``, not following symlinked folders (no loop can hang)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        top = Path(root)
        found.extend(
            top / name
            for name in files
            if Path(name).suffix.lower() in IMAGE_SUFFIXES and (top / name).is_file()
        )
    return sorted(p for p in found if not _in_output(p, folder, out_dir))


def collect_jobs(inputs: Sequence[str], out_dir: Path) -> Collected:
    """Expand files, folders (recursively, image files) and globs into jobs.

    When the output folder lies below an input folder, the files already in it are left
    out of the expansion, so a second run does not dehaze its own outputs. Neither folders
    nor ``**`` follow symlinked folders. A glob with ``..`` after a wildcard is refused:
    its matches could map to outputs outside the output folder.
    """
    found = Collected()
    pairs: list[tuple[Path, Path]] = []  # (source, path relative to the output folder)
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files = _folder_images(path, out_dir)
            if not files:
                found.problems.append(f"{path}: no image files in this folder")
            pairs.extend((p, p.relative_to(path)) for p in files)
        elif path.is_file():
            pairs.append((path, Path(path.name)))
        elif glob.has_magic(text):
            base, segments = _split_glob(text)
            if ".." in segments:
                found.problems.append(
                    f"{text}: '..' after a wildcard is not supported (outputs could land "
                    "outside the output folder); start the pattern from the folder instead"
                )
                continue
            matches = {p for p in _match(base, segments) if _is_media(p) and p.is_file()}
            files = sorted(p for p in matches if not _in_output(p, base, out_dir))
            if not files:
                found.problems.append(f"{text}: no image or video file matches")
            pairs.extend((p, p.relative_to(base)) for p in files)
        else:
            found.problems.append(f"{path}: no such file or folder")
    seen: set[tuple[Path, Path]] = set()
    out_root = out_dir.resolve()
    for source, relative in pairs:
        # the same file named twice for the same output (a file and its folder) is one
        # job; under two names (a symbolic link beside its target) it gets both outputs
        key = (source.resolve(), relative)
        if key in seen:
            continue
        seen.add(key)
        target = out_dir / relative
        if relative.is_absolute() or not (out_root / relative).resolve().is_relative_to(out_root):
            found.problems.append(f"{source}: its output {target} would be outside {out_dir}")
            continue
        suffix = source.suffix.lower()
        found.jobs.append(Job(source, target, suffix in VIDEO_SUFFIXES))
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


def check_targets(jobs: Sequence[Job], args: argparse.Namespace) -> None:
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


#: Mean change (grey levels of 255) below which the command says an image was left nearly
#: as it was: about 1 % of the range, less than a JPEG re-encoding changes.
LITTLE_CHANGE = 2.0


#: Samples :func:`mean_change` converts to float at once (4 MB of float32).
MEAN_CHANGE_BAND = 1 << 20


def mean_change(before: Any, after: Any) -> float:
    """Mean absolute difference of two same-shape images, in grey levels of 255.

    Integer images are compared on their own scale mapped to 0–255, float images (in
    [0, 1]) times 255.
    """
    a = np.asarray(before)
    total = _total_change(a, after)
    return total / a.size * _grey_levels(a.dtype) if a.size else 0.0


def _grey_levels(dtype: Any) -> float:
    """Grey levels of 255 per unit of an image of ``dtype`` (integers: their own range)."""
    kind = np.dtype(dtype)
    return 255.0 / float(np.iinfo(kind).max) if kind.kind == "u" else 255.0


def _total_change(before: Any, after: Any) -> float:
    """Sum of the absolute differences of two same-shape images, in their own units.

    For integer images the sum is exact (differences are whole numbers, summed in
    float64), so the sums of the tiles of an image add up to the whole image's.
    """
    a, b = np.asarray(before), np.asarray(after)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    # a band of rows at a time: float copies of a 50 MP photo would be 3 × 600 MB
    per_row = max(1, a.size // max(1, a.shape[0]))
    rows = max(1, MEAN_CHANGE_BAND // per_row)
    total = 0.0
    for i in range(0, a.shape[0], rows):
        diff = np.abs(a[i : i + rows].astype(np.float32) - b[i : i + rows].astype(np.float32))
        total += float(diff.sum(dtype=np.float64))
    return total


class _ChangeSum:
    """The mean change of an image summed over its tiles, from several threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0.0
        self.samples = 0
        self.levels = 255.0

    def __call__(self, before: Any, after: Any) -> None:
        total = _total_change(before, after)  # outside the lock: the tiles' threads at once
        with self._lock:
            self.total += total
            self.samples += np.asarray(before).size
            self.levels = _grey_levels(np.asarray(before).dtype)

    def mean(self) -> float:
        """Return the mean change in grey levels of 255, as :func:`mean_change` gives it."""
        return self.total / self.samples * self.levels if self.samples else 0.0


def _note_little_change(job: Job, change: float, tally: Tally) -> None:
    """Say when an image changed by less than :data:`LITTLE_CHANGE` grey levels."""
    if change < LITTLE_CHANGE:
        tally.notes.append(
            f"{job.source}: little haze found: the image changed by {change:.1f} grey levels "
            "on average (clear already, or mostly sky)"
        )


# --- processing -----------------------------------------------------------------------


@dataclass
class Tally:
    """Counts for the summary line."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    megapixels: float = 0.0
    video_frames: int = 0
    video_seconds: float = 0.0
    warnings: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        """Add the counts of ``other`` (one file's, counted apart) to these."""
        self.done += other.done
        self.skipped += other.skipped
        self.failed += other.failed
        self.megapixels += other.megapixels
        self.video_frames += other.video_frames
        self.video_seconds += other.video_seconds
        self.warnings |= other.warnings
        self.notes.extend(other.notes)


def _targets(job: Job, args: argparse.Namespace) -> list[Path]:
    """All files a job writes: its output and its side outputs."""
    return [job.output, *_sidecars(job, args).values()]


def _process_image(
    job: Job,
    method: Dehazer,
    args: argparse.Namespace,
    tally: Tally,
    wanted: set[Path],
    show: bool = False,
) -> None:
    """Dehaze one image and write the targets in ``wanted`` (all of them unless resuming).

    An alpha channel is split off, the colour (or gray) part is dehazed and the alpha is
    put back unchanged; an output format that cannot store alpha is an error for the file.
    Large TIFF files (and all TIFF files with ``--tile``) go from file to file tile by tile
    (:func:`_process_tiled`).
    """
    extra = _sidecars(job, args)
    if _streamed(job, args):
        _process_tiled(job, method, args, tally, wanted, show)
        return
    limit = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    try:
        image = imread(job.source, max_pixels=limit)
    except ValueError as exc:
        if "more than the limit" not in str(exc):
            raise
        raise ValueError(
            f"{exc}, or convert it to TIFF: TIFF files are dehazed tile by tile without being "
            "loaded whole"
        ) from None
    color, alpha = split_alpha(image)
    suffix = job.output.suffix.lower()
    if alpha is not None and job.output in wanted and suffix not in ALPHA_SUFFIXES:
        raise ValueError(
            f"it has an alpha channel, which {suffix} cannot store; convert it to "
            f"{', '.join(ALPHA_SUFFIXES)} first (the alpha channel is never dropped silently)"
        )
    outputs = {name for name in ("transmission", "depth") if name in extra}
    # only the planes this job saves are computed (every registered method takes outputs=)
    if args.tile is not None and isinstance(method, Method):
        from dehaze.tiles import dehaze_tiled

        result = dehaze_tiled(method, color, tile=args.tile, outputs=outputs)
    elif isinstance(method, Method):
        result = method(color, outputs=outputs)
    else:
        result = method(color)
    _note_little_change(job, mean_change(color, result.image), tally)
    images: dict[Path, Any] = {job.output: merge_alpha(result.image, alpha)}
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
        if target in wanted:
            imwrite(target, picture, overwrite=args.overwrite)
    tally.megapixels += image.shape[0] * image.shape[1] / 1e6


def _streamed(job: Job, args: argparse.Namespace) -> bool:
    """Whether an image job takes the tiled file-to-file path (large TIFF, or ``--tile``).

    A large TIFF the tiled reader cannot decode (LZW or JPEG compression, say) that is
    within the pixel limit is still read whole, as before the tiled path existed.
    """
    from dehaze.largeimage import TIFF_SUFFIXES, TiffSource, tiff_pixels

    if job.source.suffix.lower() not in TIFF_SUFFIXES:
        return False
    if args.tile is not None:
        return True
    pixels = tiff_pixels(job.source)
    if pixels is None or pixels <= TILED_PIXELS:
        return False
    limit = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    try:
        TiffSource(job.source).close()  # the header only
    except (OSError, ValueError):
        return pixels > limit  # too large to read whole: the tiled path reports why
    return True


def _file_bar(job: Job, unit: str, show: bool) -> Any:
    """Return a progress bar over one file's tiles or frames, cleared when it is done.

    disable=None: a bar only when stderr is a terminal, never in logs.
    """
    from tqdm import tqdm

    disable = None if show else True
    return tqdm(desc=job.source.name, unit=unit, disable=disable, file=sys.stderr, leave=False)


def _process_tiled(
    job: Job, method: Dehazer, args: argparse.Namespace, tally: Tally, wanted: set[Path], show: bool
) -> None:
    """Dehaze a TIFF from file to file one tile at a time, with a progress bar over tiles.

    Without ``--max-pixels``, a file declaring far more pixels than its size could hold
    (sparse tiles, a decompression bomb: :func:`dehaze.largeimage.check_expansion`) is
    refused: no input may make the command write or allocate far beyond its own size.
    ``--max-pixels`` is the opt-in: a file within it is processed whatever its ratio.
    """
    from dehaze.largeimage import check_expansion, dehaze_file_tiled, tiff_pixels

    if set(_sidecars(job, args).values()) & wanted:
        raise ValueError(
            "--save-transmission and --save-depth are not available for images dehazed tile "
            f"by tile (TIFF files above {TILED_PIXELS // 1_000_000} megapixels, or --tile): "
            "the depth colours need the whole map; run without them"
        )
    if not isinstance(method, Method):
        raise ValueError(f"--method {args.method} cannot be run tile by tile")
    pixels = tiff_pixels(job.source) or 0
    if args.max_pixels is not None and pixels > args.max_pixels:
        raise ValueError(
            f"{job.source} has {pixels:,} pixels, more than the limit of "
            f"{args.max_pixels:,} (--max-pixels)"
        )
    if args.max_pixels is None:
        check_expansion(
            job.source, remedy=f"pass --max-pixels N (N ≥ {pixels}) to process it anyway"
        )
    bar = _file_bar(job, "tile", show)

    current = [""]  # the phase shown: "estimate" (the scene pass) then "dehaze"

    def progress(phase: str, done: int, total: int) -> None:
        if phase != current[0]:  # the scene passes (tiles read, total unknown), then output
            current[0] = phase
            bar.reset(total=total or None)
            bar.set_description(f"{job.source.name} ({'scene' if phase == 'estimate' else phase})")
        bar.update(done - bar.n)
        _stop_if_terminated()  # between tiles: the temporary file is removed

    change = _ChangeSum()  # summed as the tiles are computed: no second pass over the file
    try:
        dehaze_file_tiled(
            method,
            job.source,
            job.output,
            tile=args.tile,
            overwrite=args.overwrite,
            progress=progress,
            compare=change,
        )
    finally:
        bar.close()
    _note_little_change(job, change.mean(), tally)
    tally.megapixels += pixels / 1e6


#: glibc ``mallopt`` parameters (malloc.h) and the values :func:`_keep_freed_memory` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap, not from a fresh ``mmap`` each (glibc's most).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap kept for reuse before it is returned to the system.
TRIM_THRESHOLD = 128 * 1024 * 1024
_FREED_MEMORY_KEPT = False


def _keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed blocks instead of returning them to the system.

    Dehazing a 1920 × 1080 frame with the default method allocates and frees tens of
    megabytes of working planes. glibc's default thresholds hand many of them back to the
    system at once, so every frame takes ~3,400 fresh pages from the kernel (page faults
    and zeroing: ~10 ms of CPU per frame here, a quarter of the method's own time). With
    blocks up to :data:`MMAP_THRESHOLD` taken from the heap and up to
    :data:`TRIM_THRESHOLD` of free heap kept, the next frame reuses them (about 40 faults
    per frame; peak memory unchanged, measured with ``/usr/bin/time``). The setting is
    process-wide, so the command line makes it, only for videos, where the same sizes
    recur frame after frame; the library never does. Other C libraries are left alone.

    Returns
    -------
    bool
        Whether the thresholds were set (glibc only; once per process).
    """
    global _FREED_MEMORY_KEPT
    if _FREED_MEMORY_KEPT:
        return True
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # the mmap threshold first: setting it also stops glibc's own threshold adjustments
    _FREED_MEMORY_KEPT = bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _FREED_MEMORY_KEPT


def _process_video(
    job: Job, method: Dehazer, args: argparse.Namespace, tally: Tally, show: bool
) -> None:
    from dehaze.video import DEFAULT_LIGHT_WEIGHT, dehaze_video

    assert isinstance(method, Method)  # every registered method has the two-phase shape
    _keep_freed_memory()  # frame after frame, the same blocks: reuse them
    extra = _sidecars(job, args)
    bar = _file_bar(job, "frame", show)

    def progress(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        _stop_if_terminated()  # between frames: the clip's temporary file is removed

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
            max_pixels=DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels,
        )
    finally:
        bar.close()
    if summary.written_size is not None:
        tally.notes.append(
            f"{job.source}: written at {summary.written_size[0]}×{summary.written_size[1]}, "
            f"not {summary.width}×{summary.height}: the video writer needs even sizes, so "
            "the last column or row is repeated (nothing is dropped)"
        )
    tally.megapixels += summary.frames * summary.width * summary.height / 1e6
    tally.video_frames += summary.frames
    tally.video_seconds += summary.seconds


def _clean_stale(jobs: Sequence[Job], args: argparse.Namespace, started: float) -> None:
    """Remove temporary files that interrupted earlier runs left in the output folders."""
    folders = sorted({target.parent for job in jobs for target in _targets(job, args)})
    removed = [path for folder in folders for path in remove_stale_parts(folder, started)]
    if removed:
        print(
            f"dehaze: removed {len(removed)} temporary file(s) left by an interrupted run: "
            + ", ".join(str(p) for p in removed[:3])
            + (", ..." if len(removed) > 3 else ""),
            file=sys.stderr,
        )


def run_job(
    job: Job, method: Dehazer, args: argparse.Namespace, tally: Tally, show: bool
) -> str | None:
    """Process one job, counting it into ``tally``; return what to report about it, if anything.

    An input whose outputs exist is skipped (reported unless ``--skip-existing``, which
    writes only the missing side outputs of an image); an error of the file is reported
    and counted, never a traceback. The caller prints ``dehaze: SOURCE: <returned text>``.
    ``--scheduler`` runs this same function on the workers.
    """
    targets = _targets(job, args)
    existing = [t for t in targets if t.exists()]
    wanted = set(targets)
    if existing and not args.overwrite:
        if job.output not in existing:
            # a side output without its output: not this input's earlier run (the output is
            # written first), so resuming must not keep it as this input's, nor replace it
            tally.skipped += 1
            return (
                f"skipped, {existing[0]} exists but not its output {job.output} (written "
                "for another input of the same name?); --overwrite replaces it"
            )
        if not (args.skip_existing and not job.is_video and len(existing) < len(targets)):
            tally.skipped += 1
            if args.skip_existing:
                return None
            return (
                f"skipped, {existing[0]} exists "
                "(--overwrite replaces it, --skip-existing skips quietly)"
            )
        wanted -= set(existing)  # resume: only the missing side outputs of an image
    try:
        if job.is_video:
            _process_video(job, method, args, tally, show)
        else:
            _process_image(job, method, args, tally, wanted, show)
    except Exception as exc:  # bad input is a line and a count, never a traceback
        tally.failed += 1
        text = describe_error(exc)
        # the caller prints "SOURCE: text"; readers' messages often start "SOURCE: " too
        return text.removeprefix(f"{job.source}: ")
    tally.done += 1
    return None


def _run_jobs(
    jobs: Sequence[Job],
    bar: Any,
    method: Dehazer,
    args: argparse.Namespace,
    tally: Tally,
    show: bool,
) -> None:
    """Process ``jobs`` through ``bar`` (a tqdm over them), counting into ``tally``.

    Runs of consecutive small images (:func:`_concurrent`) are dehazed several at once,
    one per kernel thread, each with its kernels on that one thread: below a few
    megapixels a single image keeps two cores only partly busy (decoding, encoding and the
    small working-scale stages run on one), so a folder of them went 1.5 cores at most.
    The files, reports and counts are those of one file after another, in order.
    """
    from tqdm import tqdm

    from dehaze._parallel import get_num_threads
    from dehaze.tiles import in_order

    single = len(jobs) == 1
    threads = 1 if single else get_num_threads()
    lane: list[Job] = []

    def report(job: Job, text: str | None) -> None:
        if text is not None:
            tqdm.write(f"dehaze: {job.source}: {text}", file=sys.stderr)
        bar.update(1)

    def run_lane() -> None:
        def one(job: Job) -> tuple[str | None, Tally]:
            own = Tally()
            return run_job(job, method, args, own, False), own

        results = in_order(one, lane, threads, ahead=threads)
        try:
            for job, (text, own) in zip(lane, results, strict=True):
                tally.merge(own)
                report(job, text)
                _stop_if_terminated()
        finally:
            results.close()  # on an error or a signal: the running files end, no others start
        lane.clear()

    for job in jobs:
        _stop_if_terminated()
        if threads > 1 and _concurrent(job, args):
            lane.append(job)
            if len(lane) == LANE_FILES:  # a long run is taken in parts: reports come as it goes
                run_lane()
            continue
        if lane:
            run_lane()
        report(job, run_job(job, method, args, tally, show and single))
    if lane:
        run_lane()


#: Images of at most this many pixels (as their headers declare) are dehazed several at
#: once in a batch (one per kernel thread, ``threads`` at most in memory); larger ones one
#: at a time with every thread, as their banded kernels already keep the cores busy.
CONCURRENT_PIXELS = 4_000_000
#: Small images gathered before they are started (their headers read ahead of them): the
#: threads wait for the slowest of a part once per part.
LANE_FILES = 32


def _concurrent(job: Job, args: argparse.Namespace) -> bool:
    """Whether a job may run beside others: a small image that is read whole."""
    if job.is_video or _streamed(job, args):
        return False
    pixels = header_pixels(job.source)
    return pixels is not None and pixels <= CONCURRENT_PIXELS


#: Said once on stderr when a kernel is about to be compiled (nothing is said on a warm cache).
COMPILING_MESSAGE = "dehaze: compiling kernels (first run only)…"


@contextmanager
def _announce_compilation() -> Iterator[None]:
    """Say :data:`COMPILING_MESSAGE` once if a kernel is compiled inside the block.

    Numba raises its ``numba:compile`` event only when the cache has no copy of a kernel
    for the types it is called with, right before compiling it (a kernel loaded from the
    cache raises none), so the message appears on a cold cache and never on a warm one:
    the cache's own verdict, not a guess from timing.
    """
    from numba.core import event
    from tqdm import tqdm

    said = threading.Lock()

    class Announce(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            if said.acquire(blocking=False):  # once, from whichever thread compiles first
                tqdm.write(COMPILING_MESSAGE, file=sys.stderr)

        def on_end(self, ev: event.Event) -> None:
            pass

    listener = Announce()
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)


class _Terminated(BaseException):
    """Raised at a safe point after SIGTERM, so that temporary files are removed."""


#: Set by the SIGTERM handler; checked between files and between video frames.
_TERMINATION = threading.Event()


def _stop_if_terminated() -> None:
    """Raise :class:`_Terminated` if SIGTERM arrived (a safe point: no kernel is running)."""
    if _TERMINATION.is_set():
        raise _Terminated


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """Stop at the next safe point on SIGTERM while the batch runs (main thread only).

    The default action would end the process at once and leave the temporary file of the
    image or video being written. Raising from the signal handler itself is not safe
    either: it can interrupt Numba while it loads or compiles a kernel and leave its state
    broken or a lock held (seen as a hang). So the handler only sets a flag; the batch
    stops before the next file or video frame and the atomic writer removes its temporary
    file. A second SIGTERM ends the process at once (SIGKILL cannot be caught at all: the
    next run removes such leftovers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        _TERMINATION.set()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    _TERMINATION.clear()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _TERMINATION.clear()


#: What ``--scheduler`` says when Dask is not installed.
DASK_MISSING = "--scheduler needs Dask: pip install 'dehaze-dcp[dask]'"


def _check_scheduler(scheduler: str) -> None:
    """Refuse ``--scheduler`` without Dask installed, or with a bad ``local:N``."""
    try:
        from dehaze import distributed
    except ImportError as exc:
        raise UsageError(f"{DASK_MISSING} ({exc})") from exc
    try:
        distributed.scheduler_workers(scheduler)
    except ValueError as exc:
        raise UsageError(f"--scheduler: {exc}") from exc


def _run_on_cluster(
    jobs: Sequence[Job], spec: MethodSpec, args: argparse.Namespace, tally: Tally, show: bool
) -> None:
    """Run the batch on a Dask cluster (``--scheduler``), one task per file, into ``tally``."""
    from tqdm import tqdm

    from dehaze import distributed

    if not jobs:
        return  # nothing to send: no cluster to start or reach
    with ExitStack() as stack:
        try:
            client = stack.enter_context(distributed.open_client(args.scheduler))
        except Exception as exc:  # no scheduler there, a timeout: a usage error, one line
            raise UsageError(f"--scheduler {args.scheduler}: {describe_error(exc)}") from exc
        for status in distributed.run_jobs(
            client, jobs, spec, args, progress=None if show else False, stop=_stop_if_terminated
        ):
            if status.status == "done":
                tally.done += 1
            elif status.status == "skipped":
                tally.skipped += 1
            else:
                tally.failed += 1
            tally.megapixels += status.megapixels
            tally.video_frames += status.video_frames
            tally.video_seconds += status.video_seconds
            tally.notes.extend(status.notes)
            tally.warnings.update(status.warnings)
            if status.message is not None:
                tqdm.write(f"dehaze: {status.source}: {status.message}", file=sys.stderr)


def _run_files(argv: Sequence[str]) -> int:
    from tqdm import tqdm

    started = time.time()
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    try:
        out_dir = Path(args.output)
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"-o {out_dir} exists and is not a folder")
        if args.max_pixels is not None and args.max_pixels < 1:
            raise UsageError(f"--max-pixels must be a positive integer, got {args.max_pixels}")
        if args.tile is not None and (args.tile < 16 or args.tile % 16):
            raise UsageError(f"--tile must be a positive multiple of 16, got {args.tile}")
        collected = collect_jobs(args.inputs, out_dir)
        jobs = collected.jobs
        check_targets(jobs, args)
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
        try:
            method = _build_method(args)
        except UsageError:
            raise
        except Exception as exc:  # e.g. damaged weights: a message, never a traceback
            raise UsageError(f"--method {args.method}: {describe_error(exc)}") from exc
        spec = method_spec(args)  # what --scheduler sends to the workers
        if args.scheduler is not None:
            _check_scheduler(args.scheduler)
    except UsageError as exc:
        parser.error(str(exc))  # exits with status 2
    except KeyboardInterrupt:
        print("dehaze: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else about the inputs: one line, never a traceback
        parser.error(describe_error(exc))

    tally = Tally(failed=len(collected.problems))
    for problem in collected.problems:
        print(f"dehaze: {problem}", file=sys.stderr)
    _clean_stale(jobs, args, started)
    show = not args.quiet
    start = time.perf_counter()
    with _terminate_cleanly(), _announce_compilation():
        try:
            if args.scheduler is None:
                # disable=None: a bar only when stderr is a terminal (tqdm's rule), never in logs
                bar = tqdm(
                    jobs,
                    unit="file",
                    disable=True if len(jobs) <= 1 or not show else None,
                    file=sys.stderr,
                )
                try:
                    _run_jobs(jobs, bar, method, args, tally, show)
                finally:
                    bar.close()
            else:
                _run_on_cluster(jobs, spec, args, tally, show and len(jobs) > 1)
        except UsageError as exc:
            parser.error(str(exc))  # exits with status 2
        except KeyboardInterrupt:
            print("dehaze: interrupted", file=sys.stderr)
            return 130
        except _Terminated:
            print("dehaze: terminated", file=sys.stderr)
            return 143
    elapsed = time.perf_counter() - start
    for note in tally.notes:
        print(f"dehaze: {note}", file=sys.stderr)
    for warning in sorted(tally.warnings):
        print(f"dehaze: warning: {warning}", file=sys.stderr)
    rate = tally.megapixels / elapsed if elapsed > 0 else 0.0
    videos_note = ""
    if tally.video_frames:
        fps = tally.video_frames / tally.video_seconds if tally.video_seconds > 0 else 0.0
        videos_note = (
            f"; videos: {tally.video_frames} frames at {fps:.1f} frames/s, written without audio"
        )
    print(
        f"dehaze: {tally.done} done, {tally.skipped} skipped, {tally.failed} failed in "
        f"{elapsed:.2f} s ({tally.megapixels:.2f} megapixels, {rate:.2f} megapixels/s"
        f"{videos_note}) -> {out_dir}",
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
    # FFmpeg's own log lines (a codec tried and not available, say) are not the command's
    # to show: it reports what failed itself. Read when OpenCV's FFmpeg backend starts.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if args and args[0] == "--":
        return _run_files(args[1:])  # `dehaze -- demo -o OUT`: a file named like a command
    if args and args[0] in SUBCOMMANDS:
        return _bench(args[1:]) if args[0] == "bench" else _demo(args[1:])
    return _run_files(args)


def run() -> NoReturn:
    """Run the ``dehaze`` program (console script, ``python -m dehaze``) and exit.

    Before the process exits, every object it holds is frozen (:func:`gc.freeze`): Python's
    shutdown then leaves them to the operating system instead of collecting them. Numba's
    compiler state alone is some 120 000 tracked objects and their LLVM memory; collecting
    them took 0.25 s on every run (a one-frame video: 0.96 s in all), as long as dehazing a
    dozen 1080p images. Nothing is lost: :func:`main` has written and closed every output,
    and the exit handlers (``atexit``, threads' joins) still run. Only the process's own
    entry point does this; :func:`main` leaves a calling program's collector alone.
    """
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()
