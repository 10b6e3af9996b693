"""Image reading and writing in RGB order (OpenCV is BGR: converted here only)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["imread", "imwrite"]

StrPath = str | os.PathLike[str]


def imread(path: StrPath) -> NDArray[Any]:
    """Read an image file as an RGB (or gray) array in its stored bit depth.

    Parameters
    ----------
    path : str or path-like
        Any format OpenCV reads (PNG, JPEG, BMP, TIFF, ...).

    Returns
    -------
    ndarray
        H×W×3 RGB or H×W gray, uint8 or uint16 as stored. An alpha channel is dropped
        (dehazing does not use it); 16-bit files stay uint16.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be decoded as an image.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such image file: {p}")
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ValueError(f"cannot decode {p} as an image (corrupt or unsupported format)")
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        elif img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif img.shape[2] == 1:
            img = img[:, :, 0]
        else:
            raise ValueError(f"{p} has {img.shape[2]} channels; expected 1, 3 or 4")
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{p} has sample type {img.dtype}; only 8- and 16-bit images are read")
    return np.ascontiguousarray(img)


def _to_storable(image: NDArray[Any], suffix: str) -> NDArray[Any]:
    arr = np.asarray(image)
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        out = arr
    elif arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise ValueError("a float image must be finite and within [0, 1] to be written")
        out = np.rint(arr * 255.0).astype(np.uint8)
    else:
        raise TypeError(f"cannot write an image of dtype {arr.dtype}; use uint8, uint16 or float")
    if out.dtype == np.uint16 and suffix in (".jpg", ".jpeg", ".bmp"):
        raise ValueError(f"{suffix} cannot store 16-bit images; write .png or .tif instead")
    if out.ndim == 3:
        if out.shape[2] != 3:
            raise ValueError(f"image must be H×W or H×W×3, got shape {out.shape}")
        out = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2BGR)
    elif out.ndim != 2:
        raise ValueError(f"image must be H×W or H×W×3, got shape {out.shape}")
    return out


def _umask() -> int:
    """Return the process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # pragma: no cover - not Linux
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def imwrite(path: StrPath, image: NDArray[Any], *, overwrite: bool = False) -> Path:
    """Write an RGB (or gray) image atomically.

    The image is encoded in memory, written to a temporary file in the target folder and
    renamed into place, so an interrupted write never leaves a half-written file.

    Parameters
    ----------
    path : str or path-like
        Target file; the format follows the suffix (.png, .jpg, .bmp, .tif, ...).
    image : ndarray
        H×W×3 RGB or H×W gray; uint8, uint16, or float in [0, 1] (stored as 8-bit).
    overwrite : bool, optional
        Replace an existing file (default False: raise FileExistsError).

    Returns
    -------
    Path
        The written path.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    suffix = p.suffix.lower()
    storable = _to_storable(image, suffix)
    try:
        ok, encoded = cv2.imencode(suffix, storable)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"OpenCV cannot encode images as {suffix!r}")
    write_bytes_atomic(p, encoded.tobytes(), overwrite=overwrite)
    return p


def write_bytes_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder (internal).

    The file appears whole or not at all, with the mode a plain ``open()`` would give it.
    Without ``overwrite`` it is linked into place, which fails if ``path`` exists (also if
    another writer created it meanwhile); callers check existence first for a clear error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if overwrite:
            os.replace(tmp_name, path)
        else:
            # link fails if the target appeared meanwhile: never clobber another writer
            os.link(tmp_name, path)
            os.unlink(tmp_name)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
