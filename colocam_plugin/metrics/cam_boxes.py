"""From a CAM to boxes, and box geometry, with wsolevaluation's semantics.

These are the reference definitions (clovaai/wsolevaluation, MIT, CVPR 2020)
that every number of this package follows:

* a CAM is min-max normalised to [0, 1]; a constant map, or one holding NaN
  or inf, becomes zeros (:func:`normalize_cams`);
* its 8-bit version is ``floor(cam * 255)`` (:func:`cams_to_uint8`);
* at threshold ``tau`` the foreground is ``u8 > int(tau * u8.max())``
  (strict), its contours come from ``cv2.findContours(RETR_TREE,
  CHAIN_APPROX_SIMPLE)``; single-box mode keeps the contour of largest
  ``cv2.contourArea`` (the first one on ties), multi-box mode keeps all;
  no contour gives the box ``[0, 0, 0, 0]`` (:func:`cam_to_boxes`);
* a box is ``boundingRect -> [x, y, x + w, y + h]`` with ``x1``/``y1``
  clipped to ``W - 1``/``H - 1``; IoU counts pixels inclusively
  (:func:`box_iou`).

:func:`cam_to_boxes` evaluates each distinct foreground once and is meant for
inspection; scoring goes through the faster :mod:`colocam_plugin.metrics.sweep`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from colocam_plugin.boxes import resize_bbox
from colocam_plugin.errors import ShapeError

__all__ = [
    "box_iou",
    "cam_to_boxes",
    "cams_to_numpy",
    "cams_to_uint8",
    "default_thresholds",
    "normalize_cams",
    "resize_bbox",
]


def default_thresholds(thresholds: int | Sequence[float] | np.ndarray = 1000) -> np.ndarray:
    """CAM thresholds as wsolevaluation sweeps them.

    Args:
        thresholds: a count ``n`` (``np.arange(0, 1, 1 / n)``: 1000 on test,
            250 on validation, i.e. steps of 0.001 and 0.004), or explicit
            values in [0, 1].

    Returns:
        float64 array (T,).

    Examples:
        >>> default_thresholds(4)
        array([0.  , 0.25, 0.5 , 0.75])
        >>> len(default_thresholds())
        1000
    """
    if isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
        if thresholds < 1:
            raise ValueError(f"thresholds: expected a count >= 1, got {thresholds}")
        return np.arange(0, 1, 1 / int(thresholds))
    arr = np.asarray(thresholds, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ShapeError(f"thresholds: expected a non-empty (T,) array, got shape {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise ShapeError("thresholds: expected finite values in [0, 1]")
    return arr


def cams_to_numpy(cams: Any, *, name: str = "cams") -> np.ndarray:
    """CAMs as a float numpy array (N, H, W), from numpy or torch.

    float64 stays float64; every other dtype becomes float32 (the dtype
    wsolevaluation normalises in).

    Args:
        cams: array-like or ``torch.Tensor`` (N, H, W), any range.
        name: field name for error messages.

    Examples:
        >>> cams_to_numpy(np.zeros((2, 3, 4), dtype=np.uint8)).dtype
        dtype('float32')
    """
    if hasattr(cams, "detach"):  # torch.Tensor, without importing torch
        t = cams.detach().cpu()
        if not t.is_floating_point() or t.element_size() < 4:
            t = t.float()
        cams = t.numpy()
    arr = np.asarray(cams)
    if arr.ndim != 3:
        raise ShapeError(f"{name}: expected (N, H, W), got {tuple(arr.shape)}")
    if arr.dtype != np.float64:
        arr = arr.astype(np.float32)
    return arr


def normalize_cams(cams: Any) -> np.ndarray:
    """Min-max normalise each CAM to [0, 1] (wsolevaluation's ``normalize_scoremap``).

    A constant map, or one holding a NaN or inf, becomes zeros.

    Args:
        cams: (N, H, W) or (H, W), numpy or torch, any range.

    Returns:
        float32 (float64 for float64 input) array of the input's shape, in [0, 1].

    Examples:
        >>> normalize_cams(np.array([[2.0, 4.0], [6.0, 10.0]]))
        array([[0.  , 0.25],
               [0.5 , 1.  ]])
        >>> normalize_cams(np.full((1, 2, 2), 3.0)).max()
        np.float64(0.0)
    """
    squeeze = hasattr(cams, "ndim") and cams.ndim == 2
    arr = cams_to_numpy(cams[None] if squeeze else cams)
    n = arr.shape[0]
    if arr.size == 0:
        out = np.zeros_like(arr)
        return out[0] if squeeze else out
    flat = arr.reshape(n, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        lo = flat.min(axis=1)
        hi = flat.max(axis=1)
        ok = np.isfinite(lo) & np.isfinite(hi) & (hi > lo) & np.isfinite(hi - lo)
        # wsolevaluation: cam -= cam.min(); cam /= cam.max(). Rounding is monotonic,
        # so the max after the subtraction is exactly hi - lo in the same dtype.
        out = arr - np.where(ok, lo, 0)[:, None, None]
        out /= np.where(ok, hi - lo, 1)[:, None, None]
    if not ok.all():
        out[~ok] = 0
    return out[0] if squeeze else out


def cams_to_uint8(cams: Any) -> np.ndarray:
    """8-bit CAMs: ``floor(normalize_cams(cams) * 255)``.

    Args:
        cams: (N, H, W) or (H, W), numpy or torch, any range.

    Returns:
        uint8 array of the same shape.

    Examples:
        >>> cams_to_uint8(np.array([[0.0, 0.5], [0.999, 1.0]]))
        array([[  0, 127],
               [254, 255]], dtype=uint8)
    """
    out = normalize_cams(cams)
    out *= 255  # in place, same float arithmetic as cam * 255
    return out.astype(np.uint8)


def box_iou(boxes_a: Any, boxes_b: Any) -> np.ndarray:
    """Pairwise IoU of ``[x0, y0, x1, y1]`` boxes counting pixels inclusively.

    ``area = (x1 - x0 + 1) * (y1 - y0 + 1)``; a pair whose union is not
    positive has IoU 0 (wsolevaluation's ``calculate_multiple_iou``).

    Args:
        boxes_a: integer boxes (A, 4) or (4,).
        boxes_b: integer boxes (B, 4) or (4,).

    Returns:
        float64 (A, B).

    Examples:
        >>> float(box_iou([1, 2, 5, 6], [3, 1, 4, 5])[0, 0]) == 8 / 27
        True
    """
    a = np.asarray(boxes_a, dtype=np.int64).reshape(-1, 4)[:, None, :]
    b = np.asarray(boxes_b, dtype=np.int64).reshape(-1, 4)[None, :, :]
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    denom = area_a + area_b - inter
    bad = denom <= 0
    ious = inter / np.where(bad, 1, denom)
    ious[bad] = 0.0
    return ious




def _contour_boxes(binary: np.ndarray, multi_contour: bool) -> np.ndarray:
    height, width = binary.shape
    contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) == 0:
        return np.zeros((1, 4), dtype=np.int64)
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return np.asarray(boxes, dtype=np.int64)


def cam_to_boxes(
    cam: Any,
    thresholds: int | Sequence[float] | np.ndarray = 1000,
    *,
    multi_contour: bool = False,
) -> list[np.ndarray]:
    """Boxes of one CAM at every threshold.

    Each distinct foreground ``u8 > level`` is contoured once and shared by
    all thresholds that map to it: same result as one ``findContours`` per
    threshold.

    Args:
        cam: (H, W), numpy or torch, any range (normalised here).
        thresholds: count or values in [0, 1], see :func:`default_thresholds`.
        multi_contour: one box per contour (MaxBoxAccV2) instead of the box
            of the largest contour.

    Returns:
        One int64 array (k, 4) of ``[x0, y0, x1, y1]`` per threshold
        (k = 1 in single-box mode).

    Examples:
        >>> cam = np.zeros((8, 8)); cam[2:5, 3:7] = 1.0
        >>> cam_to_boxes(cam, [0.5])[0].tolist()
        [[3, 2, 7, 5]]
        >>> cam_to_boxes(np.zeros((8, 8)), [0.5])[0].tolist()
        [[0, 0, 0, 0]]
    """
    arr = np.asarray(cam) if not hasattr(cam, "detach") else cam
    if arr.ndim != 2 or 0 in arr.shape:
        raise ShapeError(f"cam: expected (H, W) with H, W >= 1, got {tuple(arr.shape)}")
    u8 = cams_to_uint8(arr)
    thr = default_thresholds(thresholds)
    levels = (thr * float(u8.max())).astype(np.int64)
    cache: dict[int, np.ndarray] = {}
    out = []
    for level in levels.tolist():
        if level not in cache:
            binary = (u8 > level).astype(np.uint8)
            cache[level] = _contour_boxes(binary, multi_contour)
        out.append(cache[level].copy())
    return out
