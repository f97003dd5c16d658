"""Back end of ``colocam score``: score CAMs saved by any tool in one ``.npz`` file.

File format (all arrays; extra keys are ignored):

============== ========= ===================================================
key            dtype     shape and meaning
============== ========= ===================================================
``cams``       float     (N, H, W) CAMs in [0, 1] (re-normalised per frame)
``labels``     int       (N,) class of each frame
``boxes``      float/int (M, 5) rows ``frame_index, x0, y0, x1, y1`` in the
                         CAM's pixel grid (inclusive; floats truncated)
``masks``      bool      (N, H, W) optional, GT foreground for PxAP
``pred_labels`` int      (N,) optional, top-1 predicted class (top-1 Loc)
============== ========= ===================================================

Every problem is reported as one line naming the file and the key.
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colocam_plugin.errors import DataError, ShapeError
from colocam_plugin.metrics.box_accumulator import BoxAccumulator
from colocam_plugin.metrics.cam_boxes import default_thresholds
from colocam_plugin.metrics.pxap import PxAPAccumulator

__all__ = ["ScoreInputs", "load_score_inputs", "score_npz"]

_REQUIRED = ("cams", "labels", "boxes")


@dataclass(frozen=True)
class ScoreInputs:
    """Validated contents of a score ``.npz`` (see the module docstring)."""

    path: Path
    cams: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray | None = None
    pred_labels: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return len(self.cams)

    def boxes_per_frame(self) -> list[np.ndarray]:
        """int64 (k_i, 4) GT boxes of each frame (k_i may be 0), truncated like ``int()``."""
        idx = self.boxes[:, 0].astype(np.int64)
        coords = self.boxes[:, 1:].astype(np.int64)
        order = np.argsort(idx, kind="stable")
        cuts = np.searchsorted(idx[order], np.arange(1, self.num_frames))
        return np.split(coords[order], cuts)


def _int_array(path: str, key: str, arr: np.ndarray, n: int) -> np.ndarray:
    if arr.dtype.kind not in "iu":
        raise ShapeError(f"{path}: '{key}' must hold integers, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ShapeError(f"{path}: '{key}' must be (N,) = ({n},) like 'cams', got {arr.shape}")
    if n and arr.min() < 0:
        raise ShapeError(f"{path}: '{key}' has a negative class ({int(arr.min())})")
    return arr.astype(np.int64)


def load_score_inputs(path: str | Path) -> ScoreInputs:
    """Read and validate a score ``.npz``.

    Args:
        path: the ``.npz`` file.

    Returns:
        :class:`ScoreInputs` with ``cams`` float (N, H, W), ``labels`` int64
        (N,), ``boxes`` (M, 5), optional ``masks`` bool (N, H, W) and
        ``pred_labels`` int64 (N,).

    Raises:
        DataError: unreadable file or missing key.
        ShapeError: wrong dtype, shape, NaN/inf or out-of-range values, e.g.
            ``"cams.npz: 'cams' has values outside [0, 1] (max 1.7)"``.
    """
    p = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{p}: cannot read as .npz ({type(e).__name__}: {e})") from None
    for key in _REQUIRED:
        if key not in data:
            raise DataError(
                f"{p}: missing key '{key}' (found: {', '.join(sorted(data)) or 'none'})"
            )

    cams = data["cams"]
    if cams.dtype.kind != "f":
        raise ShapeError(f"{p}: 'cams' must be float, got dtype {cams.dtype}")
    if cams.ndim != 3 or 0 in cams.shape:
        raise ShapeError(f"{p}: 'cams' must be (N, H, W) with N, H, W >= 1, got {cams.shape}")
    if not np.isfinite(cams).all():
        raise ShapeError(f"{p}: 'cams' has NaN or inf values")
    lo, hi = float(cams.min()), float(cams.max())
    if lo < 0 or hi > 1:
        worst = f"min {lo:g}" if lo < 0 else f"max {hi:g}"
        raise ShapeError(f"{p}: 'cams' has values outside [0, 1] ({worst})")
    n, height, width = cams.shape

    labels = _int_array(p, "labels", data["labels"], n)

    boxes = data["boxes"]
    if boxes.dtype.kind not in "iuf":
        raise ShapeError(f"{p}: 'boxes' must be numbers, got dtype {boxes.dtype}")
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ShapeError(
            f"{p}: 'boxes' must be (M, 5) [frame_index, x0, y0, x1, y1], got {boxes.shape}"
        )
    if not np.isfinite(boxes).all():
        raise ShapeError(f"{p}: 'boxes' has NaN or inf values")
    idx = boxes[:, 0]
    bad = (idx != np.round(idx)) | (idx < 0) | (idx >= n)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ShapeError(
            f"{p}: 'boxes' row {row}: frame_index {idx[row]:g} is not a frame of 'cams' [0, {n})"
        )
    xy = boxes[:, 1:].astype(np.int64)
    bad = (
        (xy[:, 0] < 0) | (xy[:, 1] < 0) | (xy[:, 2] < xy[:, 0]) | (xy[:, 3] < xy[:, 1])
        | (xy[:, 2] > width - 1) | (xy[:, 3] > height - 1)
    )  # fmt: skip
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ShapeError(
            f"{p}: 'boxes' row {row}: [x0, y0, x1, y1] = {xy[row].tolist()} is not a box in the "
            f"{width}x{height} CAM grid (need 0 <= x0 <= x1 <= {width - 1}, "
            f"0 <= y0 <= y1 <= {height - 1}; rescale with resize_bbox)"
        )

    masks = data.get("masks")
    if masks is not None:
        if masks.shape != cams.shape:
            raise ShapeError(f"{p}: 'masks' must be {cams.shape} like 'cams', got {masks.shape}")
        if masks.dtype != bool:
            if masks.dtype.kind not in "iu" or not np.isin(masks, (0, 1)).all():
                raise ShapeError(f"{p}: 'masks' must be bool (or 0/1), got dtype {masks.dtype}")
            masks = masks.astype(bool)
    pred = data.get("pred_labels")
    if pred is not None:
        pred = _int_array(p, "pred_labels", pred, n)
    return ScoreInputs(Path(path), cams, labels, boxes, masks, pred)


def score_npz(
    path: str | Path,
    *,
    thresholds: int | np.ndarray = 1000,
    progress: bool | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Score a ``.npz`` of CAMs: CorLoc, MaxBoxAcc(V2), PxAP, top-1/GT-known Loc.

    Args:
        path: the ``.npz`` (format in the module docstring).
        thresholds: CAM thresholds, a count n (``np.arange(0, 1, 1/n)``, also
            PxAP's bins) or values in [0, 1] (PxAP then uses 1000 bins).
        progress: tqdm progress bar on stderr; None shows it when stderr is a TTY.
        batch_size: frames per update.

    Returns:
        JSON-ready dict: ``corloc``, ``corloc_pooled``, ``maxboxacc``,
        ``maxboxacc_v2``, ``pxap`` (None without masks), ``top1_loc`` (None
        without pred_labels), ``gt_known_loc``, ``per_class``,
        ``best_thresholds``, ``num_frames``, ``num_frames_without_boxes``
        (see :meth:`BoxAccumulator.compute`); numbers in percent.

    Raises:
        DataError: see :func:`load_score_inputs`; also a file with no GT box
            (no annotated frame), which has nothing to score.
        ShapeError: see :func:`load_score_inputs`.
    """
    from tqdm.auto import tqdm

    inputs = load_score_inputs(path)
    if len(inputs.boxes) == 0:
        raise DataError(
            f"{inputs.path}: 'boxes' is empty: none of the {inputs.num_frames} frames has a GT "
            "box, so there is nothing to score (rows are [frame_index, x0, y0, x1, y1])"
        )
    thr = default_thresholds(thresholds)
    boxes = BoxAccumulator(thresholds=thr)
    num_bins = int(thresholds) if isinstance(thresholds, (int, np.integer)) else 1000
    pxap = PxAPAccumulator(num_bins=num_bins) if inputs.masks is not None else None
    per_frame = inputs.boxes_per_frame()
    show = sys.stderr.isatty() if progress is None else progress
    n = inputs.num_frames
    with tqdm(total=n, disable=not show, unit="frame", desc="score") as bar:
        for s in range(0, n, max(1, batch_size)):
            e = min(n, s + max(1, batch_size))
            pred = None if inputs.pred_labels is None else inputs.pred_labels[s:e]
            boxes.update(inputs.cams[s:e], inputs.labels[s:e], per_frame[s:e], pred)
            if pxap is not None and inputs.masks is not None:
                pxap.update(inputs.cams[s:e], inputs.masks[s:e])
            bar.update(e - s)
    out = boxes.compute()
    result: dict[str, Any] = {k: out[k] for k in ("corloc", "corloc_pooled", "maxboxacc")}
    result["maxboxacc_v2"] = out["maxboxacc_v2"]
    result["pxap"] = None if pxap is None else pxap.compute()["pxap"]
    for k in (
        "top1_loc",
        "gt_known_loc",
        "per_class",
        "best_thresholds",
        "num_frames",
        "num_frames_without_boxes",
    ):
        result[k] = out[k]
    return result
