"""Run methods on image pairs and score them: the benchmark's timing and scoring loop.

Each method is called once untimed on the first image (so JIT compilation is not counted),
then timed on every image with ``time.perf_counter`` around the call alone (the image is
already in memory; reading, scoring and writing are not timed). Scores use the pinned
protocol of :mod:`dehaze.metrics` on the method's output in the input's dtype.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dehaze.datasets import PairSet, Skipped, iter_loaded, ohaze_pairs, sots_pairs
from dehaze.metrics import Scorer, psnr
from dehaze.result import Dehazer

__all__ = ["DEFAULT_METHODS", "Record", "find_sets", "run_benchmark"]

#: Methods run when ``--methods`` is not given (networks only when their weights exist).
DEFAULT_METHODS: tuple[str, ...] = (
    "identity",
    "clear",
    "dcp",
    "robust",
    "cap",
    "aodnet",
    "dehazenet",
)

#: Set names in a data root, and where they live.
_DATA_ROOT_SETS = (
    ("indoor", Path("sots") / "indoor", "sots"),
    ("outdoor", Path("sots") / "outdoor", "sots"),
    ("ohaze", Path("ohaze"), "ohaze"),
)


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
    progress: bool | None = None,
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
    progress : bool or None, optional
        Show a tqdm progress bar on stderr: always (True), never (False), or only when
        stderr is a terminal (None, the default).
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
    with tqdm(
        total=sum(len(c) for c in chosen),
        unit="pair",
        disable=None if progress is None else not progress,
    ) as bar:
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
