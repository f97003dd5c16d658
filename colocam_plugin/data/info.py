"""Summary of a loaded dataset split: counts (``colocam data-info``) and the log line."""

from __future__ import annotations

import logging
from typing import Any

from colocam_plugin.data.records import VideoDataset

__all__ = ["dataset_info", "log_summary"]

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
