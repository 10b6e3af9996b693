"""Dehaze on Dask: many files on a ``dask.distributed`` cluster, one task per file.

This module needs the optional extra ``pip install 'dehaze-dcp[dask]'``; ``import dehaze``
never imports it (nor Dask).

:func:`dehaze_files` runs a batch the way the ``dehaze`` command does (the command's own
input expansion, output naming, skip rules and per-file processing, see
:mod:`dehaze.cli`), but every file is one task on a cluster: the task reads the file,
builds the method from its small picklable spec (once per worker process), dehazes,
writes atomically without replacing existing files, and returns a small
:class:`FileStatus`. A failing file is reported in its status, never fatal to the batch.
``dehaze IN... -o OUT --scheduler ADDRESS`` (or ``--scheduler local:N``) is the same on
the command line.

The cluster's workers must see the same files under the same paths (a shared file
system); paths are made absolute before they are sent.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

try:
    import dask
    import dask.array as da
    from dask.base import compute
    from dask.delayed import delayed
    from distributed import Client, LocalCluster, as_completed
except ImportError as _exc:  # pragma: no cover - exercised without the extra in CI
    raise ImportError(
        f"dehaze.distributed needs Dask ({_exc}); install it with: pip install 'dehaze-dcp[dask]'"
    ) from _exc

from dehaze import cli, tiles
from dehaze._parallel import num_threads
from dehaze._validate import working_dtype
from dehaze.clear import ClearHaze
from dehaze.depth import COLORMAPS
from dehaze.io import DEFAULT_MAX_PIXELS
from dehaze.registry import DEFAULT_METHOD, MethodContext, MethodSpec, build_method
from dehaze.result import Dehazer, Method, Scene, check_outputs

_T = TypeVar("_T")

__all__ = [
    "FileStatus",
    "BatchReport",
    "LOCAL_PREFIX",
    "DaskResult",
    "dask_mapper",
    "dehaze_dask",
    "dehaze_files",
    "open_client",
    "run_jobs",
    "scheduler_workers",
]

#: ``--scheduler local:N`` starts a LocalCluster of N worker processes (``local``: one per
#: available CPU); anything else is the address of a running scheduler.
LOCAL_PREFIX = "local"

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class FileStatus:
    """What became of one input file of a batch.

    Attributes
    ----------
    source, output : Path
        The input and its (main) output, as the batch named them.
    status : {"done", "skipped", "failed"}
        ``skipped``: its outputs exist (see ``overwrite``/``skip_existing`` of
        :func:`dehaze_files`).
    message : str or None
        Why it failed or was skipped (one line, no traceback); None when there is nothing
        to say.
    megapixels : float
        Pixels dehazed (video: all frames), in millions.
    seconds : float
        Time the task took on its worker (0 when the worker was lost).
    notes, warnings : tuple of str
        What the command prints after the batch (little haze found; a method without the
        asked-for transmission or depth).
    video_frames : int
        Frames written, for a video.
    video_seconds : float
        Time spent on those frames.
    """

    source: Path
    output: Path
    status: Status
    message: str | None = None
    megapixels: float = 0.0
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    video_frames: int = 0
    video_seconds: float = 0.0


@dataclass(frozen=True)
class BatchReport:
    """The result of :func:`dehaze_files`.

    Attributes
    ----------
    files : tuple of FileStatus
        One status per input file, in the order of the inputs.
    problems : tuple of str
        Inputs that named no usable file (a missing path, a folder without images, a glob
        without matches); each counts as a failure.
    seconds : float
        Wall-clock time of the batch, from the first submission to the last result.
    """

    files: tuple[FileStatus, ...]
    problems: tuple[str, ...]
    seconds: float

    def count(self, status: Status) -> int:
        """Return how many files ended with ``status`` (problems count as ``failed``)."""
        found = sum(1 for item in self.files if item.status == status)
        return found + (len(self.problems) if status == "failed" else 0)


# --- the task, run on a worker ---------------------------------------------------------

#: Methods built on this worker process, by their pickled (spec, context).
_BUILT: dict[bytes, Dehazer] = {}


def _method_on_worker(spec: MethodSpec, context: MethodContext) -> Dehazer:
    """Build the method of ``spec`` once per process (network weights are read once)."""
    key = pickle.dumps((spec, context))
    method = _BUILT.get(key)
    if method is None:
        method = _BUILT[key] = build_method(spec, context)
    return method


def _dehaze_job(
    job: cli.Job,
    spec: MethodSpec,
    context: MethodContext,
    args: argparse.Namespace,
    threads: int,
) -> FileStatus:
    """Dehaze one file on a worker, as the command does, and say what became of it.

    Every error of the file (including building the method, e.g. weights missing on this
    machine) ends in a ``failed`` status, never an exception.
    """
    start = time.perf_counter()
    tally = cli.Tally()
    try:
        method = _method_on_worker(spec, context)
    except Exception as exc:  # a status for the file, like any other error of it
        return FileStatus(job.source, job.output, "failed", f"--method {spec.label}: {exc}")
    with num_threads(threads):
        message = cli.run_job(job, method, args, tally, False)
    status: Status = "done" if tally.done else "skipped" if tally.skipped else "failed"
    return FileStatus(
        source=job.source,
        output=job.output,
        status=status,
        message=message,
        megapixels=tally.megapixels,
        seconds=time.perf_counter() - start,
        notes=tuple(tally.notes),
        warnings=tuple(sorted(tally.warnings)),
        video_frames=tally.video_frames,
        video_seconds=tally.video_seconds,
    )


# --- the client side --------------------------------------------------------------------


def _absolute(job: cli.Job) -> cli.Job:
    """Make the paths absolute: a worker may run in another folder or on another host."""
    return replace(job, source=job.source.absolute(), output=job.output.absolute())


def _as_named(status: FileStatus, job: cli.Job) -> FileStatus:
    """Give ``status`` the job's own paths, also in its texts (the task saw absolute ones)."""
    message, notes = status.message, status.notes
    if not job.source.is_absolute():
        # the worker named the files by absolute paths; say them as the command would
        prefix = str(Path.cwd()) + os.sep
        message = None if message is None else message.replace(prefix, "")
        notes = tuple(note.replace(prefix, "") for note in notes)
    return replace(status, source=job.source, output=job.output, message=message, notes=notes)


