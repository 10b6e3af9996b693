"""Score dehazing methods on SOTS / O-HAZE pairs: per-image CSV, markdown table, plot.

Run it as ``dehaze bench`` (or ``python bench/sots.py``)::

    dehaze bench                                  # every shared set, default methods
    dehaze bench --limit 5 --methods identity dcp "dcp:omega=0.9,guide=color"
    dehaze bench --data ~/RESIDE/SOTS/indoor --output sots-indoor-results

Data: ``--data`` (default ``$DEHAZE_DATA``, else ``../shared/data``) is either a data root
holding ``sots/indoor``, ``sots/outdoor`` and ``ohaze/``, a SOTS root holding ``indoor/``
and ``outdoor/``, or one folder with ``hazy/`` and ``gt/`` (or ``clear/``), read by
:mod:`dehaze.datasets`.

Methods are given as ``name`` or ``name:key=value,key=value`` (``--methods``); see
:data:`METHODS`. Each method is called once untimed on the first image (so JIT compilation
is not counted), then timed on every image with ``time.perf_counter`` around the call
alone (the image is already in memory; reading, scoring and writing are not timed).

Scores use the pinned protocol of :mod:`dehaze.metrics` on the method's output in the
input's dtype (uint8 for the SOTS files, as a saved PNG would be).

Outputs in ``--output`` (default ``bench-results``): ``per_image.csv``, ``summary.md``
(method, split, n, PSNR, SSIM, CIEDE2000, median ms per image, median ms per megapixel)
and ``psnr_vs_time.png``. Existing files are not replaced unless ``--overwrite`` is given.

Adding a method
---------------
A method is one entry of :data:`METHODS`: a name mapped to a factory
``factory(options, context) -> Dehazer`` where ``options`` are the ``key=value`` strings of
the method spec and ``context`` is a :class:`MethodContext`. For a frozen-dataclass method
such as :class:`dehaze.DarkChannelPrior`, :func:`dataclass_factory` builds the factory,
converting each option to the type of the field's default::

    METHODS["cap"] = dataclass_factory("dehaze.cap:ColorAttenuationPrior")

(a ``"module:Class"`` string is imported only when the method is used), or call
:func:`register_method` from your own code before :func:`main`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import io
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from dehaze._data import data_root
from dehaze.datasets import PairSet, Skipped, iter_loaded, ohaze_pairs, sots_pairs
from dehaze.dcp import DarkChannelPrior
from dehaze.io import write_bytes_atomic
from dehaze.metrics import Scorer, psnr
from dehaze.result import Dehazer, DehazeResult

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_WEIGHTS",
    "METHODS",
    "Identity",
    "MethodContext",
    "MethodSpec",
    "Record",
    "Summary",
    "build_method",
    "dataclass_factory",
    "describe_method",
    "find_sets",
    "main",
    "markdown_table",
    "parse_method_spec",
    "plot_psnr_vs_time",
    "register_method",
    "run_benchmark",
    "summarize",
]

#: File names of the published weights in ``$DEHAZE_DATA/weights`` used by default.
DEFAULT_WEIGHTS: dict[str, str] = {
    "aodnet": "aodnet_pytorch_MayankSingal_dehazer.pth",
    "dehazenet": "dehazenet_matlab_caibolun_dehaze.mat",
}

#: Methods run when ``--methods`` is not given (networks only when their weights exist).
DEFAULT_METHODS: tuple[str, ...] = ("identity", "dcp", "aodnet", "dehazenet")

#: Names of the output files written into ``--output``.
OUTPUT_FILES = ("per_image.csv", "summary.md", "psnr_vs_time.png")

#: Set names in a data root, and where they live.
_DATA_ROOT_SETS = (
    ("indoor", Path("sots") / "indoor", "sots"),
    ("outdoor", Path("sots") / "outdoor", "sots"),
    ("ohaze", Path("ohaze"), "ohaze"),
)


@dataclass(frozen=True)
class MethodContext:
    """What a method factory may need besides its options.

    Attributes
    ----------
    data_root : Path
        The evaluation-data folder whose ``weights/`` holds the default network weights
        (``--data`` when it has a ``weights/`` folder, else ``$DEHAZE_DATA``).
    weights : mapping of str to Path
        Weight files given with ``--weights NAME=PATH``, by method name.
    """

    data_root: Path
    weights: Mapping[str, Path] = dataclasses.field(default_factory=dict)


MethodFactory = Callable[[Mapping[str, str], MethodContext], Dehazer]


class Identity:
    """The floor of every table: return the hazy input unchanged."""

    def __call__(self, image: ArrayLike) -> DehazeResult:
        """Return ``image`` itself as the result."""
        return DehazeResult(image=np.asarray(image))

    def __repr__(self) -> str:
        return "Identity()"


def _convert_option(cls_name: str, key: str, value: str, default: Any) -> Any:
    """Convert an option string to the type of the field's default value."""
    what = f"{cls_name} option {key}"
    if value.lower() == "none":  # optional fields (e.g. tolerance=none); the class validates
        return None
    if isinstance(default, bool):
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{what} must be true or false, got {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{what} must be a number, got {value!r}") from None
    if isinstance(default, str):
        return value
    # None or tuple defaults (e.g. atmospheric_light): a number, or "a/b/c"
    try:
        if "/" in value:
            return tuple(float(v) for v in value.split("/"))
        return float(value)
    except ValueError:
        raise ValueError(
            f"{what} must be 'none', a number or numbers separated by '/', got {value!r}"
        ) from None


def dataclass_factory(target: type[Any] | str) -> MethodFactory:
    """Make a method factory for a dataclass method (fields with defaults as options).

    Parameters
    ----------
    target : type or str
        The dataclass (e.g. :class:`dehaze.DarkChannelPrior`), or ``"module:Class"`` to
        import it only when the method is first built.

    Returns
    -------
    callable
        ``factory(options, context)`` that converts every option to the type of the
        field's default (bool, int, float, str; ``none``, a number or ``a/b/c`` for
        fields whose default is None or a tuple) and returns ``target(**options)``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from dehaze import DarkChannelPrior
    >>> from dehaze.benchmark import MethodContext, dataclass_factory
    >>> factory = dataclass_factory(DarkChannelPrior)
    >>> factory({"omega": "0.9", "guide": "color"}, MethodContext(Path("."))).omega
    0.9
    """

    def resolve() -> type[Any]:
        if isinstance(target, str):
            module_name, _, class_name = target.partition(":")
            module = importlib.import_module(module_name)
            resolved: type[Any] = getattr(module, class_name)
            return resolved
        return target

    def factory(options: Mapping[str, str], context: MethodContext) -> Dehazer:
        cls = resolve()
        defaults = {
            f.name: f.default
            for f in dataclasses.fields(cls)
            if f.init and f.default is not dataclasses.MISSING
        }
        kwargs: dict[str, Any] = {}
        for key, value in options.items():
            if key not in defaults:
                accepted = ", ".join(sorted(defaults))
                raise ValueError(
                    f"{cls.__name__} has no option {key!r}; accepted options are {accepted}"
                )
            kwargs[key] = _convert_option(cls.__name__, key, value, defaults[key])
        method: Dehazer = cls(**kwargs)
        return method

    return factory


def _identity_factory(options: Mapping[str, str], context: MethodContext) -> Dehazer:
    if options:
        raise ValueError(f"identity takes no options, got {', '.join(options)}")
    return Identity()


def _weights_path(name: str, options: Mapping[str, str], context: MethodContext) -> Path:
    """Return network ``name``'s weights: the option, else ``--weights``, else the default."""
    if "weights" in options:
        return Path(options["weights"])
    if name in context.weights:
        return Path(context.weights[name])
    return context.data_root / "weights" / DEFAULT_WEIGHTS[name]


def _network_factory(name: str, class_name: str) -> MethodFactory:
    def factory(options: Mapping[str, str], context: MethodContext) -> Dehazer:
        unknown = set(options) - {"weights"}
        if unknown:
            raise ValueError(
                f"{name} has no option {sorted(unknown)[0]!r}; accepted options are weights"
            )
        path = _weights_path(name, options, context)
        if not path.is_file():
            raise FileNotFoundError(
                f"{name}: weights file {path} not found; give one with --weights {name}=PATH "
                f"or {name}:weights=PATH"
            )
        try:
            models = importlib.import_module("dehaze.models")
            cls = getattr(models, class_name)
        except (ImportError, AttributeError) as exc:
            raise ImportError(
                f"{name} needs dehaze.models.{class_name}, which is not available ({exc})"
            ) from exc
        method: Dehazer = cls.from_file(path)
        return method

    return factory


def describe_method(method: Dehazer) -> str:
    """Short description of a method: a dataclass's scalar fields, else its class name."""
    cls_name = type(method).__name__
    if not dataclasses.is_dataclass(method):
        return f"{cls_name}()" if isinstance(method, Identity) else cls_name
    shown = []
    for f in dataclasses.fields(method):
        value = getattr(method, f.name)
        if value is None or isinstance(value, (bool, int, float, str, tuple)):
            shown.append(f"{f.name}={value!r}")
    return f"{cls_name}({', '.join(shown)})"


#: Registered methods: name → factory(options, context) -> Dehazer.
METHODS: dict[str, MethodFactory] = {
    "identity": _identity_factory,
    "dcp": dataclass_factory(DarkChannelPrior),
    "robust_dcp": dataclass_factory("dehaze.restore:RobustDCP"),
    "cap": dataclass_factory("dehaze.cap:ColorAttenuationPrior"),
    "aodnet": _network_factory("aodnet", "AODNet"),
    "dehazenet": _network_factory("dehazenet", "DehazeNet"),
}


def register_method(name: str, factory: MethodFactory, *, replace: bool = False) -> None:
    """Add a method to :data:`METHODS`.

    Parameters
    ----------
    name : str
        Method name used in specs: letters, digits, ``_`` and ``-``.
    factory : callable
        ``factory(options, context) -> Dehazer`` (see :func:`dataclass_factory`).
    replace : bool, optional
        Allow replacing an existing entry (default False: raise ValueError).
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be letters, digits, '_' or '-', got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if name in METHODS and not replace:
        raise ValueError(f"method {name!r} is already registered; pass replace=True")
    METHODS[name] = factory


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method spec ``name:key=value,...``.

    Attributes
    ----------
    label : str
        The spec as written (used in tables).
    name : str
        The registered method name.
    options : dict of str to str
        The ``key=value`` options, unconverted.
    """

    label: str
    name: str
    options: dict[str, str]


def parse_method_spec(spec: str) -> MethodSpec:
    """Parse ``name`` or ``name:key=value,key=value`` into a :class:`MethodSpec`.

    Examples
    --------
    >>> parse_method_spec("dcp:omega=0.9,guide=color").options
    {'omega': '0.9', 'guide': 'color'}
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a method spec must be a non-empty string, got {spec!r}")
    label = spec.strip()
    name, _, rest = label.partition(":")
    name = name.strip()
    if name not in METHODS:
        accepted = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown method {name!r} in {label!r}; accepted methods are {accepted}")
    options: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ValueError(f"method option {item!r} in {label!r} must be key=value")
            if key in options:
                raise ValueError(f"method option {key!r} is given twice in {label!r}")
            options[key] = value
    return MethodSpec(label, name, options)


def build_method(spec: MethodSpec | str, context: MethodContext) -> Dehazer:
    """Build the method a spec names (its factory validates the options)."""
    parsed = parse_method_spec(spec) if isinstance(spec, str) else spec
    return METHODS[parsed.name](parsed.options, context)


def find_sets(
    data: Path, *, splits: Sequence[str] | None = None, strict: bool = True
) -> list[PairSet]:
    """Find the evaluation sets under ``data``.

    Parameters
    ----------
    data : Path
        A data root (``sots/indoor``, ``sots/outdoor``, ``ohaze/``), a SOTS root
        (``indoor/``, ``outdoor/``) or a single folder with ``hazy/`` and ``gt/``/``clear/``.
    splits : sequence of str, optional
        Set names to keep (``indoor``, ``outdoor``, ``ohaze``, or the single folder's
        name); all found sets by default. A requested set that is absent is an error.
    strict : bool, optional
        Passed to the readers in :mod:`dehaze.datasets`.

    Returns
    -------
    list of PairSet
    """
    if not data.is_dir():
        raise FileNotFoundError(f"data folder {data} not found (set DEHAZE_DATA or --data)")
    candidates: list[tuple[str, Path, str]] = []
    if (data / "hazy").is_dir():
        names = [p.stem.lower() for p in (data / "hazy").iterdir()]
        kind = "ohaze" if names and all(n.endswith("_hazy") for n in names) else "sots"
        candidates.append((data.resolve().name, data, kind))
    else:
        for name, sub, kind in _DATA_ROOT_SETS:
            folder = data / sub
            if not folder.is_dir() and kind == "sots":
                folder = data / sub.name  # a SOTS root: indoor/, outdoor/
            if folder.is_dir():
                candidates.append((name, folder, kind))
    if not candidates:
        raise FileNotFoundError(
            f"no evaluation sets in {data}: expected sots/indoor, sots/outdoor, ohaze/, "
            f"indoor/, outdoor/ or hazy/ + gt/"
        )
    available = [name for name, _, _ in candidates]
    if splits:
        missing = [s for s in splits if s not in available]
        if missing:
            raise ValueError(
                f"split {missing[0]!r} not found in {data}; available: {', '.join(available)}"
            )
    sets: list[PairSet] = []
    for name, folder, kind in candidates:
        if splits and name not in splits:
            continue
        reader = ohaze_pairs if kind == "ohaze" else sots_pairs
        sets.append(reader(folder, split=name, strict=strict))
    return sets


@dataclass(frozen=True)
class Record:
    """One method's result on one image pair."""

    split: str
    method: str
    image: str
    width: int
    height: int
    ms: float
    psnr: float
    ssim: float
    ciede2000: float
    hazy: str
    clear: str
    input_psnr: float = math.nan  # PSNR of the hazy input itself: the "do nothing" floor


@dataclass(frozen=True)
class Summary:
    """One row of the markdown table: a method on a split."""

    method: str
    split: str
    n: int
    psnr: float
    ssim: float
    ciede2000: float
    median_ms: float
    ms_per_megapixel: float
    worst_gain: float = math.nan  # min over images of PSNR(output) − PSNR(hazy input)


def _timed_call(method: Dehazer, image: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = method(image)
    elapsed = time.perf_counter() - start
    return np.asarray(result.image), elapsed * 1e3


def run_benchmark(
    sets: Sequence[PairSet],
    methods: Sequence[tuple[str, Dehazer]],
    *,
    limit: int | None = None,
    strict: bool = True,
    progress: bool = True,
    on_skip: Callable[[Skipped], None] | None = None,
) -> list[Record]:
    """Run every method on every pair and score it.

    Parameters
    ----------
    sets : sequence of PairSet
        The sets to run on.
    methods : sequence of (label, Dehazer)
        The methods, with the labels used in the results.
    limit : int, optional
        Use only the first ``limit`` pairs of each set.
    strict : bool, optional
        A pair that cannot be read raises (True) or is skipped and reported (False).
    progress : bool, optional
        Show a tqdm progress bar on stderr.
    on_skip : callable, optional
        Called with every skipped pair when ``strict`` is False.

    Returns
    -------
    list of Record
        One per (pair, method), in run order.
    """
    from tqdm import tqdm

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    labels = [label for label, _ in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"method labels must be unique, got {labels}")
    chosen = [list(s.pairs)[:limit] if limit else list(s.pairs) for s in sets]
    records: list[Record] = []
    warmed: set[str] = set()
    with tqdm(total=sum(len(c) for c in chosen), unit="pair", disable=not progress) as bar:
        for pairs in chosen:
            for pair, hazy, clear in iter_loaded(pairs, strict=strict, on_skip=on_skip):
                bar.set_description(pair.split)
                scorer = Scorer(clear)
                input_psnr = psnr(clear, hazy)
                height, width = hazy.shape[:2]
                for label, method in methods:
                    if label not in warmed:
                        method(hazy)  # compile / warm caches; not timed
                        warmed.add(label)
                    output, ms = _timed_call(method, hazy)
                    if output.shape != hazy.shape:
                        raise ValueError(
                            f"method {label} returned shape {output.shape} for {pair.hazy} "
                            f"of shape {hazy.shape}"
                        )
                    try:
                        scores = scorer(output)
                    except ValueError as exc:
                        raise ValueError(f"method {label} on {pair.hazy}: {exc}") from exc
                    records.append(
                        Record(
                            split=pair.split,
                            method=label,
                            image=pair.name,
                            width=width,
                            height=height,
                            ms=ms,
                            psnr=scores.psnr,
                            ssim=scores.ssim,
                            ciede2000=scores.ciede2000,
                            hazy=str(pair.hazy),
                            clear=str(pair.clear),
                            input_psnr=input_psnr,
                        )
                    )
                bar.update(1)
    return records


def summarize(records: Sequence[Record]) -> list[Summary]:
    """Aggregate records per (method, split), in first-seen order.

    PSNR, SSIM and CIEDE2000 are means over images (a PSNR of ``inf`` — an output equal to
    its reference — makes the mean ``inf``); time is the median over images of the call
    time, and the median over images of the time per megapixel.
    """
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.method, record.split), []).append(record)
    rows: list[Summary] = []
    for (method, split), group in groups.items():
        rows.append(
            Summary(
                method=method,
                split=split,
                n=len(group),
                psnr=float(np.mean([r.psnr for r in group])),
                ssim=float(np.mean([r.ssim for r in group])),
                ciede2000=float(np.mean([r.ciede2000 for r in group])),
                median_ms=statistics.median(r.ms for r in group),
                ms_per_megapixel=statistics.median(
                    r.ms / (r.width * r.height / 1e6) for r in group
                ),
                worst_gain=min(r.psnr - r.input_psnr for r in group),
            )
        )
    return rows


