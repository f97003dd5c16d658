"""Split files in wsolevaluation's metadata format ("wsol-splits").

Use this with the split files the CoLo-CAM/TCAM authors published to get the
paper's exact YouTube-Objects splits (the readers ``yto-v1.0``/``yto-v2.2``
derive splits from the public download alone). Files read, per split, in
``metadata_root/<split>/`` (no header lines; paths relative to ``root``)::

    image_ids.txt      one path a line: SHOT folders (train), frame images (val/test)
    class_labels.txt   path,label           (label: integer class index)
    image_sizes.txt    path,width,height    (optional; checked against the frame)
    localization.txt   path,x0,y0,x1,y1     (val/test; one line per box)

Train: each listed shot folder is a shot holding every frame inside it (jpg,
jpeg, png, sorted by name); an empty folder is not a shot
(``stats["empty_shots"]``). Val/test: every listed frame must have at least
one box; ``shots`` are the folders holding the listed frames, with all
their frames on disk; ``frames`` keeps the order of ``image_ids.txt``.

Ids from paths: a shot folder ``<cls>/data/<vid>/shots/<shot>`` (the v1.0
layout) gives video ``"<cls>/<vid>"`` and shot ``"<cls>/<vid>/<shot>"``, the
ids :func:`~colocam_plugin.data.yto_v1.load_yto_v1` uses; any other shot
folder path ``a/b/c`` gives shot ``"a/b/c"`` and video ``"a/b"`` (its parent
folder; a top-level folder is its own video). The shot folder of a val/test
frame is its parent folder. Boxes are repaired with the frame's header size.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from colocam_plugin.data.info import log_summary
from colocam_plugin.data.io import (
    check_frame,
    list_frames,
    make_shot,
    new_stats,
    parse_number,
    read_text_lines,
)
from colocam_plugin.data.records import FrameRecord, Shot, VideoDataset
from colocam_plugin.data.yto_v1 import YTO_CLASSES, check_split
from colocam_plugin.errors import DataError, UsageError

__all__ = ["load_wsol_splits", "shot_video_ids"]

_V1_SHOT = re.compile(r"^(?P<cls>[^/]+)/data/(?P<vid>[^/]+)/shots/(?P<shot>[^/]+)$")


def _norm(path: str) -> str:
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p.rstrip("/")


def shot_video_ids(shot_path: str) -> tuple[str, str]:
    """``(video_id, shot_id)`` of a shot folder path relative to the root.

    Examples:
        >>> shot_video_ids("cat/data/0003/shots/012")
        ('cat/0003', 'cat/0003/012')
        >>> shot_video_ids("walk/clip2")
        ('walk', 'walk/clip2')
        >>> shot_video_ids("walk")
        ('walk', 'walk')
    """
    p = _norm(shot_path)
    m = _V1_SHOT.match(p)
    if m:
        video = f"{m['cls']}/{m['vid']}"
        return video, f"{video}/{m['shot']}"
    return posixpath.dirname(p) or p, p


def _table(path: Path, ncols: int, what: str) -> list[tuple[int, str, list[str]]]:
    rows = []
    for lineno, text in read_text_lines(path):
        parts = text.rsplit(",", ncols - 1)
        if len(parts) != ncols or not parts[0].strip():
            raise DataError(f"{path}:{lineno}: expected {what}, got {text!r}")
        rows.append((lineno, _norm(parts[0]), [c.strip() for c in parts[1:]]))
    return rows


def load_wsol_splits(
    root: str | Path,
    split: str,
    *,
    metadata_root: str | Path | None = None,
    skip_unreadable: bool = False,
    classes: Sequence[str] | None = None,
) -> VideoDataset:
    """Read one split described by wsolevaluation-format metadata files.

    Args:
        root: folder the metadata paths are relative to.
        split: ``"train"``, ``"val"`` or ``"test"``: the sub-folder of
            ``metadata_root`` read.
        metadata_root: folder holding ``train/``, ``val/``, ``test/``
            (required; ``--metadata-root`` on the command line).
        skip_unreadable: skip frames that are missing or whose header cannot
            be read (``stats["unreadable_frames"]``) instead of raising.
        classes: class names the integer labels index (default
            :data:`~colocam_plugin.data.yto_v1.YTO_CLASSES`).

    Returns:
        :class:`VideoDataset` named ``"wsol-splits"``.

    Raises:
        DataError: missing file or folder, malformed line (``path:line``),
            label out of range, path listed without label or (val/test)
            without box, size disagreeing with ``image_sizes.txt``.
        UsageError: unknown split, or no ``metadata_root`` (both ``ValueError``).

    Examples:
        >>> import tempfile
        >>> from colocam_plugin.data.testing import write_wsol_metadata, write_yto_v1_tree
        >>> tmp = tempfile.TemporaryDirectory()
        >>> _ = write_yto_v1_tree(tmp.name)
        >>> expected = write_wsol_metadata(tmp.name + "/meta")
        >>> ds = load_wsol_splits(tmp.name, "val", metadata_root=tmp.name + "/meta")
        >>> len(ds.frames) == expected["val"]["frames"]
        True
        >>> tmp.cleanup()
    """
    check_split(split)
    if metadata_root is None or str(metadata_root) == "":
        raise UsageError(
            "wsol-splits needs metadata_root, the folder of the split files "
            "(--metadata-root on the command line)"
        )
    root = Path(root)
    class_names = list(YTO_CLASSES if classes is None else classes)
    meta = Path(metadata_root) / split
    if not meta.is_dir():
        raise DataError(f"{meta}: metadata folder not found")
    stats = new_stats("annotated_frames_without_boxes")
    ids_path = meta / "image_ids.txt"
    ids: dict[str, int] = {}
    for lineno, text in read_text_lines(ids_path):
        p = _norm(text)
        if p in ids:
            raise DataError(f"{ids_path}:{lineno}: {p} already listed at line {ids[p]}")
        ids[p] = lineno
    labels_path = meta / "class_labels.txt"
    labels: dict[str, int] = {}
    for lineno, p, (cell,) in _table(labels_path, 2, "path,label"):
        label = int(parse_number(cell, f"{labels_path}:{lineno}", integer=True))
        if not 0 <= label < len(class_names):
            raise DataError(
                f"{labels_path}:{lineno}: label {label} out of range 0..{len(class_names) - 1}; "
                "pass classes= for other datasets"
            )
        labels[p] = label
    for p, lineno in ids.items():
        if p not in labels:
            raise DataError(f"{ids_path}:{lineno}: {p} has no row in {labels_path.name}")

    shots: list[Shot] = []
    frames: list[FrameRecord] = []
    if split == "train":
        for p, lineno in ids.items():
            folder = root / p
            if not folder.is_dir():
                raise DataError(f"{folder}: shot folder not found (listed at {ids_path}:{lineno})")
            video_id, shot_id = shot_video_ids(p)
            paths = list_frames(folder)
            if not paths:
                stats["empty_shots"] += 1
                continue
            shot, _ = make_shot(
                paths,
                video_id=video_id,
                shot_id=shot_id,
                label=labels[p],
                skip_unreadable=skip_unreadable,
                stats=stats,
            )
            if shot is not None:
                shots.append(shot)
                frames.extend(shot.frames)
    else:
        shots, frames = _eval_split(root, meta, ids, labels, skip_unreadable, stats)
    ds = VideoDataset(
        name="wsol-splits",
        root=root,
        split=split,
        classes=class_names,
        shots=shots,
        frames=frames,
        stats=stats,
    )
    log_summary(ds)
    return ds


def _eval_split(
    root: Path,
    meta: Path,
    ids: dict[str, int],
    labels: dict[str, int],
    skip_unreadable: bool,
    stats: dict[str, int],
) -> tuple[list[Shot], list[FrameRecord]]:
    ids_path = meta / "image_ids.txt"
    loc_path = meta / "localization.txt"
    boxes: dict[str, list[list[float]]] = {}
    for lineno, p, cells in _table(loc_path, 5, "path,x0,y0,x1,y1"):
        if p not in ids:
            raise DataError(f"{loc_path}:{lineno}: {p} is not listed in {ids_path.name}")
        where = f"{loc_path}:{lineno}"
        boxes.setdefault(p, []).append([parse_number(c, where) for c in cells])
    sizes_path = meta / "image_sizes.txt"
    sizes: dict[str, tuple[int, tuple[int, int]]] = {}
    if sizes_path.is_file():
        for lineno, p, cells in _table(sizes_path, 3, "path,width,height"):
            where = f"{sizes_path}:{lineno}"
            w, h = (int(parse_number(c, where, integer=True)) for c in cells)
            sizes[p] = (lineno, (w, h))

    by_shot: dict[str, list[str]] = {}
    for p, lineno in ids.items():
        if p not in boxes:
            raise DataError(f"{ids_path}:{lineno}: {p} has no box in {loc_path.name}")
        by_shot.setdefault(posixpath.dirname(p), []).append(p)

    shots: list[Shot] = []
    records: dict[str, FrameRecord] = {}
    for shot_path, listed in by_shot.items():
        video_id, shot_id = shot_video_ids(shot_path)
        label_set = {labels[p] for p in listed}
        if len(label_set) > 1:
            raise DataError(
                f"{meta / 'class_labels.txt'}: frames of shot {shot_path} have labels "
                f"{sorted(label_set)}; a shot has one label"
            )
        names = {posixpath.basename(p): p for p in listed}
        paths = list_frames(root / shot_path) if (root / shot_path).is_dir() else []
        on_disk = {q.name for q in paths}
        for name, p in names.items():
            if name not in on_disk:  # raises "frame file not found", or counts it
                check_frame(root / p, skip_unreadable=skip_unreadable, stats=stats)
        if not paths:
            continue
        shot, annotated = make_shot(
            paths,
            video_id=video_id,
            shot_id=shot_id,
            label=label_set.pop(),
            boxes={n: np.asarray(boxes[p], dtype=np.float64) for n, p in names.items()},
            skip_unreadable=skip_unreadable,
            stats=stats,
        )
        if shot is None or not annotated:
            continue
        shots.append(shot)
        for rec in annotated:
            p = names[rec.path.name]
            if p in sizes and rec.size != sizes[p][1]:
                lineno, (w, h) = sizes[p]
                raise DataError(
                    f"{sizes_path}:{lineno}: {p} listed as {w}x{h}, but the file is "
                    f"{'x'.join(map(str, rec.size or ()))}"
                )
            records[p] = rec
    frames = [records[p] for p in ids if p in records]
    return shots, frames
