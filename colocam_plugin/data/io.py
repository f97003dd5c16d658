"""Reading the files dataset trees are made of, with one-line errors.

Every reader here turns whatever PIL, scipy or the text parser raises into a
:class:`~colocam_plugin.errors.DataError` whose message starts with the path
(and ``:line`` for text files), so a bad tree never surfaces as a traceback
from deep inside a library. It also holds the box repair shared by all YouTube
Objects readers (clamp negatives to 0, swap reversed corners, clip to
``W-1``/``H-1``) and the assembly of a shot's records (:func:`make_shot`).

Frame readability is checked at load time by parsing the image header only
(a JPEG frame-header parser, PIL for other files; a whole train-split load
costs ~20-30 µs a frame on a warm cache, so ~15 s for the 570k frames of
YTO v1.0); that catches missing, empty, garbage and non-image files and
gives the size used to clip boxes. A JPEG whose header is intact but whose
data is truncated is only caught when it is decoded, by :func:`read_image`
(which the training loaders call), again as a ``DataError`` naming the file,
or by :func:`check_image_complete` (the end-of-image marker in the file's
last KiB; what ``colocam data-info`` runs on every frame).
PIL's ``verify()`` is not used: it checks nothing for JPEG.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from colocam_plugin.data.records import FrameRecord, Shot
from colocam_plugin.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "STAT_KEYS",
    "add_shot",
    "boxes_from_array",
    "check_frame",
    "check_image_complete",
    "image_size",
    "list_frames",
    "load_mat",
    "make_shot",
    "new_stats",
    "parse_number",
    "read_csv_rows",
    "read_image",
    "read_text_lines",
    "repair_boxes",
]

logger = logging.getLogger("colocam_plugin.data")

_SIDECAR = re.compile(r"\.(jpe?g|png)_", re.IGNORECASE)

#: file name suffixes (lower case) that count as frames
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")

#: counters every loader reports in ``VideoDataset.stats`` (others may be added)
STAT_KEYS: tuple[str, ...] = (
    "boxes_swapped",
    "boxes_clamped",
    "boxes_clipped",
    "empty_shots",
    "unreadable_frames",
)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 120:
        first = first[:117] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def new_stats(*extra: str) -> dict[str, int]:
    """Zeroed counters: :data:`STAT_KEYS` plus ``extra`` keys.

    Examples:
        >>> new_stats("shared_boundary_frames")["shared_boundary_frames"]
        0
    """
    return dict.fromkeys((*STAT_KEYS, *extra), 0)


# ----------------------------------------------------------------------------- images


_JPEG_SOF = frozenset(
    (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
)


def _sof_size(data: bytes) -> tuple[int, int] | bool | None:
    """Size from the first SOF marker in ``data``; ``True``: need more bytes; ``None``: odd."""
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or a scan before any frame header
            return None
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return True
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return (width, height) if width and height else None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return None
        i += 2 + length
    return True


def _jpeg_size(path: Path) -> tuple[int, int] | None:
    """Size from the frame header of a JPEG, or ``None`` to let PIL decide.

    Several times cheaper than ``PIL.Image.open``; any oddity (no SOI, a scan
    before the frame header, a header past the first 64 KiB) returns ``None``.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(4096)
            found = _sof_size(data)
            if found is True and len(data) == 4096:
                found = _sof_size(data + fh.read(65536 - 4096))
    except OSError:
        return None
    return found if isinstance(found, tuple) else None


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image, from its header (no full decode).

    JPEG frame headers are parsed directly (the common, large case); other
    files, and JPEGs that parser cannot vouch for, go through ``PIL.Image.open``.

    Raises:
        DataError: the file is missing or is not a readable image; the
            message starts with the path.
    """
    path = Path(path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        size = _jpeg_size(path)
        if size is not None:
            return size
    try:
        with Image.open(path) as im:
            width, height = im.size
    except FileNotFoundError:
        raise DataError(f"{path}: frame file not found") from None
    except Exception as exc:  # PIL raises many types for bad files
        raise DataError(f"{path}: not a readable image ({_short(exc)})") from None
    if width <= 0 or height <= 0:
        raise DataError(f"{path}: image has size {width}x{height}")
    return int(width), int(height)


def check_frame(
    path: Path, *, skip_unreadable: bool, stats: dict[str, int]
) -> tuple[int, int] | None:
    """Header-check one frame: its size, or ``None`` if skipped.

    With ``skip_unreadable`` an unreadable frame increments
    ``stats["unreadable_frames"]`` and returns ``None``; otherwise the
    :class:`DataError` of :func:`image_size` propagates.
    """
    try:
        return image_size(path)
    except DataError:
        if not skip_unreadable:
            raise
        stats["unreadable_frames"] = stats.get("unreadable_frames", 0) + 1
        logger.debug("skipping unreadable frame %s", path)
        return None


#: bytes at the end of a file searched for its end marker
_TAIL = 1024


def check_image_complete(path: str | Path) -> None:
    """Raise unless the image file ends as a whole JPEG or PNG file does.

    A JPEG must hold its end-of-image marker (``FF D9``) in its last KiB (the
    entropy-coded data cannot contain it, so a file cut short has none), a
    PNG its ``IEND`` chunk; other formats are not checked. Two small reads,
    no decoding: cheap enough for every frame of a dataset.

    Raises:
        DataError: ``"PATH: truncated image (no JPEG end-of-image marker)"``,
            or the file is missing or unreadable.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = Path(tmp.name) / "f.jpg"
        >>> Image.new("RGB", (8, 8)).save(p)
        >>> check_image_complete(p)
        >>> _ = p.write_bytes(p.read_bytes()[:-40])
        >>> check_image_complete(p)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        colocam_plugin.errors.DataError: .../f.jpg: truncated image (no JPEG end-of-image marker)
        >>> tmp.cleanup()
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            size = fh.seek(0, 2)
            fh.seek(max(0, size - _TAIL))
            tail = fh.read(_TAIL)
    except FileNotFoundError:
        raise DataError(f"{path}: frame file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_short(exc)})") from None
    if head[:2] == b"\xff\xd8" and b"\xff\xd9" not in tail:
        raise DataError(f"{path}: truncated image (no JPEG end-of-image marker)")
    if head == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail:
        raise DataError(f"{path}: truncated image (no PNG IEND chunk)")


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB.

    Args:
        path: image file (any format PIL reads; grey and RGBA are converted).

    Returns:
        ``(H, W, 3)`` ``uint8`` array, values in [0, 255].

    Raises:
        DataError: missing, truncated or corrupt file; names the file.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = Path(tmp.name) / "f.png"
        >>> Image.new("RGB", (5, 3), (255, 0, 0)).save(p)
        >>> img = read_image(p)
        >>> img.shape, img.dtype.name, img[0, 0].tolist()
        ((3, 5, 3), 'uint8', [255, 0, 0])
        >>> tmp.cleanup()
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{path}: frame file not found") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot decode image ({_short(exc)})") from None
    return np.asarray(rgb, dtype=np.uint8)


