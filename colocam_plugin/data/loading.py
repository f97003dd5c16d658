"""Frames from disk to network input: eval resizing and GT boxes in the input grid.

Evaluation input follows METHOD.md: resize to ``size x size`` (no crop); GT
boxes are rescaled to that grid with ``int()`` truncation, as wsolevaluation
does (:func:`colocam_plugin.boxes.resize_bbox`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from colocam_plugin.data.io import read_image
from colocam_plugin.data.records import FrameRecord

__all__ = ["load_eval_batch", "resize_frame", "scaled_boxes"]


def resize_frame(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, size, size) in 0..255, bilinear with antialias."""
    t = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float()
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True)
    return t[0].clamp_(0, 255)


def scaled_boxes(frame: FrameRecord, image_hw: tuple[int, int], size: int) -> np.ndarray:
    """The frame's GT boxes in the ``size x size`` input grid (int-truncated)."""
    from colocam_plugin.boxes import resize_bbox

    h, w = image_hw
    boxes = [resize_bbox(b, (w, h), (size, size)) for b in np.asarray(frame.boxes)]
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def load_eval_batch(
    frames: Sequence[FrameRecord], size: int
) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Read and resize ``frames``; return ``(images (B,3,S,S) 0..255, boxes per frame)``."""
    images, boxes = [], []
    for frame in frames:
        img = read_image(frame.path)
        images.append(resize_frame(img, size))
        boxes.append(scaled_boxes(frame, img.shape[:2], size))
    return torch.stack(images), boxes
