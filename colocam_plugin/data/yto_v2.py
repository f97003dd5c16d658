"""YouTube-Objects v2.2 in its original download layout ("yto-v2.2").

Layout read (``root`` holds the class folders, ``Ranges`` and ``GroundTruth``)::

    <cls>/<8-digit frame number>.jpg                 all frames of the class
    Ranges/ranges_<cls>.mat                          ``ranges``: 3 x n_shots
                                                     (start frame, end frame, video id)
    GroundTruth/<cls>/bb_gtTest_<cls>.mat            struct array: id ("cat00000123"), bb (K x 4)
    GroundTruth/<cls>/bb_gtTraining_<cls>.mat        same, for the training videos

``ranges`` may also be stored n_shots x 3 (a 3 x 3 array is read as 3
rows). A shot is the frames on disk whose number lies in ``[start, end]``
(inclusive). A frame number inside two ranges (one horse shot's end frame is
the next shot's start) belongs to the earlier shot only
(``stats["shared_boundary_frames"]``); a shot with no frame on disk is not a
shot (``stats["empty_shots"]``); numbers of a range absent on disk count in
``stats["missing_frames"]``. These counts cover the split's videos.

Splits: a video (row 3 of ``ranges``) is a TEST video when a range of it
holds a frame with boxes in ``bb_gtTest``, else a TRAIN video.

* ``train``: every shot of the train videos, all frames, no boxes.
* ``val``: the frames with boxes in ``bb_gtTraining`` that belong to train
  videos (those of test videos are dropped and counted in
  ``stats["training_boxes_in_test_videos"]``), and the shots holding them.
* ``test``: the frames with boxes in ``bb_gtTest`` and the shots holding them.

For the authors' exact splits use the ``wsol-splits`` dataset. Labels index
:data:`~colocam_plugin.data.yto_v1.YTO_CLASSES`. Ids: video ``"<cls>/<VVVV>"``
(the video number, 4 digits), shot ``"<cls>/<VVVV>/<KKK>"`` where ``KKK`` is
the 1-based rank of the range among the video's ranges (empty ones counted).
Boxes are repaired as in v1.0 and the repairs logged in one line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colocam_plugin.data.info import log_summary
from colocam_plugin.data.io import (
    add_shot,
    boxes_from_array,
    list_frames,
    load_mat,
    make_shot,
    new_stats,
)
from colocam_plugin.data.records import FrameRecord, Shot, VideoDataset
from colocam_plugin.data.yto_v1 import YTO_CLASSES, check_split, select_classes
from colocam_plugin.errors import DataError

__all__ = ["YTO_CLASSES", "load_yto_v2", "read_gt_boxes", "read_ranges"]


_NUMBER = re.compile(r"[0-9]+")  # not str.isdigit(): it accepts "²", which int() refuses


def read_ranges(path: Path) -> list[tuple[int, int, int]]:
    """Shot ranges ``[(start, end, video)]`` of a ``ranges_<cls>.mat`` file.

    Raises:
        DataError: unreadable file, no ``ranges`` variable, not 3 x n, or a
            column with non-integer values or ``start > end``.
    """
    value = load_mat(path, ["ranges"])["ranges"]
    if np.iscomplexobj(value):  # float64 casting would drop the imaginary part silently
        raise DataError(f"{path}: variable 'ranges' holds complex numbers")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: variable 'ranges' is not numeric") from None
    if arr.ndim == 2 and arr.shape[0] != 3 and arr.shape[1] == 3:
        arr = arr.T
    if arr.ndim != 2 or arr.shape[0] != 3:
        raise DataError(f"{path}: variable 'ranges': expected 3 x n_shots, got shape {arr.shape}")
    out: list[tuple[int, int, int]] = []
    for k, col in enumerate(arr.T, 1):
        if not (np.isfinite(col).all() and (col == np.round(col)).all() and (col >= 0).all()):
            raise DataError(
                f"{path}: ranges column {k}: expected non-negative integers, got {col.tolist()}"
            )
        start, end, vid = (int(v) for v in col)
        if start > end:
            raise DataError(f"{path}: ranges column {k}: start frame {start} > end frame {end}")
        out.append((start, end, vid))
    return out


def _mat_str(value: Any) -> str:
    arr = np.asarray(value)
    if arr.dtype == object:
        return "".join(_mat_str(v) for v in arr.ravel())
    if arr.dtype.kind in "US":
        return "".join(str(v) for v in arr.ravel()).strip()
    raise TypeError(f"not text: {arr.dtype}")


def _struct_entries(arr: np.ndarray) -> list[Any]:
    if arr.dtype.names is not None:
        return list(arr.ravel())
    if arr.dtype == object:  # a cell array of 1x1 structs
        out: list[Any] = []
        for item in arr.ravel():
            item = np.asarray(item)
            if item.dtype.names is None:
                return []
            out.extend(item.ravel())
        return out
    return []


def read_gt_boxes(path: Path, cls: str) -> dict[int, np.ndarray]:
    """Raw boxes by frame number from a ``bb_gt*_<cls>.mat`` struct array.

    The variable read is the one named like the file without ``_<cls>``
    (``bb_gtTest``), else the file's only variable. Entries naming the same
    frame twice are merged.

    Raises:
        DataError: unreadable file, not a struct array with fields ``id`` and
            ``bb``, an id that is not ``<cls>`` + frame number, or bad boxes.
    """
    variables = load_mat(path)
    name = path.stem[: -len(cls) - 1] if path.stem.endswith("_" + cls) else path.stem
    if name not in variables:
        if len(variables) != 1:
            found = ", ".join(sorted(variables)) or "none"
            raise DataError(f"{path}: no variable {name!r} (variables: {found})")
        name = next(iter(variables))
    arr = np.asarray(variables[name])
    entries = _struct_entries(arr)
    malformed = bool(arr.size) and not entries
    if entries and not {"id", "bb"} <= set(entries[0].dtype.names):
        malformed = True
    if malformed:
        raise DataError(f"{path}: variable {name!r}: expected a struct array with fields id and bb")
    pattern = re.compile(rf"^{re.escape(cls)}(\d+)$")
    out: dict[int, np.ndarray] = {}
    for i, entry in enumerate(entries, 1):
        try:
            ident = _mat_str(entry["id"])
        except TypeError:
            raise DataError(f"{path}: entry {i}: field id is not text") from None
        match = pattern.match(ident)
        if not match:
            raise DataError(f"{path}: entry {i}: id {ident!r} is not {cls!r} + a frame number")
        boxes = boxes_from_array(entry["bb"], f"{path}: entry {i} ({ident}): field bb")
        n = int(match.group(1))
        out[n] = np.concatenate([out[n], boxes]) if n in out else boxes
    return out


def _video_of(ranges: list[tuple[int, int, int]], n: int) -> int | None:
    for start, end, vid in ranges:
        if start <= n <= end:
            return vid
    return None


def _rank(ranges: list[tuple[int, int, int]], k: int) -> int:
    """1-based rank of range ``k`` among the ranges of its video."""
    return sum(1 for r in ranges[: k + 1] if r[2] == ranges[k][2])


def _shot_members(
    ranges: list[tuple[int, int, int]],
    files: dict[int, Path],
    videos: set[int],
    stats: dict[str, int],
) -> list[list[int]]:
    """Frame numbers on disk of each range; a number in two ranges goes to the earlier one.

    Shared and missing frames are counted for the ranges of ``videos`` only.
    The work is proportional to the frames on disk, not to the ranges' widths
    (a corrupt ``ranges`` file may span 10^15 frame numbers).
    """
    numbers = sorted(files)
    owned: set[int] = set()
    members: list[list[int]] = [[] for _ in ranges]
    for k in sorted(range(len(ranges)), key=lambda k: (ranges[k][0], ranges[k][1], k)):
        start, end, vid = ranges[k]
        counted = int(vid in videos)
        on_disk = numbers[bisect.bisect_left(numbers, start) : bisect.bisect_right(numbers, end)]
        for n in on_disk:
            if n in owned:
                stats["shared_boundary_frames"] += counted
            else:
                owned.add(n)
                members[k].append(n)
        stats["missing_frames"] += counted * (end - start + 1 - len(on_disk))
    return members


def load_yto_v2(
    root: str | Path,
    split: str,
    *,
    skip_unreadable: bool = False,
    classes: Sequence[str] | None = None,
) -> VideoDataset:
    """Read one split of YouTube-Objects v2.2 from its original layout.

    Args:
        root: folder holding the class folders, ``Ranges`` and ``GroundTruth``.
        split: ``"train"``, ``"val"`` or ``"test"`` (see the module docstring).
        skip_unreadable: skip frames whose image header cannot be read, and
            annotated frames missing on disk, counting them in
            ``stats["unreadable_frames"]``, instead of raising.
        classes: read only these classes.

    Returns:
        :class:`VideoDataset` named ``"yto-v2.2"``.

    Raises:
        DataError: missing folder or ``.mat`` file, malformed ``.mat``,
            unreadable or missing annotated frame.
        ValueError: unknown split or class name.

    Examples:
        >>> import tempfile
        >>> from colocam_plugin.data.testing import write_yto_v2_tree
        >>> tmp = tempfile.TemporaryDirectory()
        >>> expected = write_yto_v2_tree(tmp.name)
        >>> ds = load_yto_v2(tmp.name, "train")
        >>> len(ds.shots) == expected["train"]["shots"], ds.stats["shared_boundary_frames"]
        (True, 1)
        >>> tmp.cleanup()
    """
    check_split(split)
    root = Path(root)
    names = select_classes(root, classes)
    stats = new_stats(
        "shared_boundary_frames",
        "missing_frames",
        "annotated_frames_without_boxes",
        "annotated_frames_outside_shots",
        "training_boxes_in_test_videos",
    )
    shots: list[Shot] = []
    frames: list[FrameRecord] = []
    for cls in names:
        label = YTO_CLASSES.index(cls)
        ranges = read_ranges(root / "Ranges" / f"ranges_{cls}.mat")
        gt_dir = root / "GroundTruth" / cls
        test_path = gt_dir / f"bb_gtTest_{cls}.mat"
        test_boxes = read_gt_boxes(test_path, cls)
        test_videos = {_video_of(ranges, n) for n in test_boxes} - {None}
        if split == "test":
            gt_path, boxes_by_n = test_path, test_boxes
        elif split == "val":
            gt_path = gt_dir / f"bb_gtTraining_{cls}.mat"
            boxes_by_n = read_gt_boxes(gt_path, cls)
        else:
            gt_path, boxes_by_n = test_path, {}
        files = {int(p.stem): p for p in list_frames(root / cls) if _NUMBER.fullmatch(p.stem)}
        all_videos = {vid for _s, _e, vid in ranges}
        videos = all_videos & test_videos if split == "test" else all_videos - test_videos
        members = _shot_members(ranges, files, videos, stats)

        annotated_shots: set[int] = set()
        owner = {n: k for k, nums in enumerate(members) for n in nums}
        for n in sorted(boxes_by_n):
            vid = _video_of(ranges, n)
            if vid is None:
                stats["annotated_frames_outside_shots"] += 1
            elif vid not in videos:
                stats["training_boxes_in_test_videos"] += 1
            elif n in owner:
                annotated_shots.add(owner[n])
            elif skip_unreadable:
                stats["unreadable_frames"] += 1
            else:
                frame = root / cls / f"{n:08d}.jpg"
                raise DataError(f"{frame}: annotated frame not found (boxes in {gt_path})")

        for k, (_start, _end, vid) in enumerate(ranges):
            if vid not in videos:
                continue
            if not members[k]:
                stats["empty_shots"] += 1
                continue
            if split != "train" and k not in annotated_shots:
                continue
            paths = [files[n] for n in members[k]]
            shot, annotated = make_shot(
                paths,
                video_id=f"{cls}/{vid:04d}",
                shot_id=f"{cls}/{vid:04d}/{_rank(ranges, k):03d}",
                label=label,
                boxes={files[n].name: boxes_by_n[n] for n in members[k] if n in boxes_by_n},
                skip_unreadable=skip_unreadable,
                stats=stats,
            )
            add_shot(split, shot, annotated, shots, frames)
    ds = VideoDataset(
        name="yto-v2.2",
        root=root,
        split=split,
        classes=list(YTO_CLASSES),
        shots=shots,
        frames=frames,
        stats=stats,
    )
    log_summary(ds)
    return ds
