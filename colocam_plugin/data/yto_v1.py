"""YouTube-Objects v1.0 in its original download layout ("yto-v1.0").

Layout read (``root`` is the folder holding the class folders)::

    <cls>/sets/train.txt, test.txt       one video id a line ("0001" or "1")
    <cls>/data/<NNNN>/shots/<SSS>/frameNNNN.jpg
    <cls>/data/<NNNN>/shots/<SSS>/frameNNNN.jpg_sticks.mat   variable ``coor``

Splits (this reader's convention, from the public download alone):

* ``train``: every shot of the videos in ``train.txt``, all their frames, no
  boxes. A shot folder without frames is not a shot (``stats["empty_shots"]``).
* ``val``: the annotated frames (those with a ``_sticks.mat`` holding at
  least one box) of the TRAIN videos; ``shots`` are the shots those frames
  belong to, with all their frames.
* ``test``: the same for the videos in ``test.txt``.

The val convention differs from the authors' split files (325 val frames from
50 videos in the CoLo-CAM paper): for the paper's exact splits, read the same
tree through the ``wsol-splits`` dataset with the authors' metadata.

Labels index :data:`YTO_CLASSES` (aeroplane 0 ... train 9) whatever subset of
class folders is present; ``VideoDataset.classes`` is always the ten names.
Ids: video ``"<cls>/<NNNN>"``, shot ``"<cls>/<NNNN>/<SSS>"``.

Boxes are repaired (:func:`colocam_plugin.data.io.repair_boxes`) with the
frame size read from the JPEG header; the counts of each repair, of empty
shots and of skipped frames are in ``VideoDataset.stats`` and in one INFO log
line of the ``colocam_plugin.data`` logger.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from colocam_plugin.data.info import log_summary
from colocam_plugin.data.io import (
    add_shot,
    boxes_from_array,
    list_frames,
    load_mat,
    make_shot,
    new_stats,
    read_text_lines,
)
from colocam_plugin.data.records import FrameRecord, Shot, VideoDataset
from colocam_plugin.errors import DataError, UsageError

__all__ = ["SPLITS", "YTO_CLASSES", "check_split", "load_yto_v1", "read_sticks", "select_classes"]

#: the ten YouTube-Objects classes; a label is an index into this tuple
YTO_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bird",
    "boat",
    "car",
    "cat",
    "cow",
    "dog",
    "horse",
    "motorbike",
    "train",
)

#: split names every YouTube-Objects reader accepts
SPLITS: tuple[str, ...] = ("train", "val", "test")

_STICKS = "_sticks.mat"
_VIDEO_ID = re.compile(r"^\d{1,4}$")


def check_split(split: str, valid: Sequence[str] = SPLITS) -> None:
    """Raise :class:`~colocam_plugin.errors.UsageError` (a ``ValueError``) for a bad ``split``.

    Examples:
        >>> check_split("val", ("train", "test"))
        Traceback (most recent call last):
        ...
        colocam_plugin.errors.UsageError: unknown split 'val'; expected one of train, test
    """
    if split not in valid:
        raise UsageError(f"unknown split {split!r}; expected one of {', '.join(valid)}")


def select_classes(root: Path, classes: Sequence[str] | None) -> list[str]:
    """Class folders of ``root`` to read, in :data:`YTO_CLASSES` order.

    Args:
        root: dataset root.
        classes: names to restrict to (each must exist), or ``None`` for every
            class folder present.

    Raises:
        ValueError: a name that is not a YouTube-Objects class.
        DataError: ``root`` or a requested class folder is missing, or no
            class folder at all is present.
    """
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    if classes is None:
        names = [c for c in YTO_CLASSES if (root / c).is_dir()]
        if not names:
            raise DataError(
                f"{root}: no class folder found (expected some of {', '.join(YTO_CLASSES)})"
            )
        return names
    if isinstance(classes, str):
        classes = [classes]
    bad = [c for c in classes if c not in YTO_CLASSES]
    if bad:
        raise ValueError(f"unknown classes {bad}; YouTube-Objects has {', '.join(YTO_CLASSES)}")
    for c in classes:
        if not (root / c).is_dir():
            raise DataError(f"{root / c}: class folder not found")
    return [c for c in YTO_CLASSES if c in set(classes)]


def read_video_list(path: Path, stats: dict[str, int]) -> list[tuple[int, str]]:
    """``[(line, "NNNN")]`` from a ``sets/*.txt`` file; duplicates dropped and counted."""
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for lineno, text in read_text_lines(path):
        if not _VIDEO_ID.match(text):
            raise DataError(f"{path}:{lineno}: expected a video id like 0001, got {text!r}")
        vid = f"{int(text):04d}"
        if vid in seen:
            stats["duplicate_video_ids"] += 1
            continue
        seen.add(vid)
        out.append((lineno, vid))
    return out


def read_sticks(path: Path) -> np.ndarray:
    """Raw ``(k, 4)`` boxes of a ``frameNNNN.jpg_sticks.mat`` file (variable ``coor``).

    Raises:
        DataError: unreadable file, no ``coor`` variable or a bad shape.
    """
    value = load_mat(path, ["coor"])["coor"]
    return boxes_from_array(value, f"{path}: variable 'coor'")


def _annotations(
    shot_dir: Path, frames: list[Path], *, skip_unreadable: bool, stats: dict[str, int]
) -> dict[str, np.ndarray]:
    names = {p.name for p in frames}
    boxes: dict[str, np.ndarray] = {}
    for mat in sorted(shot_dir.glob("*" + _STICKS)):
        frame_name = mat.name[: -len(_STICKS)]
        if frame_name not in names:
            if skip_unreadable:
                stats["unreadable_frames"] += 1
                continue
            raise DataError(f"{mat}: box file without its frame {frame_name}")
        boxes[frame_name] = read_sticks(mat)
    return boxes


def load_yto_v1(
    root: str | Path,
    split: str,
    *,
    skip_unreadable: bool = False,
    classes: Sequence[str] | None = None,
) -> VideoDataset:
    """Read one split of YouTube-Objects v1.0 from its original layout.

    Args:
        root: folder holding the class folders (``root/cat/sets/train.txt``).
        split: ``"train"``, ``"val"`` or ``"test"`` (see the module docstring).
        skip_unreadable: skip frames whose image header cannot be read (and
            box files without their frame), counting them in
            ``stats["unreadable_frames"]``, instead of raising.
        classes: read only these classes (names of :data:`YTO_CLASSES`).

    Returns:
        :class:`VideoDataset` named ``"yto-v1.0"``; boxes repaired, labels
        indexing :data:`YTO_CLASSES`.

    Raises:
        DataError: missing folder or sets file, malformed sets line
            (``path:line``), unreadable frame or ``.mat`` file.
        ValueError: unknown split or class name.

    Examples:
        >>> import tempfile
        >>> from colocam_plugin.data.testing import write_yto_v1_tree
        >>> tmp = tempfile.TemporaryDirectory()
        >>> expected = write_yto_v1_tree(tmp.name)
        >>> ds = load_yto_v1(tmp.name, "test")
        >>> len(ds.frames) == expected["test"]["frames"]
        True
        >>> tmp.cleanup()
    """
    check_split(split)
    root = Path(root)
    names = select_classes(root, classes)
    stats = new_stats("annotated_frames_without_boxes", "duplicate_video_ids")
    shots: list[Shot] = []
    frames: list[FrameRecord] = []
    sets_name = "test.txt" if split == "test" else "train.txt"
    for cls in names:
        label = YTO_CLASSES.index(cls)
        sets_path = root / cls / "sets" / sets_name
        data_dir = root / cls / "data"
        videos = read_video_list(sets_path, stats)
        if videos and not data_dir.is_dir():
            raise DataError(f"{data_dir}: folder not found")
        for lineno, vid in videos:
            shots_dir = data_dir / vid / "shots"
            if not shots_dir.is_dir():
                raise DataError(
                    f"{shots_dir}: folder not found (video listed at {sets_path}:{lineno})"
                )
            for shot_dir in sorted(
                (d for d in shots_dir.iterdir() if d.is_dir()), key=lambda d: d.name
            ):
                paths = list_frames(shot_dir)
                if not paths:
                    stats["empty_shots"] += 1
                    continue
                boxes = None
                if split != "train":
                    boxes = _annotations(
                        shot_dir, paths, skip_unreadable=skip_unreadable, stats=stats
                    )
                    if not boxes:
                        continue
                shot, annotated = make_shot(
                    paths,
                    video_id=f"{cls}/{vid}",
                    shot_id=f"{cls}/{vid}/{shot_dir.name}",
                    label=label,
                    boxes=boxes,
                    skip_unreadable=skip_unreadable,
                    stats=stats,
                )
                add_shot(split, shot, annotated, shots, frames)
    ds = VideoDataset(
        name="yto-v1.0",
        root=root,
        split=split,
        classes=list(YTO_CLASSES),
        shots=shots,
        frames=frames,
        stats=stats,
    )
    log_summary(ds)
    return ds