def list_frames(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name (suffixes :data:`IMAGE_EXTENSIONS`).

    Side-car files named after a frame (``frame0001.jpg_mask.png``,
    ``frame0001.jpg_sticks.mat``) are not frames.

    Raises:
        DataError: ``folder`` is missing or not a folder.
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot list folder ({_short(exc)})") from None
    frames = [
        p
        for p in entries
        if p.suffix.lower() in IMAGE_EXTENSIONS and not _SIDECAR.search(p.name) and p.is_file()
    ]
    return sorted(frames, key=lambda p: p.name)


# ----------------------------------------------------------------------------- .mat


def load_mat(path: Path, names: Sequence[str] = ()) -> dict[str, Any]:
    """Variables of a MATLAB (v4-v7.2) file, via :func:`scipy.io.loadmat`.

    Args:
        path: the ``.mat`` file.
        names: variables that must be present.

    Returns:
        ``{name: value}`` without scipy's ``__header__``-style entries.

    Raises:
        DataError: missing, truncated or garbage file, a v7.3 (HDF5) file, or
            a required variable absent; the message starts with the path.
    """
    import scipy.io

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        raw = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(
            f"{path}: MATLAB v7.3 (HDF5) file; re-save it with save(..., '-v7')"
        ) from None
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, ...
        raise DataError(f"{path}: not a readable MATLAB file ({_short(exc)})") from None
    out = {k: v for k, v in raw.items() if not k.startswith("__")}
    for name in names:
        if name not in out:
            found = ", ".join(sorted(out)) or "none"
            raise DataError(f"{path}: no variable {name!r} (variables: {found})")
    return out


def _as_box_rows(value: Any, where: str) -> np.ndarray:
    if np.iscomplexobj(value):  # float64 casting would drop the imaginary part silently
        raise DataError(f"{where}: expected real numbers, got dtype {np.asarray(value).dtype}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: expected numbers, got {value!r:.60}") from None
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 4:
        return arr
    if arr.size == 4 and (arr.ndim == 1 or 1 in arr.shape):
        return arr.reshape(1, 4)
    raise DataError(f"{where}: expected [x0 y0 x1 y1] boxes, got shape {arr.shape}")


def boxes_from_array(value: Any, where: str) -> np.ndarray:
    """Boxes from a MATLAB cell array or numeric array.

    Accepts a cell array (object array) of shape ``(1, k)``, ``(k, 1)`` or
    ``(k,)`` whose elements are ``(1, 4)``, ``(4,)``, ``(4, 1)`` or ``(m, 4)``
    (an empty element adds no box), and a numeric ``(k, 4)``, ``(1, 4)`` or
    ``(4,)`` array. An empty array gives zero boxes.

    Args:
        value: what :func:`scipy.io.loadmat` returned for the variable.
        where: prefix of error messages (``"path: variable 'coor'"``).

    Returns:
        ``(k, 4)`` ``float64`` array of ``[x0, y0, x1, y1]``, not repaired.

    Raises:
        DataError: another shape, or non-finite/non-numeric values.

    Examples:
        >>> cell = np.empty((1, 2), dtype=object)
        >>> cell[0, 0] = np.array([[1.0, 2, 3, 4]]); cell[0, 1] = np.array([5.0, 6, 7, 8])
        >>> boxes_from_array(cell, "coor").tolist()
        [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]
        >>> boxes_from_array(np.zeros((0, 0), dtype=object), "coor").shape
        (0, 4)
    """
    arr = np.asarray(value)
    if arr.dtype == object:
        if arr.size and arr.ndim > 1 and sorted(arr.shape)[-2] != 1:
            raise DataError(f"{where}: expected a (1, k) or (k, 1) cell array, got {arr.shape}")
        parts = [_as_box_rows(v, where) for v in arr.ravel()]
        boxes = np.concatenate(parts) if parts else np.zeros((0, 4))
    else:
        boxes = _as_box_rows(arr, where)
    boxes = np.ascontiguousarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not np.isfinite(boxes).all():
        raise DataError(f"{where}: non-finite box coordinates {boxes.tolist()}")
    return boxes


# ----------------------------------------------------------------------------- boxes


def repair_boxes(
    boxes: np.ndarray, size: tuple[int, int], stats: dict[str, int] | None = None
) -> np.ndarray:
    """Repair boxes of one frame: clamp negatives, swap reversed, clip to the image.

    Each kind of repair is counted once per box in ``stats``
    (``"boxes_clamped"``, ``"boxes_swapped"``, ``"boxes_clipped"``). The three
    steps commute, so the order does not matter.

    Args:
        boxes: ``(k, 4)`` ``[x0, y0, x1, y1]`` pixels, 0-based, inclusive.
        size: ``(width, height)`` of the frame.
        stats: counters updated in place, if given.

    Returns:
        New ``(k, 4)`` ``float64`` array with ``0 <= x0 <= x1 <= W-1`` and
        ``0 <= y0 <= y1 <= H-1``.

    Examples:
        >>> stats = {}
        >>> repair_boxes(np.array([[30.0, -2, 10, 60]]), (64, 48), stats).tolist()
        [[10.0, 0.0, 30.0, 47.0]]
        >>> sorted(stats.items())
        [('boxes_clamped', 1), ('boxes_clipped', 1), ('boxes_swapped', 1)]
    """
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    width, height = size
    if stats is None:
        stats = {}
    swapped = (b[:, 0] > b[:, 2]) | (b[:, 1] > b[:, 3])
    clamped = (b < 0).any(axis=1)
    lim = np.array([width - 1, height - 1, width - 1, height - 1], dtype=np.float64)
    clipped = (b > lim).any(axis=1)
    x = np.sort(b[:, [0, 2]], axis=1)
    y = np.sort(b[:, [1, 3]], axis=1)
    out = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)
    out = np.minimum(np.maximum(out, 0.0), lim)
    for key, mask in (
        ("boxes_swapped", swapped),
        ("boxes_clamped", clamped),
        ("boxes_clipped", clipped),
    ):
        stats[key] = stats.get(key, 0) + int(mask.sum())
    return out


