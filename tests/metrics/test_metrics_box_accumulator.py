"""BoxAccumulator: BoxAcc on hand-made cases, per-class vs pooled tau, merge, torch input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colocam_plugin.errors import ShapeError
from colocam_plugin.metrics import BoxAccumulator


def _square_cam(h: int, w: int, y0: int, x0: int, size: int, value: float = 1.0) -> np.ndarray:
    cam = np.zeros((h, w), dtype=np.float32)
    cam[y0 : y0 + size, x0 : x0 + size] = value
    return cam


def test_boxacc_hand_made():
    # frame 0: CAM box [2, 2, 6, 6] (boundingRect adds 1 to the end), GT the same -> IoU 1
    # frame 1: CAM box [10, 10, 14, 14], GT [2, 2, 6, 6] -> IoU 0
    cams = np.stack([_square_cam(16, 16, 2, 2, 4), _square_cam(16, 16, 10, 10, 4)])
    gts = [np.array([[2, 2, 6, 6]]), np.array([[2, 2, 6, 6]])]
    acc = BoxAccumulator(thresholds=[0.0, 0.5])
    acc.update(cams, np.array([0, 0]), gts)
    out = acc.compute()
    assert out["maxboxacc"] == 50.0
    assert out["corloc"] == out["corloc_pooled"] == out["gt_known_loc"] == 50.0
    assert out["maxboxacc_v2"] == 50.0
    assert out["top1_loc"] is None
    assert out["num_frames"] == 2
    counts = acc.counts()
    np.testing.assert_array_equal(counts["correct"][0][0], [[1, 1], [1, 1], [1, 1]])


def test_iou_threshold_is_inclusive_per_delta():
    # CAM box [0, 0, 4, 4] (25 px), GT [0, 0, 4, 1] (10 px): IoU 10/25 = 0.4
    cams = _square_cam(8, 8, 0, 0, 4)[None]
    acc = BoxAccumulator(thresholds=[0.5], deltas=(30, 40, 50))
    acc.update(cams, [1], [np.array([[0, 0, 4, 1]])])
    np.testing.assert_array_equal(acc.counts()["correct"][1][0, :, 0], [1, 1, 0])
    assert acc.compute()["maxboxacc_v2"] == pytest.approx(200 / 3)


def test_tau_per_class_vs_pooled():
    # class 0 frames are right only at a low tau (the GT covers the weak halo),
    # class 1 frames only at a high tau (the GT is the strong core)
    def frame() -> np.ndarray:
        cam = np.zeros((20, 20), dtype=np.float32)
        cam[2:18, 2:18] = 0.3
        cam[8:12, 8:12] = 1.0
        return cam

    cams = np.stack([frame()] * 3)
    halo, core = np.array([[2, 2, 18, 18]]), np.array([[8, 8, 12, 12]])
    acc = BoxAccumulator(thresholds=[0.1, 0.5])
    acc.update(cams, [0, 0, 1], [halo, halo, core])
    out = acc.compute()
    assert out["per_class"] == {0: 100.0, 1: 100.0}
    assert out["corloc"] == 100.0
    assert out["best_thresholds"]["corloc_per_class"] == {0: 0.1, 1: 0.5}
    assert out["corloc_pooled"] == pytest.approx(200 / 3)  # one tau for all frames
    assert out["best_thresholds"]["pooled"] == 0.1


def test_multi_box_mode_for_v2():
    cam = np.zeros((20, 20), dtype=np.float32)
    cam[1:9, 1:9] = 1.0  # larger blob: the single-box pick
    cam[12:16, 12:16] = 1.0  # smaller blob: the GT
    acc = BoxAccumulator(thresholds=[0.5])
    acc.update(cam[None], [0], [np.array([[12, 12, 16, 16]])])
    out = acc.compute()
    assert out["maxboxacc"] == 0.0
    assert out["maxboxacc_v2"] == 100.0
    assert out["best_thresholds"]["v2"] == {30: 0.5, 50: 0.5, 70: 0.5}


def test_top1_loc_needs_the_right_class():
    cams = np.stack([_square_cam(8, 8, 1, 1, 3)] * 2)
    gts = [np.array([[1, 1, 4, 4]])] * 2
    acc = BoxAccumulator(thresholds=10)
    acc.update(cams, [2, 3], gts, pred_labels=[2, 0])
    out = acc.compute()
    assert out["gt_known_loc"] == 100.0
    assert out["top1_loc"] == 50.0


def test_frames_without_boxes_are_skipped_and_counted():
    cams = np.stack([_square_cam(8, 8, 1, 1, 3)] * 2)
    acc = BoxAccumulator(thresholds=10)
    acc.update(cams, [0, 1], [np.array([[1, 1, 4, 4]]), np.zeros((0, 4))])
    out = acc.compute()
    assert out["num_frames"] == 1 and out["num_frames_without_boxes"] == 1
    assert out["per_class"] == {0: 100.0}
    empty = BoxAccumulator().compute()
    assert empty["corloc"] is None and empty["num_frames"] == 0


def _random_batch(rng, n):
    cams = rng.random((n, 24, 24)).astype(np.float32)
    cams = np.cumsum(np.cumsum(cams, 1), 2)  # smooth-ish ramps with a peak corner
    cams[rng.random(n) < 0.3] *= -1
    labels = rng.integers(0, 3, n)
    preds = rng.integers(0, 3, n)
    boxes = []
    for _ in range(n):
        k = int(rng.integers(0, 3))
        x0, y0 = rng.integers(0, 20, (2, k))
        boxes.append(np.stack([x0, y0, x0 + rng.integers(0, 4, k), y0 + rng.integers(0, 4, k)], 1))
    return cams, labels, boxes, preds


def test_merge_equals_one_accumulator():
    rng = np.random.default_rng(0)
    cams, labels, boxes, preds = _random_batch(rng, 30)
    whole = BoxAccumulator(thresholds=100)
    whole.update(cams, labels, boxes, preds)
    parts = [BoxAccumulator(thresholds=100) for _ in range(3)]
    for p, sl in zip(parts, (slice(0, 7), slice(7, 19), slice(19, 30))):
        p.update(cams[sl], labels[sl], boxes[sl], preds[sl])
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.compute() == whole.compute()
    a, b = merged.counts(), whole.counts()
    assert a["frames"] == b["frames"]
    for c in b["correct"]:
        np.testing.assert_array_equal(a["correct"][c], b["correct"][c])
    with pytest.raises(ValueError, match="thresholds"):
        whole.merge(BoxAccumulator(thresholds=10))


def test_torch_input_equals_numpy_input():
    rng = np.random.default_rng(1)
    cams, labels, boxes, preds = _random_batch(rng, 12)
    a = BoxAccumulator(thresholds=100)
    a.update(cams, labels, boxes, preds)
    b = BoxAccumulator(thresholds=100)
    b.update(
        torch.from_numpy(cams),
        torch.from_numpy(labels),
        [torch.from_numpy(x) for x in boxes],
        torch.from_numpy(preds),
    )
    assert a.compute() == b.compute()


def test_update_checks():
    acc = BoxAccumulator(thresholds=10, num_classes=2)
    cams = np.zeros((2, 8, 8))
    box = [np.array([[0, 0, 1, 1]])] * 2
    with pytest.raises(ShapeError, match="cams"):
        acc.update(np.zeros((8, 8)), [0], box[:1])
    with pytest.raises(ShapeError, match="labels"):
        acc.update(cams, [0], box)
    with pytest.raises(ShapeError, match="labels"):
        acc.update(cams, [0.0, 1.0], box)
    with pytest.raises(ShapeError, match="num_classes"):
        acc.update(cams, [0, 2], box)
    with pytest.raises(ShapeError, match="boxes"):
        acc.update(cams, [0, 1], box[:1])
    with pytest.raises(ShapeError, match=r"boxes\[1\]"):
        acc.update(cams, [0, 1], [box[0], np.array([[3, 0, 1, 1]])])
    with pytest.raises(ValueError, match="deltas"):
        BoxAccumulator(deltas=(0, 50))
