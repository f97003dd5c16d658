"""The fast sweep against the straightforward wsolevaluation loop, count for count."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from colocam_plugin.metrics import BoxAccumulator, cams_to_uint8, sweep_max_iou

DELTAS = (30, 50, 70)


# -- the straightforward loop, written out as wsolevaluation does it -------------------------
def _ref_normalize(cam: np.ndarray) -> np.ndarray:
    cam = cam.astype(np.float64 if cam.dtype == np.float64 else np.float32)  # a copy
    if np.isnan(cam).any() or not np.isfinite(cam).all() or cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    cam /= cam.max()
    return cam


def _ref_iou(box_a: np.ndarray, box_b: np.ndarray) -> np.ndarray:
    a = box_a[:, None, :].astype(np.int64)
    b = box_b[None, :, :].astype(np.int64)
    min_x = np.maximum(a[..., 0], b[..., 0])
    min_y = np.maximum(a[..., 1], b[..., 1])
    max_x = np.minimum(a[..., 2], b[..., 2])
    max_y = np.minimum(a[..., 3], b[..., 3])
    inter = np.maximum(0, max_x - min_x + 1) * np.maximum(0, max_y - min_y + 1)
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    den = area_a + area_b - inter
    bad = den <= 0
    den[bad] = 1
    iou = inter / den
    iou[bad] = 0
    return iou


def _ref_boxes(scoremap_u8: np.ndarray, threshold: float, multi: bool) -> np.ndarray:
    height, width = scoremap_u8.shape
    _, binary = cv2.threshold(
        scoremap_u8, int(threshold * np.max(scoremap_u8)), 255, cv2.THRESH_BINARY
    )
    contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) == 0:
        return np.asarray([[0, 0, 0, 0]])
    if not multi:
        contours = [max(contours, key=cv2.contourArea)]
    out = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        out.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return np.asarray(out)


def _ref_counts(cams, labels, boxes, preds, thresholds):
    """{label: (3, D, T)} single / multi / top-1 correct counts, frames per label."""
    counts, frames = {}, {}
    for cam, label, gt, pred in zip(cams, labels, boxes, preds):
        gt = np.asarray(gt).astype(np.int64)
        if len(gt) == 0:
            continue
        u8 = (_ref_normalize(cam) * 255).astype(np.uint8)
        c = counts.setdefault(int(label), np.zeros((3, 3, len(thresholds)), dtype=np.int64))
        frames[int(label)] = frames.get(int(label), 0) + 1
        for t, thr in enumerate(thresholds):
            for m, multi in enumerate((False, True)):
                best = _ref_iou(_ref_boxes(u8, thr, multi), gt).max()
                for d, delta in enumerate((30, 50, 70)):
                    if best >= delta / 100:
                        c[m, d, t] += 1
                        if m == 0 and pred == label:
                            c[2, d, t] += 1
    return counts, frames


# -- random CAMs: sums of Gaussians, blobs with holes, ties, noise, degenerate maps ------------
def _random_cam(rng: np.random.Generator, i: int) -> np.ndarray:
    kind = i % 10
    h, w = (int(v) for v in rng.integers(2, 72, size=2))
    if kind == 0:
        h, w = [(1, int(rng.integers(1, 40))), (int(rng.integers(1, 40)), 1), (2, 2)][i % 3]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cam = np.zeros((h, w))
    if kind == 1:  # constant (or NaN) map
        return np.full((h, w), np.nan if i % 20 == 1 else rng.uniform(-1, 1))
    if kind == 2:  # identical blobs: equal contour areas, the tie-break decides
        blob = np.exp(-0.5 * ((np.mgrid[-4:5, -4:5] / 2.0) ** 2).sum(0))
        for _ in range(int(rng.integers(2, 5))):
            y, x = int(rng.integers(0, max(1, h - 9))), int(rng.integers(0, max(1, w - 9)))
            patch = cam[y : y + 9, x : x + 9]
            patch += blob[: patch.shape[0], : patch.shape[1]]
        return cam
    if kind == 3:  # salt and pepper: many contours and holes
        return (rng.random((h, w)) > rng.uniform(0.3, 0.7)) * rng.uniform(0.2, 1.0, (h, w))
    for _ in range(int(rng.integers(1, 6))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        s = rng.uniform(1.0, max(1.5, min(h, w) / 3))
        amp = rng.uniform(-0.5, 1.0)
        g = np.exp(-0.5 * ((xx - cx) ** 2 + (yy - cy) ** 2) / s**2)
        if kind == 4:  # ring: a blob with a hole
            g -= np.exp(-0.5 * ((xx - cx) ** 2 + (yy - cy) ** 2) / (0.5 * s) ** 2)
        cam += amp * g
    if kind == 5:
        cam += 0.05 * rng.random((h, w))
    if kind == 6:
        cam = cam * 1000 + 3  # any range
    return cam.astype(np.float32 if i % 2 else np.float64)


def _random_boxes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    k = int(rng.integers(1, 4))
    x0 = rng.integers(0, w, k)
    y0 = rng.integers(0, h, k)
    x1 = np.minimum(w - 1, x0 + rng.integers(0, w, k))
    y1 = np.minimum(h - 1, y0 + rng.integers(0, h, k))
    return np.stack([x0, y0, x1, y1], axis=1)


def _check(rng, n, thresholds):
    cams = [_random_cam(rng, i) for i in range(n)]
    labels = rng.integers(0, 4, n)
    preds = np.where(rng.random(n) < 0.6, labels, (labels + 1) % 4)
    boxes = [_random_boxes(rng, *c.shape) for c in cams]
    ref, frames = _ref_counts(cams, labels, boxes, preds, thresholds)

    acc = BoxAccumulator(thresholds=np.asarray(thresholds), deltas=DELTAS)
    for cam, lab, box, pred in zip(cams, labels, boxes, preds):  # CAMs differ in size
        acc.update(cam[None], lab[None], [box], pred[None])
    got = acc.counts()
    assert got["frames"] == frames
    assert got["correct"].keys() == ref.keys()
    for c in ref:
        np.testing.assert_array_equal(got["correct"][c], ref[c], err_msg=f"class {c}")


def test_sweep_matches_loop_on_300_random_cams():
    rng = np.random.default_rng(20250101)
    _check(rng, 300, np.arange(0, 1, 0.004))  # the validation grid, 250 thresholds


def test_sweep_matches_loop_test_grid():
    rng = np.random.default_rng(7)
    _check(rng, 40, np.arange(0, 1, 0.001))  # the test grid, 1000 thresholds


def test_sweep_matches_loop_unsorted_thresholds():
    rng = np.random.default_rng(3)
    thr = rng.permutation(np.r_[np.arange(0, 1, 0.01), 1.0, 0.5, 0.5])
    _check(rng, 30, thr)


@pytest.mark.slow
def test_sweep_matches_loop_224():
    rng = np.random.default_rng(11)
    thr = np.arange(0, 1, 0.001)
    for i in range(20):
        h = w = 224
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cam = sum(
            rng.uniform(0.2, 1)
            * np.exp(
                -0.5
                * ((xx - rng.uniform(0, w)) ** 2 + (yy - rng.uniform(0, h)) ** 2)
                / rng.uniform(5, 60) ** 2
            )
            for _ in range(4)
        ) + 0.05 * rng.random((h, w), dtype=np.float32) * (i % 2)
        gt = _random_boxes(rng, h, w)
        u8 = cams_to_uint8(cam)
        single, multi = sweep_max_iou(u8, gt, thr)
        ref_u8 = (_ref_normalize(cam) * 255).astype(np.uint8)
        np.testing.assert_array_equal(u8, ref_u8)
        ref_s = [_ref_iou(_ref_boxes(ref_u8, t, False), gt).max() for t in thr]
        ref_m = [_ref_iou(_ref_boxes(ref_u8, t, True), gt).max() for t in thr]
        np.testing.assert_array_equal(single, ref_s)
        np.testing.assert_array_equal(multi, ref_m)


def test_sweep_chunking_does_not_change_results(monkeypatch):
    import colocam_plugin.metrics.sweep as sweep

    rng = np.random.default_rng(5)
    thr = np.arange(0, 1, 0.004)
    cams = [cams_to_uint8(_random_cam(rng, i)) for i in (3, 5, 13, 15, 23, 24)]
    gts = [_random_boxes(rng, *u.shape) for u in cams]
    before = [sweep_max_iou(u, g, thr) for u, g in zip(cams, gts)]
    monkeypatch.setattr(sweep, "MAX_CHUNK_PIXELS", 64)
    after = [sweep_max_iou(u, g, thr) for u, g in zip(cams, gts)]
    for (s0, m0), (s1, m1) in zip(before, after):
        np.testing.assert_array_equal(s0, s1)
        np.testing.assert_array_equal(m0, m1)


def test_two_pixel_specks_and_pits_are_taken_out_exactly():
    from colocam_plugin.metrics.sweep import _despeckle

    u8 = np.full((9, 10), 100, dtype=np.uint8)
    u8[:, 5:] = 20
    u8[2, 1:3] = 180  # a speck of two 8-neighbours
    u8[0, 8] = u8[1, 9] = 120  # a diagonal one on the border
    u8[6, 7] = u8[6, 8] = 120  # one more, its area (0) ties with the first
    u8[4:6, 2] = 10  # a pit of two 4-neighbours
    u8[7:9, 1] = 10  # not a pit: it touches the border
    u8[6, 2], u8[6, 3] = 150, 140  # a speck that the one-pixel step flattens first
    gt = np.array([[1, 2, 3, 3], [6, 5, 9, 8]])
    clean, _, best_key, _ = _despeckle(u8, gt)
    assert clean[2, 1] == clean[2, 2] == 100
    assert clean[0, 8] == clean[1, 9] == 20
    assert clean[6, 7] == clean[6, 8] == 20
    assert clean[4, 2] == clean[5, 2] == 100
    assert clean[7, 1] == clean[8, 1] == 10
    assert clean[6, 2] == clean[6, 3] == 100
    # the single-box key of the removed speck that starts last in raster order
    assert best_key[[110, 130, 145, 150, 180]].tolist() == [67, 62, 62, 21, -1]
    thr = np.arange(0, 1, 0.001)
    single, multi = sweep_max_iou(u8, gt, thr)
    np.testing.assert_array_equal(
        single, [_ref_iou(_ref_boxes(u8, t, False), gt).max() for t in thr]
    )
    np.testing.assert_array_equal(multi, [_ref_iou(_ref_boxes(u8, t, True), gt).max() for t in thr])


def test_sweep_rejects_bad_input():
    from colocam_plugin.errors import ShapeError

    with pytest.raises(ShapeError, match="u8"):
        sweep_max_iou(np.zeros((4, 4)), np.array([[0, 0, 1, 1]]), np.array([0.5]))
    with pytest.raises(ShapeError, match="gt_boxes"):
        sweep_max_iou(np.zeros((4, 4), np.uint8), np.zeros((0, 4)), np.array([0.5]))