# ----------------------------------------------------------------------------- text


def read_text_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a UTF-8 text file, stripped, with 1-based line numbers.

    Raises:
        DataError: missing or undecodable file.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read text ({_short(exc)})") from None
    return [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip()]


def read_csv_rows(path: Path, header: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file whose first line is exactly ``header``.

    Blank lines are skipped; cells are stripped of spaces.

    Returns:
        ``[(line_number, {column: cell})]``.

    Raises:
        DataError: missing file, other header, or a row with another number
            of cells (``"path:line: ..."``).
    """
    lines = read_text_lines(path)
    if not lines:
        raise DataError(f"{path}: empty file; expected header {','.join(header)!r}")
    table = list(csv.reader([s for _, s in lines]))
    head = [c.strip().lower() for c in table[0]]
    if head != list(header):
        raise DataError(
            f"{path}:{lines[0][0]}: expected header {','.join(header)!r}, got {lines[0][1]!r}"
        )
    rows: list[tuple[int, dict[str, str]]] = []
    for (lineno, _), cells in zip(lines[1:], table[1:]):
        if len(cells) != len(header):
            raise DataError(
                f"{path}:{lineno}: expected {len(header)} cells ({','.join(header)}), "
                f"got {len(cells)}"
            )
        rows.append((lineno, {h: c.strip() for h, c in zip(header, cells)}))
    return rows


def parse_number(text: str, where: str, *, integer: bool = False) -> float:
    """A finite float (or an integer) from a text cell.

    Raises:
        DataError: ``"{where}: expected a number, got 'x'"``.

    Examples:
        >>> parse_number(" 3.5", "f:1")
        3.5
        >>> parse_number("x", "f:1")
        Traceback (most recent call last):
        ...
        colocam_plugin.errors.DataError: f:1: expected a number, got 'x'
    """
    kind = "an integer" if integer else "a number"
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise DataError(f"{where}: expected {kind}, got {text.strip()!r}") from None
    if not integer and not math.isfinite(value):  # Python ints are finite (and may be huge)
        raise DataError(f"{where}: expected {kind}, got {text.strip()!r}")
    return value


# ----------------------------------------------------------------------------- records


def make_shot(
    frame_paths: Sequence[Path],
    *,
    video_id: str,
    shot_id: str,
    label: int,
    boxes: Mapping[str, np.ndarray] | None = None,
    skip_unreadable: bool,
    stats: dict[str, int],
) -> tuple[Shot | None, list[FrameRecord]]:
    """Records of one shot from its sorted frame files.

    Every frame is header-checked (:func:`check_frame`); unreadable ones are
    skipped (and counted) when ``skip_unreadable``. Frames whose file name is
    a key of ``boxes`` get those boxes, repaired with the frame's size
    (:func:`repair_boxes`); an annotated frame whose box list is empty stays
    a plain frame and counts in ``stats["annotated_frames_without_boxes"]``.
    An annotated frame gets ``mask_path`` when ``<frame name>_mask.png`` (a
    0/255 object mask, as synthyto writes) lies beside it.

    Returns:
        ``(shot, annotated)``: the shot (``None`` when no frame is left,
        counted in ``stats["empty_shots"]``) and its frames that carry boxes
        (the same objects as in ``shot.frames``).
    """
    boxes = boxes or {}
    records: list[FrameRecord] = []
    annotated: list[FrameRecord] = []
    for path in frame_paths:
        size = check_frame(path, skip_unreadable=skip_unreadable, stats=stats)
        if size is None:
            continue
        raw = boxes.get(path.name)
        fixed = np.zeros((0, 4), dtype=np.float64)
        mask: Path | None = None
        if raw is not None:
            candidate = path.with_name(path.name + "_mask.png")
            mask = candidate if candidate.is_file() else None
            if len(raw):
                fixed = repair_boxes(raw, size, stats)
            else:
                stats["annotated_frames_without_boxes"] = (
                    stats.get("annotated_frames_without_boxes", 0) + 1
                )
        rec = FrameRecord(
            video_id=video_id,
            shot_id=shot_id,
            frame_index=len(records),
            path=path,
            label=label,
            size=size,
            boxes=fixed,
            mask_path=mask if len(fixed) else None,
        )
        records.append(rec)
        if len(fixed):
            annotated.append(rec)
    if not records:
        stats["empty_shots"] = stats.get("empty_shots", 0) + 1
        return None, []
    return Shot(video_id=video_id, shot_id=shot_id, label=label, frames=tuple(records)), annotated


def add_shot(
    split: str,
    shot: Shot | None,
    annotated: list[FrameRecord],
    shots: list[Shot],
    frames: list[FrameRecord],
) -> None:
    """File ``shot`` under its split: train keeps every frame, val/test only annotated ones."""
    if shot is None:
        return
    if split == "train":
        shots.append(shot)
        frames.extend(shot.frames)
    elif annotated:
        shots.append(shot)
        frames.extend(annotated)
