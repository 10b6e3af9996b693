"""Video dehazing with a temporally smoothed atmospheric light.

Dehazing every frame of a clip independently makes it flicker: He's rule picks the
atmospheric light A from a handful of pixels (the brightest 0.1 % of the dark channel), so a
bright object entering the view, a specular highlight or sensor noise can move A from one
frame to the next, and every pixel of the output moves with it (J = (I − A)/t + A).

This module estimates A per frame (every ``light_every`` frames, optionally on a
``light_downscale``-times smaller copy) and blends the estimates with an exponential moving
average (EMA) before the rest of the dark-channel pipeline runs with the blended value:

    A_0 = Â_0,    A_k = (1 − w) · A_{k−1} + w · Â_k,

where Â_k is the estimate of frame k and w = ``light_weight`` in (0, 1]. Consequences:

* the change of A between consecutive frames is at most w times the jump of the estimate,
  ``|A_k − A_{k−1}| = w · |Â_k − A_{k−1}| ≤ w`` per channel;
* a lasting change of the scene light is followed with time constant about 1/w frames
  (w = 0.1: 10 frames, 1/3 s at 30 fps; after n frames the remaining error is (1 − w)^n);
* w = 1 disables the smoothing (every frame gets its own estimate, as with
  :func:`dehaze.dehaze`).

Any method with the two-phase shape of :class:`dehaze.result.Method` works: the frame's
*scene* (``method.estimate(frame)``) is smoothed field by field with :meth:`Scene.blend
<dehaze.result.Scene.blend>` and the frame is recovered with ``method.apply(frame,
smoothed)``. For :class:`dehaze.DarkChannelPrior` the scene is A; for
:class:`dehaze.RobustDCP` also the sky-adaptive tolerance K (which depends on how much of
the frame looks like sky, and so can jump when a bright object crosses the top of the view).

Frames are processed one at a time (:func:`dehaze_frames` is a generator and
:func:`dehaze_video` streams from :class:`cv2.VideoCapture` to :class:`cv2.VideoWriter`), so
memory does not grow with the clip's length. In :func:`dehaze_video` decoding, dehazing and
encoding overlap: a thread decodes ahead and another encodes behind, each at most
:data:`QUEUE_FRAMES` frames away from the dehazing thread, frames in order. With
:class:`dehaze.ClearHaze` (the default) the dehazing thread finds each frame's smoothed scene
in order and worker threads recover several frames at once, one per thread of
:func:`dehaze.get_num_threads`; the frames written are :func:`dehaze_frames`' bit for bit.
"""

from __future__ import annotations

import csv
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from dehaze._parallel import get_num_threads, serial_bands
from dehaze._validate import FloatArray, as_pixels, check_radius, check_real
from dehaze.clear import ClearHaze, ClearScene
from dehaze.io import (
    DEFAULT_MAX_PIXELS,
    VIDEO_CODECS,
    AtomicFile,
    VideoReader,
    VideoWriter,
    choose_codecs,
)
from dehaze.result import ALL_OUTPUTS, DehazeResult, Method, Scene, check_outputs

__all__ = [
    "DEFAULT_LIGHT_WEIGHT",
    "VIDEO_CODECS",
    "DehazedFrame",
    "VideoSummary",
    "dehaze_frames",
    "dehaze_video",
]

#: EMA weight of the newest atmospheric-light estimate (time constant ≈ 10 frames).
DEFAULT_LIGHT_WEIGHT = 0.1

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class DehazedFrame:
    """One frame of :func:`dehaze_frames`.

    Attributes
    ----------
    index : int
        Frame number, from 0.
    result : DehazeResult
        What ``method.apply(frame, scene)`` returns with the smoothed scene: ``image``
        (input dtype and shape), ``atmospheric_light`` (the smoothed A, [0, 1] scale) and the
        planes asked for.
    scene : Scene
        The smoothed scene the frame was recovered with.
    estimate : Scene or None
        This frame's own scene before smoothing; None on frames where it was not
        re-estimated (``light_every`` > 1).
    """

    index: int
    result: DehazeResult
    scene: Scene
    estimate: Scene | None

    @property
    def light_estimate(self) -> FloatArray | None:
        """Return the frame's own atmospheric-light estimate (None if not estimated or none)."""
        light: FloatArray | None = getattr(self.estimate, "atmospheric_light", None)
        return light


