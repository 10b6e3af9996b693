"""The one atomic writer: a temporary file beside the target, then link or replace.

Every file ``dehaze`` writes (images, videos, CSV logs, benchmark results, converted
weights, example figures) goes through :class:`AtomicFile`: the data is written to
``.NAME.XXXXXXXX.part[SUFFIX]`` in the target's folder and moved into place only when
complete, so a reader never sees a half-written file and an interrupted run leaves at most
a temporary file, which :func:`remove_stale_parts` cleans up on a later run.

The temporary file is created with ``os.open(O_CREAT | O_EXCL, 0o666)``, so the kernel
applies the process umask itself: the result gets the mode a plain ``open()`` would give
it, without reading or toggling the process-wide umask (``os.umask`` is not thread-safe).
"""

from __future__ import annotations

import os
import random
import re
import string
from pathlib import Path
from types import TracebackType

__all__ = ["AtomicFile", "remove_stale_parts", "write_bytes_atomic"]

_NAME_CHARS = string.ascii_lowercase + string.digits + "_"
_RANDOM = random.SystemRandom()

#: Temporary files of this tool: ``.NAME.XXXXXXXX.part`` or ``.NAME.XXXXXXXX.part.EXT``
#: (the same shape :func:`tempfile.mkstemp` gave them in earlier versions).
_PART_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.part(\.[A-Za-z0-9]{1,8})?$")


def _name_max(folder: Path) -> int:
    """Return the longest file name, in bytes, that ``folder``'s file system accepts (or 255)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no answer
        return 255


def _part_name(target_name: str, token: str, suffix: str, limit: int) -> str:
    """``.NAME.TOKEN.partSUFFIX``, with NAME cut (whole characters) to fit ``limit`` bytes.

    A target whose own name is close to the file system's limit (255 bytes on most) is
    valid, but the 16 or so characters the temporary name adds would not be: the name is
    shortened, never the token or the suffix, so :func:`remove_stale_parts` still knows it.
    """
    tail = f".{token}.part{suffix}"
    room = limit - 1 - len(os.fsencode(tail))  # 1: the leading dot
    head = target_name
    while head and len(os.fsencode(head)) > room:
        head = head[:-1]
    return f".{head or '_'}{tail}"


def _create_beside(target: Path, suffix: str) -> str:
    """Create an empty, new temporary file beside ``target`` and return its name."""
    limit = _name_max(target.parent)
    for _ in range(100):
        token = "".join(_RANDOM.choices(_NAME_CHARS, k=8))
        name = os.path.join(target.parent, _part_name(target.name, token, suffix, limit))
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return name
    raise FileExistsError(f"cannot create a temporary file beside {target}")  # pragma: no cover


class AtomicFile:
    """A new temporary file beside ``target`` that becomes ``target`` when committed.

    Parameters
    ----------
    target : Path
        The file to produce. Its folder is created if missing.
    overwrite : bool
        Replace an existing ``target`` (``os.replace``). Without it the finished file is
        hard-linked into place, which fails with FileExistsError if ``target`` exists,
        also if another writer created it meanwhile: nothing is ever clobbered.
    suffix : str, optional
        Appended to the temporary name (``".mp4"``: writers that pick the format from the
        name, such as :class:`cv2.VideoWriter`, need it).

    Notes
    -----
    ``name`` exists from the start (empty, mode ``0o666 & ~umask``) and may be opened and
    truncated by name. As a context manager the file is committed when the block ends
    normally and removed when it raises; :meth:`discard` removes it explicitly.
    """

    def __init__(self, target: Path, *, overwrite: bool, suffix: str = "") -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.name = _create_beside(self.target, suffix)
        self._open = True

    def commit(self) -> None:
        """Move the temporary file into place (once; later calls do nothing)."""
        if not self._open:
            return
        try:
            if self.overwrite:
                os.replace(self.name, self.target)
            else:
                os.link(self.name, self.target)  # fails if the target appeared meanwhile
                os.unlink(self.name)
        except FileExistsError:
            self.discard()  # the message names the target, not our temporary file
            raise FileExistsError(
                f"{self.target} exists (created meanwhile by another writer); pass "
                "overwrite=True to replace it"
            ) from None
        except BaseException:
            self.discard()
            raise
        self._open = False

    def discard(self) -> None:
        """Remove the temporary file if it is still there."""
        self._open = False
        if os.path.lexists(self.name):
            os.unlink(self.name)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def write_bytes_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through :class:`AtomicFile` (internal).

    The file appears whole or not at all, with the mode a plain ``open()`` would give it.
    Without ``overwrite`` it is linked into place, which fails if ``path`` exists (also if
    another writer created it meanwhile); callers check existence first for a clear error.
    """
    with AtomicFile(Path(path), overwrite=overwrite) as tmp:
        with open(tmp.name, "wb") as fh:
            fh.write(data)


def remove_stale_parts(folder: Path, older_than: float) -> list[Path]:
    """Remove this tool's temporary files in ``folder`` last modified before ``older_than``.

    Parameters
    ----------
    folder : Path
        Only this folder is looked at, not its subfolders; a missing folder has none.
    older_than : float
        A time stamp (``time.time()`` scale); files modified at or after it are kept, so
        a run passing its own start time never removes the files of a run still writing.

    Returns
    -------
    list of Path
        The files removed (those that vanished meanwhile or could not be removed are not
        listed).
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not _PART_NAME.match(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_mtime >= older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed
