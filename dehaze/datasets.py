"""Hazy/clear image pairs from user-given folders: RESIDE SOTS and O-HAZE layouts.

No data ships with the package: point these readers at a folder you downloaded.

**SOTS** (RESIDE, Li et al. 2019) — a folder holding ``hazy/`` and ``gt/`` (or ``clear/``):

* indoor: hazy ``{ID}_{k}.png`` pairs with clear ``{ID}.png`` (ten haze levels k per scene);
* outdoor: hazy ``{ID}_{A}_{beta}.jpg`` pairs with clear ``{ID}.png`` or ``{ID}.jpg``.

**O-HAZE** (Ancuti et al. 2018) — hazy ``{NN}_outdoor_hazy.jpg`` pairs with clear
``{NN}_outdoor_GT.jpg``, in ``hazy/`` + ``GT/`` (or ``gt/``, ``clear/``) subfolders or side
by side in one folder. (I-HAZE's ``{NN}_indoor_hazy``/``{NN}_indoor_GT`` names pair too.)

A clear image larger than its hazy image is cropped to the hazy size (RESIDE's hazy
images are the clear ones with a border removed: SOTS-indoor ground truth is often
distributed at 640×480 beside 620×460 hazy images); the crop is centred by default, as
the FFA-Net family of evaluation scripts does (``torchvision CenterCrop``).

Nothing is dropped silently. A hazy image without its clear image, a clear image given
twice (``1400.png`` and ``1400.jpg``), an image file whose name does not follow the layout,
or a file that cannot be decoded raises an error naming the file — or, with
``strict=False``, is recorded in :attr:`PairSet.skipped` / reported through ``on_skip`` with
the reason. Files that are not images by their suffix (``pairs.csv``, ``README.txt``) are
not pairs; they are listed in ``skipped`` too. Hidden files (``.DS_Store``) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from dehaze._validate import check_choice
from dehaze.io import IMAGE_SUFFIXES, StrPath, imread, split_alpha

__all__ = [
    "CROP_MODES",
    "IMAGE_SUFFIXES",
    "ImagePair",
    "PairSet",
    "Skipped",
    "iter_loaded",
    "load_pair",
    "ohaze_pairs",
    "sots_pairs",
]

# IMAGE_SUFFIXES (file suffixes read as images, case-insensitive) is dehaze.io's list
#: Accepted values of ``load_pair(..., crop=...)``.
CROP_MODES = ("center", "top-left")

#: Folder names accepted for the clear (ground-truth) images, case-insensitive.
_CLEAR_DIR_NAMES = ("gt", "clear")

_SOTS_INDOOR = re.compile(r"^(?P<id>[^_]+)_(?P<level>\d+)$")
_SOTS_OUTDOOR = re.compile(r"^(?P<id>[^_]+)_(?P<light>\d+(?:\.\d+)?)_(?P<beta>\d+(?:\.\d+)?)$")
_OHAZE_HAZY = re.compile(r"^(?P<prefix>.+)_hazy$", re.IGNORECASE)
_OHAZE_CLEAR = re.compile(r"^(?P<prefix>.+)_gt$", re.IGNORECASE)


@dataclass(frozen=True)
class ImagePair:
    """One hazy image and its clear (ground-truth) image.

    Attributes
    ----------
    name : str
        The hazy file's stem, unique within its set (e.g. ``"1400_6"``).
    hazy, clear : Path
        The two files.
    split : str
        Label of the set the pair belongs to (e.g. ``"indoor"``, ``"outdoor"``, ``"ohaze"``).
    """

    name: str
    hazy: Path
    clear: Path
    split: str


@dataclass(frozen=True)
class Skipped:
    """A file that is not part of any pair, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class PairSet:
    """The pairs found in one folder, in a stable (natural) order, and what was skipped.

    Iterating yields the :class:`ImagePair` objects; ``len`` is their number.

    Attributes
    ----------
    root : Path
        The folder that was read.
    split : str
        The label given to every pair.
    pairs : tuple of ImagePair
        The pairs.
    skipped : tuple of Skipped
        Files that are not pairs, with the reason (non-image files always; problems only
        when read with ``strict=False``, otherwise they raise).
    """

    root: Path
    split: str
    pairs: tuple[ImagePair, ...]
    skipped: tuple[Skipped, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[ImagePair]:
        return iter(self.pairs)


def _natural_key(path: Path) -> list[Any]:
    """Sort key that orders ``1400_2`` before ``1400_10``."""
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(p) if p.isdigit() else p for p in parts]


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _visible_files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
        key=_natural_key,
    )


