"""A user's own videos as folders of frames ("frames").

Layout read::

    root/<shot>/...                 frames of one shot: *.jpg, *.jpeg, *.png, sorted by name
    root/labels.csv                 header ``shot,label``: one row per shot
    root/boxes.csv                  optional, header ``shot,frame,x0,y0,x1,y1``
                                    (``frame`` = file name in the shot folder;
                                    one row per box; pixels, 0-based, inclusive)

``shot`` is a folder path relative to ``root`` (``walk`` or ``cats/clip1``).
``labels.csv`` defines the dataset: folders it does not list are ignored.
A shot's video is its parent folder (``cats/clip1`` -> video ``cats``); a
top-level shot folder is its own video. ``label`` is a class name or an
integer index. Classes are ``classes`` when given (integers index it, names
must be in it); otherwise the sorted distinct names, or ``"0"..."n-1"`` when
every label is an integer (mixing both needs ``classes``).

Splits: ``"train"`` = every shot with all its frames (boxes ignored);
``"test"`` = the frames with at least one row in ``boxes.csv`` (required),
with the shots holding them. Boxes are repaired like YouTube-Objects boxes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from colocam_plugin.data.info import log_summary
from colocam_plugin.data.io import (
    IMAGE_EXTENSIONS,
    add_shot,
    list_frames,
    make_shot,
    new_stats,
    parse_number,
    read_csv_rows,
)
from colocam_plugin.data.records import FrameRecord, Shot, VideoDataset
from colocam_plugin.data.wsol_splits import shot_video_ids
from colocam_plugin.data.yto_v1 import check_split
from colocam_plugin.errors import DataError

__all__ = ["FRAME_SPLITS", "load_frames"]

#: splits the "frames" dataset has
FRAME_SPLITS: tuple[str, ...] = ("train", "test")

_INT = re.compile(r"-?[0-9]+")

#: the largest integer label accepted without ``classes`` (it makes label+1 class names)
MAX_INT_LABEL = 99_999


def _norm(shot: str) -> str:
    return shot.strip().replace("\\", "/").strip("/")


def _labels(
    path: Path, rows: list[tuple[int, dict[str, str]]], classes: Sequence[str] | None
) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Class names and ``{shot: (line, label)}``."""
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
    is_int = {lineno: bool(_INT.fullmatch(r["label"])) for lineno, r in rows}
    if classes is None:
        if all(is_int.values()):
            top_line, top = max(((n, int(r["label"])) for n, r in rows), key=lambda t: t[1])
            if top > MAX_INT_LABEL:
                raise DataError(
                    f"{path}:{top_line}: label {top} would make {top + 1} classes; "
                    "pass classes= (class names) for labels this large"
                )
            names = [str(i) for i in range(top + 1)]
        elif not any(is_int.values()):
            names = sorted({r["label"] for _, r in rows})
        else:
            lineno = next(n for n, v in is_int.items() if v)
            raise DataError(
                f"{path}:{lineno}: integer label among class names; pass classes= to mix them"
            )
    else:
        names = [str(c) for c in classes]
    out: dict[str, tuple[int, int]] = {}
    for lineno, r in rows:
        shot, text = _norm(r["shot"]), r["label"]
        if not shot or text == "":
            raise DataError(f"{path}:{lineno}: empty shot or label")
        if shot in out:
            raise DataError(f"{path}:{lineno}: shot {shot} already listed at line {out[shot][0]}")
        if is_int[lineno]:
            label = int(text)
            if not 0 <= label < len(names):
                raise DataError(f"{path}:{lineno}: label {label} out of range 0..{len(names) - 1}")
        elif text in names:
            label = names.index(text)
        else:
            raise DataError(f"{path}:{lineno}: label {text!r} is not one of {names}")
        out[shot] = (lineno, label)
    return names, out