def _worker_args(args: argparse.Namespace) -> argparse.Namespace:
    """Copy the options a task needs, without the inputs (its job has its paths)."""
    wanted = {key: value for key, value in vars(args).items() if key not in ("inputs",)}
    return argparse.Namespace(**wanted)


def run_jobs(
    client: Client,
    jobs: Sequence[cli.Job],
    spec: MethodSpec,
    args: argparse.Namespace,
    *,
    context: MethodContext | None = None,
    threads_per_task: int = 1,
    progress: bool | None = None,
    stop: Callable[[], None] | None = None,
) -> Iterator[FileStatus]:
    """Submit one task per job to ``client`` and yield each file's status as it finishes.

    Parameters
    ----------
    client : distributed.Client
        The cluster to run on.
    jobs : sequence of dehaze.cli.Job
        Inputs and their outputs, as :func:`dehaze.cli.collect_jobs` found them.
    spec : MethodSpec
        The method, built on each worker process once.
    args : argparse.Namespace
        The command's options (``overwrite``, ``skip_existing``, ``save_transmission``, …).
    context : MethodContext, optional
        Where network weights are found (default: ``$DEHAZE_DATA`` as seen here).
    threads_per_task : int, optional
        Band threads of the kernels within one task (default 1: Dask's parallelism is
        one task per worker thread; raise it for workers with fewer threads than cores).
    progress : bool or None, optional
        A progress bar over finished files: None (default) only on a terminal, as tqdm
        decides; False never.
    stop : callable, optional
        Called between results; raising from it cancels the tasks not yet finished.

    Yields
    ------
    FileStatus
        In the order the tasks finish; the paths are those of ``jobs``. A task whose worker
        was lost (killed, out of memory) yields a ``failed`` status.
    """
    from tqdm import tqdm

    if not isinstance(threads_per_task, int) or threads_per_task < 1:
        raise ValueError(f"threads_per_task must be an integer ≥ 1, got {threads_per_task!r}")
    context = MethodContext() if context is None else context
    # weights named relative to this folder: a worker may run in another
    context = MethodContext(
        context.data_root.absolute(),
        {name: Path(path).absolute() for name, path in context.weights.items()},
    )
    if "weights" in spec.options:
        options = dict(spec.options, weights=str(Path(spec.options["weights"]).absolute()))
        spec = MethodSpec(spec.label, spec.name, options)
    sent = _worker_args(args)
    submitted = client.map(
        _dehaze_job,
        [_absolute(job) for job in jobs],
        spec=spec,
        context=context,
        args=sent,
        threads=threads_per_task,
        pure=False,  # a new key every time: a rerun is a new task, never a cached result
    )
    futures = dict(zip(submitted, jobs, strict=True))
    # disable=None: tqdm shows the bar only on a terminal
    disable = None if progress is None else not progress
    bar = tqdm(total=len(futures), unit="file", disable=disable, file=sys.stderr)
    try:
        for future in as_completed(futures):
            job = futures[future]
            try:
                status: FileStatus = future.result()
            except Exception as exc:  # the worker died under the task (KilledWorker, …)
                status = FileStatus(job.source, job.output, "failed", cli.describe_error(exc))
            else:
                status = _as_named(status, job)
            bar.update(1)
            yield status
            if stop is not None:
                stop()
    finally:
        bar.close()
        unfinished = [f for f in futures if not f.done()]
        if unfinished:
            client.cancel(unfinished)


