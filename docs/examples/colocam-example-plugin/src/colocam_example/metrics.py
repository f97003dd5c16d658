"""``pointing-game``: is the CAM's peak inside a ground-truth box?

Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016,
https://arxiv.org/abs/1608.00507. Frames without a box are not scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class PointingGame:
    """Mergeable accumulator: ``update`` per batch, ``merge`` across workers, ``compute``.

    Args:
        tolerance: pixels a peak may lie outside a box and still count (the
            paper uses 15 at 224 px).
    """

    def __init__(self, *, tolerance: int = 0) -> None:
        self.tolerance = tolerance
        self.hits = 0
        self.frames = 0

    def update(self, cams: Any, labels: Any, boxes: Sequence[np.ndarray], **_: Any) -> None:
        """Score a batch: ``cams`` (B, H, W), ``boxes`` per frame (k, 4) ``x0, y0, x1, y1``.

        ``colocam evaluate`` passes, by keyword, the arguments ``update`` names;
        ``**_`` takes (and ignores) the others: ``pred_labels``, ``masks``.
        """
        maps = np.asarray(cams.detach().cpu() if hasattr(cams, "detach") else cams)
        for cam, frame_boxes in zip(maps, boxes, strict=True):
            frame_boxes = np.asarray(frame_boxes).reshape(-1, 4)
            if len(frame_boxes) == 0:
                continue
            y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
            t = self.tolerance
            inside = (
                (frame_boxes[:, 0] - t <= x)
                & (x <= frame_boxes[:, 2] + t)
                & (frame_boxes[:, 1] - t <= y)
                & (y <= frame_boxes[:, 3] + t)
            )
            self.hits += int(inside.any())
            self.frames += 1

    def merge(self, other: PointingGame) -> PointingGame:
        """Add ``other``'s counts into this accumulator; returns ``self``."""
        self.hits += other.hits
        self.frames += other.frames
        return self

    def compute(self) -> dict[str, float | None]:
        """``{"pointing_game": percent of scored frames hit}``; None before any frame."""
        value = 100.0 * self.hits / self.frames if self.frames else None
        return {"pointing_game": value}
