"""Plain records every dataset yields: one annotated frame, one shot.

Datasets (``colocam_plugin.data.*`` readers and third-party plugins) return
these, so the sampler, the trainers and the evaluator never see a layout.
Boxes are ``float64`` arrays ``(k, 4)`` of ``[x0, y0, x1, y1]`` in pixels of
the original frame, 0-based and inclusive, already repaired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FrameRecord", "Shot", "VideoDataset"]


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class FrameRecord:
    """One frame on disk.

    Attributes:
        video_id: video identifier, unique within the dataset (e.g. ``"cat/0003"``).
        shot_id: shot identifier, unique within the dataset (e.g. ``"cat/0003/012"``).
        frame_index: index of the frame within its shot's sorted frame list.
        path: the image file.
        label: class index.
        size: ``(width, height)`` of the image, when known without decoding it.
        boxes: ``(k, 4)`` float array, ``k >= 0`` (empty on train splits).
        mask_path: optional binary mask image for PxAP.
    """

    video_id: str
    shot_id: str
    frame_index: int
    path: Path
    label: int
    size: tuple[int, int] | None = None
    boxes: np.ndarray = field(default_factory=_no_boxes)
    mask_path: Path | None = None


@dataclass(frozen=True, eq=False)
class Shot:
    """A contiguous run of frames of one video, with the video's label."""

    video_id: str
    shot_id: str
    label: int
    frames: tuple[FrameRecord, ...]

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(eq=False)
class VideoDataset:
    """What a dataset factory returns for one split.

    Train splits fill ``shots`` (every frame, no boxes) and list those frames
    in ``frames`` too; val/test splits fill ``frames`` with the annotated
    frames (boxes present) and ``shots`` with the shots they belong to, each
    holding every frame of the shot found on disk (annotated or not).

    Attributes:
        name: registry name of the dataset (``"yto-v1.0"``).
        root: folder it was read from.
        split: ``"train"``, ``"val"`` or ``"test"``.
        classes: class names; ``label`` indexes this list.
        shots: shots of the split.
        frames: frames of the split (annotated frames on val/test).
        stats: counters of repaired defects and skipped files, for the log.
    """

    name: str
    root: Path
    split: str
    classes: list[str]
    shots: list[Shot]
    frames: list[FrameRecord]
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def videos(self) -> list[str]:
        """Sorted distinct video ids of the split."""
        ids = {s.video_id for s in self.shots} | {f.video_id for f in self.frames}
        return sorted(ids)