def scheduler_workers(scheduler: str) -> int | None:
    """Return the worker processes ``local:N`` asks for, or None for a scheduler's address.

    Parameters
    ----------
    scheduler : str
        ``"local:N"`` (N ≥ 1), ``"local"`` (one worker per available CPU) or an address.

    Returns
    -------
    int or None
        N, or None when ``scheduler`` is an address.

    Examples
    --------
    >>> scheduler_workers("local:2"), scheduler_workers("tcp://10.0.0.5:8786")
    (2, None)
    """
    text = scheduler.strip()
    name, sep, count = text.partition(":")
    if name != LOCAL_PREFIX:
        return None
    if not sep:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    try:
        workers = int(count)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ValueError(
            f"scheduler 'local:N' needs a number of worker processes N ≥ 1, got {scheduler!r}"
        )
    return workers


#: Set by Dask's nanny in every worker it spawns, to return freed memory to the system
#: sooner. An explicit trim threshold also switches off glibc's adaptive mmap threshold, so
#: every large temporary array is a fresh mmap (page faults on every touch): measured 4–7×
#: slower per SOTS image (0.2 s instead of 0.03–0.05 s for ``clear``). Workers started by
#: :func:`open_client` go without it.
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"


def _worker_environ() -> dict[str, Any]:
    """Dask's environment for new worker processes, without :data:`MALLOC_TRIM`."""
    environ = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {key: value for key, value in dict(environ).items() if key != MALLOC_TRIM}


@contextmanager
def open_client(scheduler: str, *, timeout: float = 10.0) -> Iterator[Client]:
    """Connect to a scheduler, or start a local cluster, for the duration of a block.

    Parameters
    ----------
    scheduler : str
        ``"local:N"``: a :class:`distributed.LocalCluster` of N worker processes with one
        thread each (``"local"``: one per available CPU), without Dask's
        ``MALLOC_TRIM_THRESHOLD_`` (see :data:`MALLOC_TRIM`), closed when the block ends;
        anything else: the address of a running scheduler (``tcp://host:8786``,
        ``host:8786``), which is left running.
    timeout : float, optional
        Seconds to wait for a remote scheduler (default 10).

    Yields
    ------
    distributed.Client
    """
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(
            f"scheduler must be 'local', 'local:N' or a scheduler address, got {scheduler!r}"
        )
    workers = scheduler_workers(scheduler.strip())
    if workers is None:
        with Client(scheduler.strip(), timeout=timeout) as client:
            yield client
        return
    with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
        # read by each nanny when it is made; worker restarts reuse it
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # no dashboard, and the scheduler's HTTP server (health, metrics) on a free port:
            # its default, 8787, may be taken (a warning, and a start-up error under -W error)
            scheduler_kwargs={"dashboard_address": ":0"},
        )
    with cluster, Client(cluster) as client:
        yield client


