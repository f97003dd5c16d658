"""Pictures a person can look at: CAM overlays with GT and predicted boxes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from colocam_plugin.data.io import read_image
from colocam_plugin.data.loading import resize_frame
from colocam_plugin.data.records import FrameRecord
from colocam_plugin.metrics.cam_boxes import cam_to_boxes

__all__ = ["overlay", "render_gallery"]

_GT = (0, 255, 0)
_PRED = (255, 40, 40)


def overlay(image: np.ndarray, cam_u8: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 RGB (S,S,3) blended with a JET heat map of ``cam_u8`` (S,S)."""
    heat = cv2.applyColorMap(np.ascontiguousarray(cam_u8), cv2.COLORMAP_JET)[..., ::-1]
    return np.ascontiguousarray(image * (1 - alpha) + heat * alpha, dtype=np.uint8)


def _draw(img: np.ndarray, boxes: np.ndarray, colour: tuple[int, int, int]) -> None:
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=int).reshape(-1, 4):
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, 1)


def render_gallery(
    frames: Sequence[FrameRecord],
    results: Mapping[str, Any],
    out_png: str | Path,
    *,
    image_size: int,
    max_frames: int = 8,
    seed: int = 0,
) -> Path:
    """Grid: one row per frame (a seeded sample), the frame then one column per method.

    Green: ground truth; red: the method's box at its pooled best threshold.
    ``results`` are :class:`colocam_plugin.harness.EvalResult` with ``cams_u8``.
    """
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(frames), size=min(max_frames, len(frames)), replace=False))
    names = list(results)
    pad, label_h = 4, 14
    cell = image_size + pad
    sheet = np.full((label_h + cell * len(picks), cell * (1 + len(names)), 3), 255, dtype=np.uint8)
    for col, title in enumerate(["frame", *names]):
        cv2.putText(
            sheet,
            title[:14],
            (col * cell + 2, 11),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    for row, idx in enumerate(picks):
        frame = resize_frame(read_image(frames[idx].path), image_size)
        img = np.ascontiguousarray(frame.permute(1, 2, 0).round().byte().numpy())
        y = label_h + row * cell
        gt = next(iter(results.values())).boxes[idx]
        base = img.copy()
        _draw(base, gt, _GT)
        sheet[y : y + image_size, 0:image_size] = base
        for col, name in enumerate(names, start=1):
            res = results[name]
            cam = res.cams_u8[idx]
            tile = overlay(img, cam)
            tau = float(res.scores["best_thresholds"]["pooled"])
            _draw(tile, gt, _GT)
            _draw(tile, cam_to_boxes(cam.astype(np.float64) / 255.0, [tau])[0], _PRED)
            sheet[y : y + image_size, col * cell : col * cell + image_size] = tile
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), sheet[..., ::-1])
    return out_png
