"""Localization metrics with wsolevaluation's semantics (see docs / EVALUATION.md).

* :mod:`~colocam_plugin.metrics.cam_boxes`: CAM normalisation, CAM -> boxes,
  inclusive IoU, ``resize_bbox``.
* :mod:`~colocam_plugin.metrics.sweep`: the fast, exact threshold sweep.
* :class:`BoxAccumulator`: CorLoc (class-avg and pooled), MaxBoxAcc,
  MaxBoxAccV2, top-1 / GT-known Loc, as mergeable counts.
* :class:`PxAPAccumulator`: PxAP from summed score histograms.
* :mod:`~colocam_plugin.metrics.npz`: the ``colocam score`` back end.
"""

from __future__ import annotations

from colocam_plugin.metrics.box_accumulator import BoxAccumulator, as_int_boxes
from colocam_plugin.metrics.cam_boxes import (
    box_iou,
    cam_to_boxes,
    cams_to_numpy,
    cams_to_uint8,
    default_thresholds,
    normalize_cams,
    resize_bbox,
)
from colocam_plugin.metrics.npz import ScoreInputs, load_score_inputs, score_npz
from colocam_plugin.metrics.pxap import PxAPAccumulator
from colocam_plugin.metrics.sweep import sweep_max_iou

__all__ = [
    "BoxAccumulator",
    "PxAPAccumulator",
    "ScoreInputs",
    "as_int_boxes",
    "box_iou",
    "cam_to_boxes",
    "cams_to_numpy",
    "cams_to_uint8",
    "default_thresholds",
    "load_score_inputs",
    "normalize_cams",
    "resize_bbox",
    "score_npz",
    "sweep_max_iou",
]