def _batch_args(
    output: Path,
    method: str,
    overwrite: bool,
    skip_existing: bool,
    save_transmission: bool,
    save_depth: bool,
    colormap: str,
    max_pixels: int,
) -> argparse.Namespace:
    """Build the command's options for a library call (the parser's defaults otherwise)."""
    if overwrite and skip_existing:
        raise ValueError("overwrite and skip_existing exclude each other; pass at most one")
    if colormap not in COLORMAPS:
        raise ValueError(f"colormap must be one of {', '.join(COLORMAPS)}, got {colormap!r}")
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    args = cli.build_parser().parse_args(["-o", str(output), "--", "placeholder"])
    args.method = method
    args.overwrite = overwrite
    args.skip_existing = skip_existing
    args.save_transmission = save_transmission
    args.save_depth = save_depth
    args.colormap = colormap
    args.max_pixels = max_pixels
    return args


def dehaze_files(
    inputs: Collection[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    client: Client,
    method: str = DEFAULT_METHOD,
    overwrite: bool = False,
    skip_existing: bool = False,
    save_transmission: bool = False,
    save_depth: bool = False,
    colormap: str = "turbo",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threads_per_task: int = 1,
    progress: bool | None = False,
) -> BatchReport:
    """Dehaze files, folders (recursively) and globs on a Dask cluster, one task per file.

    The same batch as ``dehaze INPUTS -o OUTPUT`` (the same expansion, output names and
    bytes written), run on ``client``'s workers.

    Parameters
    ----------
    inputs : collection of str or path
        Image or video files, folders (their images, recursively) and glob patterns.
    output : str or path
        The output folder; outputs keep the input's path below its folder or glob.
    client : distributed.Client
        The cluster (see :func:`open_client`).
    method : str, optional
        A method spec ``name[:key=value,...]`` of :mod:`dehaze.registry` (default: the
        command's default method).
    overwrite : bool, optional
        Replace existing outputs (default False: an input whose output exists is skipped).
    skip_existing : bool, optional
        Resume: skip quietly, and write only the missing side outputs of an image.
    save_transmission, save_depth : bool, optional
        Also write ``NAME_transmission.png`` / a colour-mapped ``NAME_depth.png``.
    colormap : str, optional
        Colour map of the depth images, one of :data:`dehaze.depth.COLORMAPS`.
    max_pixels : int, optional
        Refuse (fail) images larger than this many pixels, checked before decoding.
    threads_per_task : int, optional
        Kernel threads within one task (default 1, see :func:`run_jobs`).
    progress : bool or None, optional
        A progress bar over finished files (default False; None: only on a terminal).

    Returns
    -------
    BatchReport
        One :class:`FileStatus` per file, in input order, and the inputs that named no file.

    Raises
    ------
    ValueError
        For a bad option or method spec, an output that would replace an input, or two
        inputs mapped to the same output (nothing is submitted then).

    Examples
    --------
    >>> from dehaze.distributed import dehaze_files, open_client
    >>> with open_client("local:2") as client:  # doctest: +SKIP
    ...     report = dehaze_files(["photos/"], "dehazed", client=client)
    >>> report.count("failed")  # doctest: +SKIP
    0
    """
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output {out_dir} exists and is not a folder")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    args = _batch_args(
        out_dir,
        method,
        overwrite,
        skip_existing,
        save_transmission,
        save_depth,
        colormap,
        max_pixels,
    )
    try:
        spec = cli.method_spec(args)
        build_method(spec, MethodContext())  # bad options or weights: an error here, now
        collected = cli.collect_jobs([os.fspath(path) for path in inputs], out_dir)
        cli.check_targets(collected.jobs, args)
    except cli.UsageError as exc:
        raise ValueError(str(exc)) from None
    start = time.perf_counter()
    statuses = {
        (item.source, item.output): item
        for item in run_jobs(
            client,
            collected.jobs,
            spec,
            args,
            threads_per_task=threads_per_task,
            progress=progress,
        )
    }
    elapsed = time.perf_counter() - start
    files = tuple(statuses[(job.source, job.output)] for job in collected.jobs)
    return BatchReport(files, tuple(collected.problems), elapsed)


