"""Pseudo-label geometry: how much of a frame the ROI covers, against the ground-truth box.

The stage-2 head learns its foreground from seeds drawn inside the ROI (the
filled box of the largest Otsu component of the pseudo-label CAM) and its
background from the 10% lowest-CAM pixels. This measures, on the annotated
frames of the training videos (the val split), the ROI's share of the frame,
the ground-truth boxes' share, the share of the ROI inside a box, the share of
the background-seed pool inside a box, and the CorLoc of the ROI box itself.

    python benchmarks/bench_pl_geometry.py ROOT CAM_CACHE_DIR

ROOT is a YTO v1.0 tree, CAM_CACHE_DIR the ``cam_cache*`` folder of a stage-2
run (``cams-layercam-*.pt``, one CAM per training frame, shot by shot).
Prints one line per measure.
"""

from __future__ import annotations

import collections
import glob
import sys

import numpy as np
import torch

from colocam_plugin.api import create_dataset
from colocam_plugin.data.io import read_image
from colocam_plugin.losses.pseudo_labels import roi_boxes
from colocam_plugin.metrics.cam_boxes import box_iou


def _gt_mask(boxes: list, side: int, h: int, w: int) -> torch.Tensor:
    gt = torch.zeros(side, side, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        ys = slice(int(y0 * side / h), int((y1 + 1) * side / h))
        gt[ys, int(x0 * side / w) : int((x1 + 1) * side / w)] = True
    return gt


def main() -> None:
    root, cache = sys.argv[1], sys.argv[2]
    train = create_dataset("yto-v1.0", root, "train")
    frames = [f for s in train.shots for f in s.frames]
    cams = torch.load(glob.glob(cache + "/cams-layercam-*.pt")[0]).float()
    index = {str(f.path): i for i, f in enumerate(frames)}
    val = create_dataset("yto-v1.0", root, "val")
    rows: dict[str, list[float]] = collections.defaultdict(list)
    hits: dict[int, list[float]] = collections.defaultdict(list)
    for f in val.frames:
        cam = cams[index[str(f.path)]][None]
        side = cam.shape[-1]
        h, w = read_image(f.path).shape[:2]
        roi = roi_boxes(cam)[0]
        gt = _gt_mask(f.boxes, side, h, w)
        flat = cam[0].flatten()
        low = flat <= flat.kthvalue(int(0.1 * flat.numel())).values
        rows["ROI share of the frame"].append(roi.float().mean().item())
        rows["GT box share of the frame"].append(gt.float().mean().item())
        rows["share of the ROI inside a GT box"].append(
            (roi & gt).sum().item() / max(1, roi.sum().item())
        )
        rows["share of the background-seed pool inside a GT box"].append(
            (low & gt.flatten()).float().sum().item() / low.sum().item()
        )
        ys, xs = roi.nonzero(as_tuple=True)
        if len(ys) == 0:
            hits[f.label].append(0.0)
            continue
        pred = np.array([[xs.min(), ys.min(), xs.max(), ys.max()]], dtype=float)
        scale = [side / w, side / h, side / w, side / h]
        gts = np.array([[b * k for b, k in zip(box, scale)] for box in f.boxes])
        hits[f.label].append(float(box_iou(pred, gts).max() >= 0.5))
    print(f"{len(val.frames)} val frames of {root}, CAMs {cache}")
    for name, values in rows.items():
        print(f"{name}: {np.mean(values):.3f}")
    corloc = 100 * np.mean([np.mean(v) for v in hits.values()])
    print(f"CorLoc of the ROI box itself (class-avg, IoU >= 0.5): {corloc:.1f}")


if __name__ == "__main__":
    main()