@dataclass(frozen=True)
class VideoSummary:
    """What :func:`dehaze_video` did.

    Attributes
    ----------
    source, output : Path
        The input clip and the written clip.
    frames : int
        Number of frames read and written (at least the count the source declares:
        fewer is an error).
    fps : float
        Frame rate of both clips.
    width, height : int
        Frame size of the source in pixels (that of the written clip too, unless
        ``written_size`` says otherwise).
    seconds : float
        Wall-clock time spent, reading and writing included.
    codec : str
        FourCC of the codec written (see :func:`dehaze.io.choose_codecs`).
    source_codec : str
        FourCC of the source's codec as stored (empty when unknown).
    written_size : (int, int) or None
        The written clip's width and height when they differ from the source's: a frame
        of odd width or height is written one column or row larger, its last one repeated
        (:class:`dehaze.io.VideoWriter`). None when the sizes are the same.

    Notes
    -----
    The written clip has no audio track: OpenCV reads and writes video streams only.
    """

    source: Path
    output: Path
    frames: int
    fps: float
    width: int
    height: int
    seconds: float
    codec: str = ""
    source_codec: str = ""
    written_size: tuple[int, int] | None = None

    @property
    def frames_per_second(self) -> float:
        """Processing speed: frames dehazed per second of wall-clock time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _check_options(
    method: Method[Any] | None, light_weight: float, light_every: int, light_downscale: int
) -> tuple[Method[Any], float, int, int]:
    if method is None:
        method = ClearHaze()
    elif not isinstance(method, Method):
        raise TypeError(
            "method must have the two-phase shape of dehaze.result.Method (estimate and "
            f"apply; every dehaze method has it), got {type(method).__name__}"
        )
    weight = check_real(light_weight, "light_weight", low=0.0, high=1.0, high_inclusive=True)
    every = check_radius(light_every, "light_every", minimum=1)
    downscale = check_radius(light_downscale, "light_downscale", minimum=1)
    return method, weight, every, downscale


def _estimate_frame(frame: NDArray[Any], method: Method[Any], downscale: int) -> Scene:
    """Estimate the frame's scene with the method's own rule, optionally on a smaller copy.

    The smaller copy is area-averaged in the frame's own dtype (integer frames: rounded to
    a level); the method's windows are then in pixels of the copy.
    """
    if downscale > 1:
        pixels, _ = as_pixels(frame, "frame")
        height, width = pixels.shape[:2]
        size = (max(1, width // downscale), max(1, height // downscale))
        resized = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        frame = resized.reshape(size[1], size[0], *pixels.shape[2:])
    scene: Scene = method.estimate(frame)
    return scene


def dehaze_frames(
    frames: Iterable[ArrayLike],
    method: Method[Any] | None = None,
    *,
    light_weight: float = DEFAULT_LIGHT_WEIGHT,
    light_every: int = 1,
    light_downscale: int = 1,
    outputs: Collection[str] = ALL_OUTPUTS,
) -> Iterator[DehazedFrame]:
    """Dehaze a stream of frames with a temporally smoothed scene (atmospheric light, …).

    Parameters
    ----------
    frames : iterable of ndarray
        RGB (H, W, 3) or gray (H, W) frames, uint8/uint16/float32/float64 (float in
        [0, 1]), all of the same shape. Consumed lazily, one frame at a time.
    method : Method, optional
        Any two-phase method (default ``ClearHaze()``, the library's default): its scene —
        A, and for RobustDCP also the sky-adaptive tolerance K, for ClearHaze the noise
        level — is smoothed with the same weight and schedule. A DarkChannelPrior with a
        fixed ``atmospheric_light`` keeps it.
    light_weight : float, optional
        EMA weight w in (0, 1] of the newest estimate: A_k = (1 − w) A_{k−1} + w Â_k
        (default 0.1; 1 disables smoothing).
    light_every : int, optional
        Re-estimate the scene every this many frames (≥ 1); the frames in between reuse
        the smoothed scene (and skip the estimation).
    light_downscale : int, optional
        Estimate on a copy shrunk by this factor (≥ 1, area averaging; the method's windows
        are then in pixels of the copy); the local stages stay at full resolution.
    outputs : collection of str, optional
        Optional planes of each result (see :meth:`dehaze.DarkChannelPrior.apply`).

    Yields
    ------
    DehazedFrame
        The frame's index, its :class:`~dehaze.DehazeResult` (with the smoothed scene), the
        smoothed scene and the frame's own, unsmoothed estimate.

    Raises
    ------
    ValueError
        If a frame is not a valid image or its shape differs from the first frame's.

    Notes
    -----
    With ``light_weight=1``, ``light_every=1`` and ``light_downscale=1`` every frame is
    recovered exactly as ``method(frame)`` would recover it. The change of the smoothed A
    between consecutive frames is at most ``light_weight`` times the jump of the estimate
    (see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> from dehaze import DarkChannelPrior
    >>> from dehaze.video import dehaze_frames
    >>> rng = np.random.default_rng(0)
    >>> clip = (rng.random((3, 24, 32, 3)) * 0.4 + 0.5).astype(np.float32)
    >>> out = list(dehaze_frames(clip, DarkChannelPrior(guided_radius=8)))
    >>> len(out), out[0].result.image.shape, out[0].result.image.dtype
    (3, (24, 32, 3), dtype('float32'))
    """
    method, weight, every, downscale = _check_options(
        method, light_weight, light_every, light_downscale
    )
    wanted = check_outputs(outputs)
    return _frames(frames, method, weight, every, downscale, wanted)


def _same_shape(index: int, frame: NDArray[Any], shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """Return the clip's frame shape: the first frame's; a frame of another shape is refused."""
    if shape is not None and frame.shape != shape:
        raise ValueError(
            f"frame {index} has shape {frame.shape}; every frame must have the first "
            f"frame's shape {shape}"
        )
    return frame.shape


def _frames(
    frames: Iterable[ArrayLike],
    method: Method[Any],
    weight: float,
    every: int,
    downscale: int,
    outputs: Collection[str] = ALL_OUTPUTS,
) -> Iterator[DehazedFrame]:
    smoothed: Scene | None = None
    shape: tuple[int, ...] | None = None
    for index, frame in enumerate(frames):
        arr = np.asarray(frame)
        shape = _same_shape(index, arr, shape)
        estimate: Scene | None = None
        reestimate = smoothed is None or index % every == 0
        try:
            if isinstance(method, ClearHaze) and downscale == 1:
                estimate, smoothed, result = _clear_frame(
                    method, arr, smoothed, reestimate, weight, outputs
                )
            else:
                if reestimate:
                    estimate = _estimate_frame(arr, method, downscale)
                    smoothed = estimate.blend(smoothed, weight)
                assert smoothed is not None
                result = method.apply(arr, smoothed, outputs=outputs)
        except ValueError as exc:
            raise ValueError(f"frame {index}: {exc}") from exc
        yield DehazedFrame(index=index, result=result, scene=smoothed, estimate=estimate)


def _clear_frame(
    method: ClearHaze,
    frame: NDArray[Any],
    smoothed: Scene | None,
    reestimate: bool,
    weight: float,
    outputs: Collection[str],
) -> tuple[ClearScene | None, ClearScene, DehazeResult]:
    """ClearHaze on one frame with its working image computed once, not twice.

    ``method.estimate`` and ``method.apply`` both average the frame over k × k blocks;
    :meth:`~dehaze.ClearHaze.working_image` once, then the pieces they are made of (the
    estimate from it when ``reestimate``, the working planes with the smoothed scene, the
    full-resolution pass) gives the same frame bit for bit. Returns the frame's own
    estimate (None when not re-estimated), the smoothed scene and the result.
    """
    estimate, scene, work = _clear_scene(method, frame, smoothed, reestimate, weight)
    return estimate, scene, _clear_apply(method, frame, work, scene, outputs)


def _clear_scene(
    method: ClearHaze,
    frame: NDArray[Any],
    smoothed: Scene | None,
    reestimate: bool,
    weight: float,
) -> tuple[ClearScene | None, ClearScene, FloatArray]:
    """Return the estimate, smoothed scene and working image (the in-order part of a frame)."""
    previous = cast(ClearScene | None, smoothed)
    estimate: ClearScene | None = None
    if reestimate or previous is None:
        factor = method.working_factor(frame.shape)
        work = method.working_image(frame, factor)
        estimate = method.estimate_working(work, factor)
        scene = estimate.blend(previous, weight)
        if scene.factor != factor:  # apply averages with the scene's factor
            work = method.working_image(frame, scene.factor)
    else:
        scene = previous
        work = method.working_image(frame, scene.factor)
    return estimate, scene, work


def _clear_apply(
    method: ClearHaze,
    frame: NDArray[Any],
    work: FloatArray,
    scene: ClearScene,
    outputs: Collection[str],
    out: NDArray[Any] | None = None,
) -> DehazeResult:
    """Recover a frame from its working image and smoothed scene (no other frame needed)."""
    planes = method.working_planes(work, scene)
    return method.apply_planes(frame, planes, outputs=outputs, out=out)


def dehaze_video(
    source: StrPath,
    output: StrPath,
    method: Method[Any] | None = None,
    *,
    light_weight: float = DEFAULT_LIGHT_WEIGHT,
    light_every: int = 1,
    light_downscale: int = 1,
    overwrite: bool = False,
    light_log: StrPath | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> VideoSummary:
    """Dehaze a video file into a new file with the same frame rate and size.

    Frames are read with :class:`dehaze.io.VideoReader`, dehazed by :func:`dehaze_frames`
    and written with :class:`dehaze.io.VideoWriter` one at a time, the three stages
    overlapping: a thread decodes and another encodes, each behind a queue of
    :data:`QUEUE_FRAMES` frames, while the calling thread dehazes (and calls ``progress``).
    An error in any stage, or an exception from ``progress``, stops the other two before it
    is raised here; no thread outlives the call. The output goes to a
    temporary file in the target folder that is moved into place at the end, so an
    interrupted run leaves no half-written clip (and a later command-line run in that
    folder removes the temporary file). The clip is written without audio. A frame of odd
    width or height is written one column or row larger, its last one repeated (OpenCV's
    writer would drop it; ``written_size`` of the summary says so).

    Parameters
    ----------
    source : str or path-like
        Input clip (any format OpenCV's FFmpeg backend reads).
    output : str or path-like
        Output clip, a suffix of ``VIDEO_CODECS``. The codec follows the source's where
        OpenCV can write it into this container (an XVID .avi stays XVID, MPEG-4 stays
        ``mp4v``), otherwise the container's defaults in order: H.264 (``avc1``) where
        OpenCV has an encoder for it, else ``mp4v`` for .mp4/.m4v/.mov; ``XVID``, else
        ``MJPG`` for .avi/.mkv (see :func:`dehaze.io.choose_codecs`).
    method : Method, optional
        The method (default ``ClearHaze()``); see :func:`dehaze_frames`.
    light_weight, light_every, light_downscale
        Temporal smoothing of the atmospheric light; see :func:`dehaze_frames`.
    overwrite : bool, optional
        Replace an existing ``output`` (default False: raise FileExistsError). The source
        is never overwritten.
    light_log : str or path-like, optional
        Also write a CSV with one row per frame: ``frame``, the frame's own estimate
        ``estimate_0..C-1`` (empty when not estimated) and the smoothed ``light_0..C-1``
        used (both empty for a method without an atmospheric light, such as AOD-Net);
        written atomically like the clip, refused if it exists unless ``overwrite``.
    progress : callable, optional
        Called after each frame with the number of frames done and the number the
        source reports (0 when it reports none; the count is a container estimate).
    max_pixels : int, optional
        Largest frame width × height accepted (default
        :data:`dehaze.io.DEFAULT_MAX_PIXELS`), checked before the first frame is decoded.

    Returns
    -------
    VideoSummary
        Paths, frame count, fps, size, codecs and time taken.

    Raises
    ------
    FileNotFoundError
        If ``source`` does not exist.
    FileExistsError
        If ``output`` (or ``light_log``) exists and ``overwrite`` is False.
    ValueError
        If ``output`` is the source, its suffix is not in ``VIDEO_CODECS``, the source
        cannot be decoded or reports no frame rate, fewer frames can be decoded than the
        source declares (a truncated clip or a corrupt frame: nothing is written; the
        message gives both counts), the frames are larger than ``max_pixels``, or OpenCV
        cannot open the writer.
    """
    src = Path(source)
    dst = Path(output)
    log_path = None if light_log is None else Path(light_log)
    method, weight, every, downscale = _check_options(
        method, light_weight, light_every, light_downscale
    )
    if not src.is_file():
        raise FileNotFoundError(f"no such video file: {src}")
    if dst.suffix.lower() not in VIDEO_CODECS:
        accepted = ", ".join(VIDEO_CODECS)
        raise ValueError(f"output must end with one of {accepted}, got {dst.name!r}")
    for target in (dst, log_path):
        if target is None:
            continue
        if target.exists() and os.path.samefile(target, src):
            raise ValueError(f"refusing to write over the input {src}")
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        if target.is_dir():  # checked before the clip is decoded, not after
            raise ValueError(f"{target} is a folder; give the file to write")
        blocking = next((p for p in target.parents if p.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise ValueError(f"{target} lies under {blocking}, which is a file, not a folder")

    start = time.perf_counter()
    with VideoReader(src, max_pixels=max_pixels) as reader:
        info = reader.info
        codecs = choose_codecs(info.codec, dst)
        size = (info.width, info.height)
        with VideoWriter(dst, info.fps, size, codecs, overwrite=overwrite) as writer:
            log = None if log_path is None else AtomicFile(log_path, overwrite=overwrite)
            try:
                count = _stream(reader, writer, log, method, weight, every, downscale, progress)
                reader.check_complete()  # a shortfall is an error: nothing is committed
                writer.commit()
                if log is not None:
                    log.commit()
            finally:
                if log is not None:
                    log.discard()
    return VideoSummary(
        source=src,
        output=dst,
        frames=count,
        fps=info.fps,
        width=info.width,
        height=info.height,
        seconds=time.perf_counter() - start,
        codec=writer.codec,
        source_codec=info.codec,
        written_size=None if writer.written_size == size else writer.written_size,
    )


#: Frames held between two stages of :func:`dehaze_video` (decoded ones waiting to be
#: dehazed; dehazed ones waiting to be encoded): enough to absorb a slow frame, few enough
#: that memory stays a dozen or so frames whatever the clip's length (two queues, one frame
#: in each of the reading and writing threads, up to threads + 1 frames being dehazed and
#: as many recycled output buffers: about 16, 100 MB at 1920×1080, 400 MB at 4K).
QUEUE_FRAMES = 4

#: How often (seconds) a stage waiting on a queue looks whether the others have stopped.
_POLL = 0.05

#: Put after the last frame: the stream is complete.
_END = object()


@dataclass(frozen=True)
class _Failure:
    """An exception raised in the reading thread, passed on in the frames' order."""

    error: BaseException


@dataclass(frozen=True)
class _Pending:
    """A frame handed to the dehazing workers (or already dehazed), in the frames' order."""

    index: int
    job: Future[DehazeResult] | DehazeResult
    estimate: Scene | None


def _put(channel: queue.Queue[Any], item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set while waiting for room; return whether it was put."""
    while not stop.is_set():
        try:
            channel.put(item, timeout=_POLL)
        except queue.Full:
            continue
        return True
    return False


def _get(channel: queue.Queue[Any], stop: threading.Event) -> object:
    """Take the next item; ``_END`` if ``stop`` is set while waiting."""
    while not stop.is_set():
        try:
            return channel.get(timeout=_POLL)
        except queue.Empty:
            continue
    return _END


def _decode(frames: Iterator[NDArray[Any]], out: queue.Queue[Any], stop: threading.Event) -> None:
    """Decode ``frames`` into ``out``, then ``_END`` or a ``_Failure`` (the reading thread)."""
    try:
        for frame in frames:
            if not _put(out, frame, stop):
                return
        _put(out, _END, stop)
    except BaseException as exc:  # passed to the dehazing thread, which raises it
        _put(out, _Failure(exc), stop)


def _encode(
    channel: queue.Queue[Any],
    writer: VideoWriter,
    stop: threading.Event,
    errors: list[BaseException],
    done: queue.SimpleQueue[NDArray[Any]] | None,
) -> None:
    """Encode the frames of ``channel`` into ``writer`` until ``_END`` (the writing thread).

    Each frame, once written, goes to ``done`` (if given) to be reused as an output
    buffer. An error is recorded in ``errors`` and stops the other stages (``stop``).
    """
    try:
        while True:
            image = _get(channel, stop)
            if image is _END:
                return
            writer.write(cast(NDArray[Any], image))
            if done is not None:
                done.put(cast(NDArray[Any], image))
    except BaseException as exc:
        errors.append(exc)
        stop.set()


def _frame_workers(method: Method[Any], downscale: int) -> int:
    """Frames :func:`_stream` dehazes at once in worker threads; 0: one at a time, inline.

    ClearHaze's recovery of a frame needs only the frame and its smoothed scene, so with
    the scene found in order the rest runs on several frames at once, one per thread of
    :func:`dehaze.get_num_threads` (each runs its bands in turn: the same bands, so the
    same frames bit for bit, without the hand-overs between threads that several frames
    in flight make unnecessary). Other methods run one frame at a time in the calling
    thread, their bands across the threads.
    """
    if isinstance(method, ClearHaze) and downscale == 1:
        return get_num_threads()
    return 0


def _render(
    method: ClearHaze,
    frame: NDArray[Any],
    work: FloatArray,
    scene: ClearScene,
    out: NDArray[Any],
) -> DehazeResult:
    """Recover one frame into ``out`` (a worker thread of :func:`_stream`)."""
    with serial_bands():
        return _clear_apply(method, frame, work, scene, frozenset(), out)


def _result(job: Future[DehazeResult] | DehazeResult) -> DehazeResult:
    """Wait for a frame's result (in steps, so that Ctrl-C is seen meanwhile)."""
    if not isinstance(job, Future):
        return job
    while True:
        try:
            return job.result(timeout=_POLL)
        except TimeoutError:
            continue


def _light_cells(light: FloatArray | None) -> list[str]:
    """Return the light log's three cells for one A: its values, or empty if it has none."""
    if light is None:
        return ["", "", ""]
    return [f"{v:.6f}" for v in light]


def _stream(
    reader: VideoReader,
    writer: VideoWriter,
    log: AtomicFile | None,
    method: Method[Any],
    weight: float,
    every: int,
    downscale: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Dehaze the reader's frames into the writer (and the light log); return the count.

    Three stages overlap: a thread decodes frames into a bounded queue, the calling thread
    dehazes them in order (and writes the light log, and calls ``progress``), a thread
    encodes them from a second bounded queue (:data:`QUEUE_FRAMES` each). Decoding and
    encoding run inside OpenCV with the GIL released, dehazing in Numba kernels likewise,
    so the three proceed at once. With ClearHaze the calling thread finds each frame's
    smoothed scene, in order, and worker threads recover several frames at once (see
    :func:`_frame_workers`); the results are taken back in order. Frames stay in order
    (one thread per stage, FIFO queues). Output buffers are reused once encoded.

    An error in any stage, or an exception from ``progress`` (the command line's
    KeyboardInterrupt or SIGTERM), stops the others: every thread has ended before this
    function returns or raises, so the reader and writer are never used after they are
    closed, and the error is raised here (a decoding error after the frames before it,
    in order).
    """
    total = reader.info.declared_frames
    count = 0
    stop = threading.Event()
    decoded: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
    dehazed: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
    encoded: queue.SimpleQueue[NDArray[Any]] = queue.SimpleQueue()
    write_errors: list[BaseException] = []
    decoding = threading.Thread(
        target=_decode, args=(reader.frames(), decoded, stop), name="dehaze-video-decode"
    )
    workers = _frame_workers(method, downscale)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="dehaze-video-apply") if workers else None
    encoding = threading.Thread(  # written frames come back only where they are reused
        target=_encode,
        args=(dehazed, writer, stop, write_errors, encoded if pool is not None else None),
        name="dehaze-video-encode",
    )
    pending: deque[_Pending] = deque()

    def check_writer() -> None:
        if write_errors:
            raise write_errors[0]

    def output_buffer(frame: NDArray[Any]) -> NDArray[Any]:
        try:
            buffer = encoded.get_nowait()
        except queue.Empty:
            return np.empty_like(frame)
        if buffer.shape == frame.shape and buffer.dtype == frame.dtype:
            return buffer
        return np.empty_like(frame)

    def finish(log_writer: Any) -> None:
        """Hand the oldest pending frame to the writer, the log and ``progress``."""
        nonlocal count
        item = pending.popleft()
        try:
            result = _result(item.job)
        except ValueError as exc:
            raise ValueError(f"frame {item.index}: {exc}") from exc
        if not _put(dehazed, result.image, stop):
            check_writer()
        if log_writer is not None:
            light = result.atmospheric_light  # None for a method without one (AOD-Net)
            est: FloatArray | None = getattr(item.estimate, "atmospheric_light", None)
            log_writer.writerow([item.index, *_light_cells(est), *_light_cells(light)])
        count += 1
        if progress is not None:
            progress(count, total)

    decoding.start()
    encoding.start()
    try:
        with (
            open(os.devnull if log is None else log.name, "w", newline="", encoding="utf-8") as fh,
            serial_bands() if pool is not None else nullcontext(),
        ):
            log_writer = csv.writer(fh) if log is not None else None
            if log_writer is not None:
                log_writer.writerow(
                    ["frame", "estimate_0", "estimate_1", "estimate_2"]
                    + ["light_0", "light_1", "light_2"]
                )
            smoothed: Scene | None = None
            shape: tuple[int, ...] | None = None
            index = 0
            while True:
                item = _get(decoded, stop)
                if item is _END:
                    check_writer()  # stopped by the writer: its error
                    break
                if isinstance(item, _Failure):
                    while pending:  # the frames decoded before the error, in order
                        finish(log_writer)
                    raise item.error
                frame = cast(NDArray[Any], item)
                shape = _same_shape(index, frame, shape)
                reestimate = smoothed is None or index % every == 0
                estimate: Scene | None = None
                job: Future[DehazeResult] | DehazeResult
                try:
                    if pool is not None:
                        clear = cast(ClearHaze, method)
                        estimate, scene, work = _clear_scene(
                            clear, frame, smoothed, reestimate, weight
                        )
                        smoothed = scene
                        job = pool.submit(_render, clear, frame, work, scene, output_buffer(frame))
                    else:
                        if reestimate:
                            estimate = _estimate_frame(frame, method, downscale)
                            smoothed = estimate.blend(smoothed, weight)
                        assert smoothed is not None
                        job = method.apply(frame, smoothed, outputs=frozenset())
                except ValueError as exc:
                    raise ValueError(f"frame {index}: {exc}") from exc
                pending.append(_Pending(index, job, estimate))
                while len(pending) > workers:  # workers busy and one frame queued
                    finish(log_writer)
                index += 1
            while pending:
                finish(log_writer)
        if not _put(dehazed, _END, stop):
            check_writer()
        while encoding.is_alive():  # every frame encoded (joined in steps: Ctrl-C works)
            encoding.join(_POLL)
        check_writer()
    finally:
        stop.set()  # on an error: the other stages stop at their next frame
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for thread in (decoding, encoding):
            while thread.is_alive():
                thread.join(_POLL)
    return count
