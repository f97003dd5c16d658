"""Summary of a loaded dataset split: counts and frame checks (``colocam data-info``), log line."""

from __future__ import annotations

import logging
from typing import Any

from colocam_plugin.data.records import VideoDataset

__all__ = ["dataset_info", "log_summary", "verify_frames"]

logger = logging.getLogger("colocam_plugin.data")


def dataset_info(ds: VideoDataset) -> dict[str, Any]:
    """Counts of a :class:`VideoDataset`.

    Args:
        ds: a loaded split.

    Returns:
        ``{"videos": int, "shots": int, "frames": int, "boxes": int,
        "per_class": {class name: frames}}``: distinct videos, shots, frames
        of ``ds.frames`` (the annotated frames on val/test), their boxes, and
        frames per class for every name of ``ds.classes`` (zeros included).

    Examples:
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from colocam_plugin.data.records import FrameRecord, Shot
        >>> f = FrameRecord("cat/1", "cat/1/1", 0, Path("a.jpg"), 1, boxes=np.zeros((2, 4)))
        >>> ds = VideoDataset("demo", Path("."), "test", ["dog", "cat"],
        ...                   [Shot("cat/1", "cat/1/1", 1, (f,))], [f])
        >>> dataset_info(ds)
        {'videos': 1, 'shots': 1, 'frames': 1, 'boxes': 2, 'per_class': {'dog': 0, 'cat': 1}}
    """
    per_class = dict.fromkeys(ds.classes, 0)
    for f in ds.frames:
        name = ds.classes[f.label] if 0 <= f.label < len(ds.classes) else str(f.label)
        per_class[name] = per_class.get(name, 0) + 1
    return {
        "videos": len(ds.videos),
        "shots": len(ds.shots),
        "frames": len(ds.frames),
        "boxes": sum(len(f.boxes) for f in ds.frames),
        "per_class": per_class,
    }


def verify_frames(ds: VideoDataset, *, decode: bool = False, skip_unreadable: bool = False) -> int:
    """Check that every frame file of the split is whole: what loading (a header read) misses.

    Every frame of ``ds.shots`` (all frames of the shots a split uses) is
    checked once: its end marker (:func:`~colocam_plugin.data.io.check_image_complete`,
    catches a truncated JPEG or PNG), or a full decode with ``decode``
    (:func:`~colocam_plugin.data.io.read_image`, also catches corrupt data).

    Args:
        ds: a loaded split.
        decode: decode every frame (slow: milliseconds a frame).
        skip_unreadable: count bad frames (and log them) instead of raising.

    Returns:
        The number of bad frames (0 unless ``skip_unreadable``).

    Raises:
        DataError: the first bad frame, named, unless ``skip_unreadable``.
    """
    from colocam_plugin.data.io import check_image_complete, read_image
    from colocam_plugin.errors import DataError

    check = read_image if decode else check_image_complete
    seen: set[str] = set()
    bad = 0
    for shot in ds.shots:
        for frame in shot.frames:
            key = str(frame.path)
            if key in seen:
                continue
            seen.add(key)
            try:
                check(frame.path)
            except DataError as exc:
                if not skip_unreadable:
                    raise
                bad += 1
                logger.warning("skipping %s", exc)
    return bad


def log_summary(ds: VideoDataset) -> None:
    """Emit the one INFO line a loader writes: sizes, box repairs and skips."""
    n_boxes = sum(len(f.boxes) for f in ds.frames)
    stats = ", ".join(f"{k}={v}" for k, v in ds.stats.items())
    logger.info(
        "%s %s: %d videos, %d shots, %d frames, %d boxes; repairs and skips: %s",
        ds.name,
        ds.split,
        len(ds.videos),
        len(ds.shots),
        len(ds.frames),
        n_boxes,
        stats,
    )