def _check_folder(folder: StrPath, name: str) -> Path:
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{name}: no such folder: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"{name}: {root} is not a folder")
    return root


def _subfolder(root: Path, names: tuple[str, ...], what: str) -> Path | None:
    """Return the one subfolder of ``root`` named (any case) as in ``names``, or None."""
    found = [p for p in root.iterdir() if p.is_dir() and p.name.lower() in names]
    if len(found) > 1:
        listed = ", ".join(sorted(p.name for p in found))
        raise ValueError(f"{root} has several {what} folders ({listed}); keep only one")
    return found[0] if found else None


class _Collector:
    """Gathers problems: raises them when strict, records them as skips otherwise."""

    def __init__(self, strict: bool) -> None:
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be True or False, got {strict!r}")
        self.strict = strict
        self.skipped: list[Skipped] = []

    def note(self, path: Path, reason: str) -> None:
        """Record a file that is not a pair but is not a problem either."""
        self.skipped.append(Skipped(path, reason))

    def problem(self, path: Path, reason: str, error: type[Exception] = ValueError) -> None:
        """Raise ``error`` naming ``path`` when strict; otherwise record a skip."""
        if self.strict:
            raise error(f"{path}: {reason} (pass strict=False to skip such files)")
        self.skipped.append(Skipped(path, reason))


def _index_by_stem(files: Iterable[Path]) -> dict[str, list[Path]]:
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        if _is_image(path):
            by_stem.setdefault(path.stem, []).append(path)
    return by_stem


def _clear_for(
    hazy: Path, key: str, clear_index: dict[str, list[Path]], where: Path, collector: _Collector
) -> Path | None:
    candidates = clear_index.get(key, [])
    if not candidates:
        collector.problem(hazy, f"no clear image {key}.png (or .jpg) in {where}", FileNotFoundError)
        return None
    if len(candidates) > 1:
        listed = ", ".join(p.name for p in candidates)
        collector.problem(hazy, f"several clear images match it in {where}: {listed}")
        return None
    return candidates[0]


def sots_pairs(folder: StrPath, *, split: str | None = None, strict: bool = True) -> PairSet:
    """Find the RESIDE SOTS pairs in a folder with ``hazy/`` and ``gt/`` (or ``clear/``).

    Parameters
    ----------
    folder : str or path-like
        E.g. ``SOTS/indoor`` or ``SOTS/outdoor`` of the RESIDE release.
    split : str, optional
        Label for the pairs; the folder's name by default.
    strict : bool, optional
        True (default): any problem raises, naming the file. False: problem files are
        skipped and listed in :attr:`PairSet.skipped`.

    Returns
    -------
    PairSet
        Pairs in natural order of the hazy names.

    Raises
    ------
    FileNotFoundError
        If the folder or its ``hazy/`` or ``gt/``/``clear/`` subfolder is missing, or (strict)
        a hazy image has no clear image.
    ValueError
        If (strict) a hazy image's name matches neither ``{ID}_{k}`` nor
        ``{ID}_{A}_{beta}``, or its clear image is ambiguous; or no hazy image is found.

    Examples
    --------
    >>> from dehaze.datasets import sots_pairs
    >>> pairs = sots_pairs("SOTS/indoor")  # doctest: +SKIP
    >>> pairs.pairs[0].hazy.name, pairs.pairs[0].clear.name  # doctest: +SKIP
    ('1400_1.png', '1400.png')
    """
    root = _check_folder(folder, "folder")
    collector = _Collector(strict)
    hazy_dir = _subfolder(root, ("hazy",), "hazy")
    clear_dir = _subfolder(root, _CLEAR_DIR_NAMES, "clear-image (gt/clear)")
    if hazy_dir is None or clear_dir is None:
        missing = "hazy/" if hazy_dir is None else "gt/ (or clear/)"
        raise FileNotFoundError(
            f"{root} has no {missing} folder; a SOTS folder holds hazy/ and gt/ (or clear/)"
        )
    label = split if split is not None else root.resolve().name
    clear_index = _index_by_stem(_visible_files(clear_dir))
    pairs: list[ImagePair] = []
    for hazy in _visible_files(hazy_dir):
        if not _is_image(hazy):
            collector.note(hazy, f"not an image file (suffix {hazy.suffix or 'none'!r})")
            continue
        match = _SOTS_INDOOR.match(hazy.stem) or _SOTS_OUTDOOR.match(hazy.stem)
        if match is None:
            collector.problem(
                hazy, "name matches neither SOTS pattern {ID}_{k} nor {ID}_{A}_{beta}"
            )
            continue
        clear = _clear_for(hazy, match["id"], clear_index, clear_dir, collector)
        if clear is not None:
            pairs.append(ImagePair(hazy.stem, hazy, clear, label))
    if not pairs and not collector.skipped:
        raise ValueError(f"no hazy images found in {hazy_dir}")
    return PairSet(root, label, tuple(pairs), tuple(collector.skipped))


def ohaze_pairs(folder: StrPath, *, split: str | None = None, strict: bool = True) -> PairSet:
    """Find O-HAZE style pairs: ``{NN}_outdoor_hazy.jpg`` ↔ ``{NN}_outdoor_GT.jpg``.

    Parameters
    ----------
    folder : str or path-like
        A folder with ``hazy/`` and ``GT/`` (or ``gt/``, ``clear/``) subfolders, or with
        both kinds of file side by side.
    split : str, optional
        Label for the pairs; the folder's name by default.
    strict : bool, optional
        As in :func:`sots_pairs`.

    Returns
    -------
    PairSet
        Pairs in natural order of the hazy names.

    Raises
    ------
    FileNotFoundError
        If the folder is missing or (strict) a hazy image has no ``*_GT`` partner.
    ValueError
        If (strict) an image's name ends in neither ``_hazy`` nor ``_GT``, a partner is
        ambiguous, or no hazy image is found.
    """
    root = _check_folder(folder, "folder")
    collector = _Collector(strict)
    hazy_dir = _subfolder(root, ("hazy",), "hazy")
    clear_dir = _subfolder(root, _CLEAR_DIR_NAMES, "clear-image (GT/gt/clear)")
    if (hazy_dir is None) != (clear_dir is None):
        missing = "hazy/" if hazy_dir is None else "GT/ (or gt/, clear/)"
        raise FileNotFoundError(f"{root} has no {missing} folder beside the other one")
    hazy_files = _visible_files(hazy_dir if hazy_dir is not None else root)
    clear_files = _visible_files(clear_dir) if clear_dir is not None else hazy_files
    label = split if split is not None else root.resolve().name
    clear_index: dict[str, list[Path]] = {}
    for path in clear_files:
        found = _OHAZE_CLEAR.match(path.stem)
        if found and _is_image(path):
            clear_index.setdefault(found["prefix"], []).append(path)
    pairs: list[ImagePair] = []
    for hazy in hazy_files:
        if not _is_image(hazy):
            collector.note(hazy, f"not an image file (suffix {hazy.suffix or 'none'!r})")
            continue
        match = _OHAZE_HAZY.match(hazy.stem)
        if match is None:
            if clear_dir is None and _OHAZE_CLEAR.match(hazy.stem):
                continue  # a clear image in a flat folder
            collector.problem(hazy, "name does not follow the O-HAZE pattern {NN}_..._hazy")
            continue
        prefix = match["prefix"]
        candidates = clear_index.get(prefix, [])
        if len(candidates) != 1:
            where = clear_dir if clear_dir is not None else root
            if candidates:
                listed = ", ".join(p.name for p in candidates)
                collector.problem(hazy, f"several clear images match it in {where}: {listed}")
            else:
                collector.problem(
                    hazy, f"no clear image {prefix}_GT.<ext> in {where}", FileNotFoundError
                )
            continue
        pairs.append(ImagePair(hazy.stem, hazy, candidates[0], label))
    if not pairs and not collector.skipped:
        raise ValueError(f"no *_hazy images found in {hazy_dir if hazy_dir else root}")
    return PairSet(root, label, tuple(pairs), tuple(collector.skipped))


def load_pair(pair: ImagePair, *, crop: str = "center") -> tuple[NDArray[Any], NDArray[Any]]:
    """Read a pair as arrays of the same shape: ``(hazy, clear)``.

    Parameters
    ----------
    pair : ImagePair
        The pair to read.
    crop : {"center", "top-left"}, optional
        Where to cut a clear image that is larger than the hazy one: centred (default;
        RESIDE removes an equal border) or from the top-left corner.

    Returns
    -------
    hazy, clear : ndarray
        RGB (or gray) arrays in their stored dtype (uint8 or uint16), same shape.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If a file cannot be decoded, has an alpha channel (scores compare colours; an
        alpha channel is refused, not dropped), the two images differ in channel count, or
        the clear image is smaller than the hazy one in some dimension.
    """
    if not isinstance(pair, ImagePair):
        raise TypeError(f"pair must be an ImagePair, got {type(pair).__name__}")
    check_choice(crop, "crop", CROP_MODES)
    hazy = imread(pair.hazy)
    clear = imread(pair.clear)
    for path, image in ((pair.hazy, hazy), (pair.clear, clear)):
        if split_alpha(image)[1] is not None:
            raise ValueError(f"{path} has an alpha channel; evaluation images must be RGB or gray")
    if hazy.ndim != clear.ndim or hazy.shape[2:] != clear.shape[2:]:
        raise ValueError(
            f"{pair.hazy} has shape {hazy.shape} but its clear image {pair.clear} has shape "
            f"{clear.shape}: the channel counts differ"
        )
    height, width = hazy.shape[:2]
    c_height, c_width = clear.shape[:2]
    if c_height < height or c_width < width:
        raise ValueError(
            f"the clear image {pair.clear} ({c_width}×{c_height}) is smaller than its hazy "
            f"image {pair.hazy} ({width}×{height}); only a larger clear image can be cropped"
        )
    if (c_height, c_width) != (height, width):
        if crop == "center":
            top, left = (c_height - height) // 2, (c_width - width) // 2
        else:
            top, left = 0, 0
        clear = clear[top : top + height, left : left + width]
    return hazy, clear


def iter_loaded(
    pairs: Iterable[ImagePair],
    *,
    strict: bool = True,
    crop: str = "center",
    on_skip: Callable[[Skipped], None] | None = None,
) -> Iterator[tuple[ImagePair, NDArray[Any], NDArray[Any]]]:
    """Read pairs one at a time: yields ``(pair, hazy, clear)``.

    Parameters
    ----------
    pairs : iterable of ImagePair
        E.g. a :class:`PairSet`.
    strict : bool, optional
        True (default): a pair that cannot be read raises (the error names the file).
        False: it is skipped and reported to ``on_skip``.
    crop : {"center", "top-left"}, optional
        See :func:`load_pair`.
    on_skip : callable, optional
        Called with a :class:`Skipped` for every pair skipped when ``strict`` is False.

    Yields
    ------
    pair : ImagePair
    hazy, clear : ndarray
        As returned by :func:`load_pair`.
    """
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be True or False, got {strict!r}")
    check_choice(crop, "crop", CROP_MODES)
    for pair in pairs:
        try:
            hazy, clear = load_pair(pair, crop=crop)
        except (OSError, ValueError) as exc:
            if strict:
                raise
            if on_skip is not None:
                on_skip(Skipped(pair.hazy, str(exc)))
            continue
        yield pair, hazy, clear