# --- dask arrays -------------------------------------------------------------------------


@dataclass(frozen=True)
class DaskResult:
    """What :func:`dehaze_dask` returns: lazy planes, and the scene they were made with.

    Attributes
    ----------
    image : dask.array.Array
        The dehazed image, same shape and dtype as the input.
    transmission, depth : dask.array.Array or None
        (H, W) float planes, when asked for with ``outputs`` (and the method has them).
    scene : Scene
        The whole-image statistics every block was dehazed with.
    """

    image: da.Array
    transmission: da.Array | None
    depth: da.Array | None
    scene: Scene


def dask_mapper(
    func: Callable[[tiles.Tile, NDArray[Any]], _T], image: Any, plan: Sequence[tiles.Tile]
) -> list[_T]:
    """Run ``func(tile, block)`` for every tile as Dask tasks, computed together.

    The mapper of :func:`dehaze.tiles.estimate_tiled` (and :func:`dehaze.tiles.prepare`):
    one delayed task per tile, reading ``image[tile.read]`` (a slice of a dask array stays
    lazy), all computed by one :func:`dask.compute` on the current scheduler (the
    distributed client when one is active).
    """
    tasks = [delayed(func, pure=True)(tile, image[tile.read]) for tile in plan]
    return list(compute(*tasks))


def _bounds(plan: Sequence[tiles.Tile], axis: int, depth: int) -> list[int]:
    """Return the block edges along ``axis``: the plan's tile edges, thin last block merged.

    A last block thinner than ``depth`` is merged into the one before: ``map_overlap``
    takes the context of a block from its neighbouring blocks only.
    """
    edges = sorted({t.out[axis].start for t in plan} | {t.out[axis].stop for t in plan})
    if len(edges) > 2 and edges[-1] - edges[-2] < depth:
        del edges[-2]
    return edges


