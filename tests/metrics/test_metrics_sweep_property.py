"""Property test: the fast sweep equals the straightforward loop on random multi-blob CAMs.

Hypothesis draws CAMs of the kinds that stress the sweep's shortcuts: several
Gaussian blobs, pixel noise (one-pixel specks and pits, taken out before
tracing), quantised plateaus (ties between equal-area contours) and rings
(holes), at small sizes so that the plain per-threshold OpenCV loop stays fast.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_metrics_sweep import _ref_boxes, _ref_iou  # same folder (rootdir-less import)

from colocam_plugin.metrics import cams_to_uint8, sweep_max_iou


@st.composite
def multi_blob_cams(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(cam float32 (H, W), gt int (G, 4)) with 1-5 blobs, noise and optional quantisation."""
    seed = draw(st.integers(0, 2**32 - 1))
    h, w = draw(st.integers(4, 48)), draw(st.integers(4, 48))
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cam = np.zeros((h, w))
    for _ in range(draw(st.integers(1, 5))):
        cx, cy = rng.uniform(-2, w + 2), rng.uniform(-2, h + 2)
        s = rng.uniform(0.7, max(1.0, min(h, w) / 2))
        g = np.exp(-0.5 * ((xx - cx) ** 2 + (yy - cy) ** 2) / s**2)
        if draw(st.booleans()):  # a ring: a blob with a hole
            g -= np.exp(-0.5 * ((xx - cx) ** 2 + (yy - cy) ** 2) / (0.5 * s) ** 2)
        cam += rng.uniform(0.2, 1.0) * g
    cam += draw(st.sampled_from([0.0, 0.01, 0.05, 0.2, 0.6])) * rng.random((h, w))
    levels = draw(st.sampled_from([0, 3, 8, 40]))
    if levels:  # plateaus: many equal values, equal-area contours, ties
        cam = np.floor(cam / cam.max() * levels)
    k = int(rng.integers(1, 4))
    x0, y0 = rng.integers(0, w, k), rng.integers(0, h, k)
    x1 = np.minimum(w - 1, x0 + rng.integers(0, w, k))
    y1 = np.minimum(h - 1, y0 + rng.integers(0, h, k))
    return cam.astype(np.float32), np.stack([x0, y0, x1, y1], axis=1)


@settings(max_examples=150, deadline=None)
@given(multi_blob_cams(), st.sampled_from([50, 250, 1000]))
def test_sweep_equals_loop_on_random_multi_blob_cams(case, n_thresholds):
    cam, gt = case
    thresholds = np.arange(0, 1, 1 / n_thresholds)
    u8 = cams_to_uint8(cam)
    single, multi = sweep_max_iou(u8, gt, thresholds)
    ref_single = [_ref_iou(_ref_boxes(u8, t, False), gt).max() for t in thresholds]
    ref_multi = [_ref_iou(_ref_boxes(u8, t, True), gt).max() for t in thresholds]
    np.testing.assert_array_equal(single, ref_single)
    np.testing.assert_array_equal(multi, ref_multi)


@st.composite
def speckled_cams(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(cam float32 (H, W), gt int (G, 4)): blobs strewn with one- and two-pixel specks and pits.

    The specks and pits are the ones the sweep takes out before tracing: single
    pixels and 8-adjacent (specks) or 4-adjacent (pits) pairs of equal value,
    anywhere, the image border included, often at equal values (ties between
    equal-area contours) and on constant maps (an empty foreground).
    """
    seed = draw(st.integers(0, 2**32 - 1))
    h, w = draw(st.integers(1, 32)), draw(st.integers(1, 32))
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cam = np.full((h, w), draw(st.sampled_from([0.0, 0.5])))
    for _ in range(draw(st.integers(0, 3))):
        cx, cy, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1.0, max(1.5, min(h, w) / 2))
        cam += rng.uniform(0.2, 1.0) * np.exp(-0.5 * ((xx - cx) ** 2 + (yy - cy) ** 2) / s**2)
    steps = ((0, 1), (1, -1), (1, 0), (1, 1))
    for _ in range(draw(st.integers(0, max(1, h * w // 6)))):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        value = cam[y, x] + rng.choice([-1.0, 1.0]) * rng.choice([0.05, 0.3, 1.0])
        cam[y, x] = value
        if rng.random() < 0.6:  # a pair: same value on an 8- (or 4-) neighbour
            dy, dx = steps[int(rng.integers(0, 4))]
            if 0 <= y + dy < h and 0 <= x + dx < w:
                cam[y + dy, x + dx] = value
    levels = draw(st.sampled_from([0, 4, 16]))
    if levels and cam.max() > cam.min():  # plateaus and equal specks: ties
        cam = np.floor((cam - cam.min()) / (cam.max() - cam.min()) * levels)
    k = int(rng.integers(1, 4))
    x0, y0 = rng.integers(0, w, k), rng.integers(0, h, k)
    x1 = np.minimum(w - 1, x0 + rng.integers(0, w, k))
    y1 = np.minimum(h - 1, y0 + rng.integers(0, h, k))
    return cam.astype(np.float32), np.stack([x0, y0, x1, y1], axis=1)


@settings(max_examples=150, deadline=None)
@given(speckled_cams(), st.sampled_from([50, 1000]))
def test_sweep_equals_loop_on_speckled_cams(case, n_thresholds):
    cam, gt = case
    thresholds = np.arange(0, 1, 1 / n_thresholds)
    u8 = cams_to_uint8(cam)
    single, multi = sweep_max_iou(u8, gt, thresholds)
    ref_single = [_ref_iou(_ref_boxes(u8, t, False), gt).max() for t in thresholds]
    ref_multi = [_ref_iou(_ref_boxes(u8, t, True), gt).max() for t in thresholds]
    np.testing.assert_array_equal(single, ref_single)
    np.testing.assert_array_equal(multi, ref_multi)