def _boxes(
    path: Path, shots: dict[str, tuple[int, int]], root: Path
) -> dict[str, dict[str, np.ndarray]]:
    """``{shot: {frame name: raw (k, 4) boxes}}`` from ``boxes.csv``."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found; the test split needs boxes (header shot,frame,x0,y0,x1,y1)"
        )
    header = ("shot", "frame", "x0", "y0", "x1", "y1")
    acc: dict[str, dict[str, list[list[float]]]] = {}
    for lineno, r in read_csv_rows(path, header):
        shot, frame = _norm(r["shot"]), r["frame"]
        where = f"{path}:{lineno}"
        if shot not in shots:
            raise DataError(f"{where}: shot {shot!r} is not listed in the labels file")
        if Path(frame).suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"{where}: frame {frame!r} is not a {'/'.join(IMAGE_EXTENSIONS)} file")
        if not (root / shot / frame).is_file():
            raise DataError(f"{where}: frame {root / shot / frame} not found")
        box = [parse_number(r[k], where) for k in header[2:]]
        acc.setdefault(shot, {}).setdefault(frame, []).append(box)
    return {s: {f: np.asarray(b, dtype=np.float64) for f, b in d.items()} for s, d in acc.items()}


def load_frames(
    root: str | Path,
    split: str,
    *,
    labels_csv: str = "labels.csv",
    boxes_csv: str = "boxes.csv",
    classes: Sequence[str] | None = None,
    skip_unreadable: bool = False,
) -> VideoDataset:
    """Read a user's videos stored as folders of frames (see the module docstring).

    Args:
        root: folder holding the shot folders and the CSV files.
        split: ``"train"`` (all shots) or ``"test"`` (frames with boxes).
        labels_csv: labels file, relative to ``root`` (or absolute).
        boxes_csv: boxes file, relative to ``root`` (or absolute); read for
            ``"test"`` only.
        classes: class names; default from the labels (sorted names).
        skip_unreadable: skip frames whose header cannot be read
            (``stats["unreadable_frames"]``) instead of raising.

    Returns:
        :class:`VideoDataset` named ``"frames"``.

    Raises:
        DataError: missing folder or CSV file, bad header, malformed row
            (``path:line``), unknown label, unreadable frame.
        ValueError: unknown split.

    Examples:
        >>> import tempfile
        >>> from colocam_plugin.data.testing import write_frames_tree
        >>> tmp = tempfile.TemporaryDirectory()
        >>> expected = write_frames_tree(tmp.name)
        >>> ds = load_frames(tmp.name, "train")
        >>> ds.classes, len(ds.frames) == expected["train"]["frames"]
        (['cat', 'person'], True)
        >>> tmp.cleanup()
    """
    check_split(split, FRAME_SPLITS)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    labels_path = root / labels_csv
    rows = read_csv_rows(labels_path, ("shot", "label"))
    if not rows:
        raise DataError(f"{labels_path}: no shots listed")
    names, shot_labels = _labels(labels_path, rows, classes)
    boxes = _boxes(root / boxes_csv, shot_labels, root) if split == "test" else {}
    stats = new_stats("annotated_frames_without_boxes")
    shots: list[Shot] = []
    frames: list[FrameRecord] = []
    for shot_path, (lineno, label) in shot_labels.items():
        if split == "test" and shot_path not in boxes:
            continue
        folder = root / shot_path
        if not folder.is_dir():
            raise DataError(f"{folder}: shot folder not found (listed at {labels_path}:{lineno})")
        paths = list_frames(folder)
        if not paths:
            stats["empty_shots"] += 1
            continue
        video_id, shot_id = shot_video_ids(shot_path)
        shot, annotated = make_shot(
            paths,
            video_id=video_id,
            shot_id=shot_id,
            label=label,
            boxes=boxes.get(shot_path),
            skip_unreadable=skip_unreadable,
            stats=stats,
        )
        add_shot(split, shot, annotated, shots, frames)
    ds = VideoDataset(
        name="frames",
        root=root,
        split=split,
        classes=names,
        shots=shots,
        frames=frames,
        stats=stats,
    )
    log_summary(ds)
    return ds