def _fmt(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def markdown_table(rows: Sequence[Summary]) -> str:
    """Render summaries as a markdown table (one row per method and split)."""
    lines = [
        "| method | split | n | PSNR (dB) | SSIM | CIEDE2000 | worst pair ΔPSNR vs input "
        "| median ms / image | ms / MP |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.method} | {row.split} | {row.n} | {_fmt(row.psnr, 2)} | "
            f"{_fmt(row.ssim, 4)} | {_fmt(row.ciede2000, 2)} | {_fmt(row.worst_gain, 2)} | "
            f"{row.median_ms:.1f} | {row.ms_per_megapixel:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _records_csv(records: Sequence[Record]) -> str:
    buffer = io.StringIO()
    names = [f.name for f in dataclasses.fields(Record)]
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = dataclasses.asdict(record)
        for key in ("ms", "psnr", "ssim", "ciede2000", "input_psnr"):
            row[key] = repr(float(row[key]))
        writer.writerow(row)
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through a temporary file; never clobber unless told."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    write_bytes_atomic(path, data, overwrite=overwrite)


def _require_matplotlib() -> None:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise ImportError(
            "the PSNR-vs-time plot needs matplotlib, which is not installed: "
            "pip install 'dehaze[examples]' (or matplotlib), or pass --no-plot"
        ) from None


def plot_psnr_vs_time(rows: Sequence[Summary]) -> bytes:
    """Draw mean PSNR against median time per image (log scale); return PNG bytes.

    Needs matplotlib (the ``examples`` or ``test`` extra); uses its object API with the
    Agg canvas, so no global pyplot state is touched.
    """
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    splits = list(dict.fromkeys(r.split for r in rows))
    methods = list(dict.fromkeys(r.method for r in rows))
    colors = [f"C{i % 10}" for i in range(len(methods))]
    for row in rows:
        if math.isinf(row.psnr):
            continue
        axes.scatter(
            max(row.median_ms, 1e-3),
            row.psnr,
            marker=markers[splits.index(row.split) % len(markers)],
            color=colors[methods.index(row.method)],
            s=50,
        )
        axes.annotate(
            f"{row.method} ({row.split})",
            (max(row.median_ms, 1e-3), row.psnr),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=7,
        )
    axes.set_xscale("log")
    times = [max(r.median_ms, 1e-3) for r in rows if not math.isinf(r.psnr)]
    if times:
        axes.set_xlim(min(times) / 2.0, max(times) * 10.0)  # room for the labels
    axes.set_xlabel("median time per image (ms, log scale)")
    axes.set_ylabel("mean PSNR (dB)")
    axes.set_title("PSNR vs time (marker = split)")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _summary_markdown(
    rows: Sequence[Summary],
    methods: Sequence[tuple[str, str]],
    sets: Sequence[PairSet],
    skipped: Sequence[Skipped],
    command: str,
    limit: int | None,
) -> str:
    import numba

    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        "Protocol: dehaze.metrics (float64 in [0, 1], data range 1; SSIM = scikit-image "
        "`structural_similarity(channel_axis=-1, data_range=1)`, 7×7 uniform window; "
        "CIEDE2000 = mean ΔE00, sRGB/D65). Scores are means over images; the method's "
        "output is scored in the input's dtype (uint8). Time: the method call alone, "
        "after one untimed warm-up call; median over images.",
        "",
        markdown_table(rows),
        "Sets: "
        + "; ".join(
            f"{s.split} = {s.root} ({len(s)} pairs" + (f", first {limit} used)" if limit else ")")
            for s in sets
        ),
        "",
        "Methods:",
        "",
    ]
    lines += [f"- `{label}`: {description}" for label, description in methods]
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}.",
    ]
    if skipped:
        lines += ["", f"Skipped ({len(skipped)}):", ""]
        lines += [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dehaze bench",
        description="Score dehazing methods on SOTS / O-HAZE pairs (PSNR, SSIM, CIEDE2000, "
        "time) and write per_image.csv, summary.md and psnr_vs_time.png.",
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
        help="comma-separated sets to run (indoor, outdoor, ohaze; default: all found)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="SPEC",
        help="methods as name or name:key=value,... (default: identity dcp, plus aodnet "
        "and dehazenet when their weights exist); names: " + ", ".join(sorted(METHODS)),
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
            raise ValueError(f"--weights takes NAME=PATH, got {item!r}")
        if name not in DEFAULT_WEIGHTS:
            accepted = ", ".join(sorted(DEFAULT_WEIGHTS))
            raise ValueError(f"--weights: unknown network {name!r}; accepted: {accepted}")
        weights[name] = Path(path)
    return weights


def _describe_spec(spec: MethodSpec, method: Dehazer, context: MethodContext) -> str:
    text = f"`{describe_method(method)}`"
    if spec.name in DEFAULT_WEIGHTS:
        text += f" with weights `{_weights_path(spec.name, spec.options, context)}`"
    return text


def _build_methods(
    specs: Sequence[str] | None, context: MethodContext, note: Callable[[str], None]
) -> tuple[list[tuple[str, Dehazer]], list[tuple[str, str]]]:
    """Build the methods; return them with their descriptions for the summary."""
    methods: list[tuple[str, Dehazer]] = []
    descriptions: list[tuple[str, str]] = []
    optional = specs is None
    for spec in DEFAULT_METHODS if specs is None else specs:
        parsed = parse_method_spec(spec)
        try:
            method = build_method(parsed, context)
        except (FileNotFoundError, ImportError) as exc:
            if not (optional and parsed.name in DEFAULT_WEIGHTS):
                raise
            note(f"not running {parsed.name}: {exc}")
            continue
        methods.append((parsed.label, method))
        descriptions.append((parsed.label, _describe_spec(parsed, method, context)))
    labels = [label for label, _ in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--methods lists a method twice: {labels}")
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
        0 on success, 1 when the run cannot be done (missing data, existing outputs, a
        bad method spec, an unreadable file in strict mode), 2 for usage errors.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    args = parser.parse_args(args_list)

    def note(message: str) -> None:
        print(f"dehaze bench: {message}", file=sys.stderr)

    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be ≥ 1, got {args.limit}")
    try:
        output: Path = args.output
        names = [n for n in OUTPUT_FILES if not (args.no_plot and n.endswith(".png"))]
        existing = [output / n for n in names if (output / n).exists()]
        if existing and not args.overwrite:
            raise FileExistsError(
                f"{existing[0]} exists; pass --overwrite to replace it or choose --output"
            )
        if not args.no_plot:
            _require_matplotlib()
        data = args.data if args.data is not None else data_root()
        splits = [s.strip() for s in args.split.split(",") if s.strip()] if args.split else None
        sets = find_sets(data, splits=splits, strict=not args.no_strict)
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
            progress=not args.no_progress,
            on_skip=on_skip,
        )
        rows = summarize(records)
        command = "dehaze bench " + " ".join(shlex.quote(a) for a in args_list)
        summary = _summary_markdown(rows, descriptions, sets, skipped, command.strip(), args.limit)
        _write_atomic(
            output / "per_image.csv", _records_csv(records).encode(), overwrite=args.overwrite
        )
        _write_atomic(output / "summary.md", summary.encode(), overwrite=args.overwrite)
        if not args.no_plot:
            png = plot_psnr_vs_time(rows)
            _write_atomic(output / "psnr_vs_time.png", png, overwrite=args.overwrite)
    except (OSError, ValueError, ImportError) as exc:
        note(f"error: {exc}")
        return 1
    print(markdown_table(rows), end="")
    print(f"{len(records)} results in {time.perf_counter() - started:.1f} s; wrote {output}/")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