def dehaze_dask(
    method: Method[Any],
    array: Any,
    *,
    scene: Scene | None = None,
    outputs: Collection[str] = frozenset(),
    tile: int | None = None,
) -> DaskResult:
    """Dehaze a dask array, lazily, with the same result as the whole image in memory.

    The scene (whole-image statistics) is estimated exactly by
    :func:`dehaze.tiles.estimate_tiled` with one Dask task per tile (:func:`dask_mapper`);
    the image is then rechunked to the tile grid of :func:`dehaze.tiles.prepare` (chunk
    origins on the method's alignment grid) and every block, with ``depth`` = the halo of
    context around it (``map_overlap``, ``boundary="none"``: at the true image edges the
    kernels apply their own border rule, as for the whole image), goes through
    :func:`dehaze.tiles.apply_tile`. Integer images come out bit-identical to
    ``method(image)``, float images within 1e-6.

    Parameters
    ----------
    method : Method
        A two-phase method (``estimate``/``apply``/``halo``): every registered method.
    array : dask.array.Array or array_like
        (H, W, 3) RGB or (H, W) gray, uint8/uint16/float32/float64; an in-memory array is
        wrapped with :func:`dask.array.from_array`.
    scene : Scene, optional
        The scene to use (default: estimated from ``array``, which computes now).
    outputs : collection of str, optional
        Optional planes besides the image: ``"transmission"`` and/or ``"depth"``.
    tile : int, optional
        Output block side in pixels (default :data:`dehaze.tiles.DEFAULT_TILE`), rounded
        by the method's alignment; the chunks of ``array`` are replaced by these blocks.

    Returns
    -------
    DaskResult
        Lazy ``image`` (and ``transmission``/``depth`` when asked for) and the scene.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from dehaze import DarkChannelPrior
    >>> from dehaze.distributed import dehaze_dask
    >>> image = np.random.default_rng(0).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    >>> method = DarkChannelPrior(patch_radius=3, guided_radius=8)
    >>> lazy = dehaze_dask(method, da.from_array(image, chunks=32), tile=32)
    >>> bool((lazy.image.compute() == method(image).image).all())
    True
    """
    wanted = check_outputs(outputs)
    planes = sorted(wanted & {"transmission", "depth"})
    if wanted - {"transmission", "depth"}:
        raise ValueError(
            f"outputs of dehaze_dask must be 'transmission' and/or 'depth', got {sorted(wanted)}"
        )
    if not isinstance(array, da.Array):
        array = da.from_array(np.asarray(array))
    if array.ndim not in (2, 3):
        raise ValueError(f"array must be (H, W) or (H, W, C), got shape {array.shape}")
    side = tiles.DEFAULT_TILE if tile is None else tile
    # the scene (unless given) and ClearHaze's working planes: Dask tasks per tile
    prepared = tiles.prepare(method, array, scene, tile=side, mapper=dask_mapper)
    depth = -(-prepared.halo // prepared.align) * prepared.align  # as the plan reads
    # map_overlap takes a block's context from its neighbours only: blocks ≥ the halo
    plan = prepared.plan(max(side, depth))
    height, width = array.shape[:2]
    rows, cols = _bounds(plan, 0, depth), _bounds(plan, 1, depth)
    chunks = (tuple(np.diff(rows).tolist()), tuple(np.diff(cols).tolist()))
    blocks = array.rechunk(chunks + ((array.shape[2],) if array.ndim == 3 else ()))
    channels = array.shape[2] if array.ndim == 3 else 1
    # the maps' dtype, as the method returns them (ClearHaze's is its precision)
    float_dtype = (
        np.dtype(method.precision) if isinstance(method, ClearHaze) else working_dtype(array.dtype)
    )

    def apply_block(block: NDArray[Any], block_info: dict[Any, Any] | None = None) -> NDArray[Any]:
        assert block_info is not None
        if array.ndim == 2 and block.ndim == 3:  # a gray image given an axis for the planes
            block = block[:, :, 0]
        row, col = block_info[None]["chunk-location"][:2]
        out = (slice(rows[row], rows[row + 1]), slice(cols[col], cols[col + 1]))
        read = (
            slice(max(0, rows[row] - depth), min(height, rows[row + 1] + depth)),
            slice(max(0, cols[col] - depth), min(width, cols[col + 1] + depth)),
        )
        region = tiles.Tile(index=row * (len(cols) - 1) + col, out=out, read=read)
        if block.shape[:2] != (read[0].stop - read[0].start, read[1].stop - read[1].start):
            raise RuntimeError(  # pragma: no cover - map_overlap's contract
                f"block {row},{col} has shape {block.shape[:2]}, its tile reads {read}"
            )
        result = tiles.apply_tile(prepared, np.asarray(block), region, outputs=frozenset(planes))
        if not planes:
            return result.image
        stacked = [np.asarray(result.image, np.float64).reshape(*result.image.shape[:2], -1)]
        for name in planes:
            plane = getattr(result, name)
            if plane is None:
                raise ValueError(f"{type(method).__name__} gives no {name}")
            stacked.append(np.asarray(plane, np.float64)[..., None])
        return np.concatenate(stacked, axis=2)

    # an axis shorter than the halo is one block: its overlap is the whole axis (map_overlap
    # refuses a depth larger than the array, and the reads above are clipped to it anyway)
    depths = {0: min(depth, height), 1: min(depth, width), 2: 0}
    if not planes:
        image = blocks.map_overlap(
            apply_block,
            depth={axis: depths[axis] for axis in range(array.ndim)},
            boundary="none",
            trim=False,
            allow_rechunk=False,
            dtype=array.dtype,
            chunks=blocks.chunks,
            meta=np.empty((0,) * array.ndim, array.dtype),
        )
        return DaskResult(image, None, None, prepared.scene)
    # the planes are stacked on a third axis: a gray image gets one of length 1 to carry them
    source = blocks[:, :, np.newaxis] if array.ndim == 2 else blocks
    stacked = source.map_overlap(
        apply_block,
        depth=depths,
        boundary="none",
        trim=False,
        dtype=np.float64,
        chunks=(*chunks, (channels + len(planes),)),
        meta=np.empty((0, 0, 0), np.float64),
    )
    image = stacked[..., :channels].astype(array.dtype)
    if array.ndim == 2:
        image = image[..., 0]
    found = {name: stacked[..., channels + k].astype(float_dtype) for k, name in enumerate(planes)}
    return DaskResult(image, found.get("transmission"), found.get("depth"), prepared.scene)
