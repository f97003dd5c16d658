"""Fast, exact threshold sweep: max IoU with the GT boxes at every CAM threshold.

Gives the same numbers as the straightforward wsolevaluation loop (for each
threshold: binarise, ``cv2.findContours(RETR_TREE)``, pick the box(es), IoU
with every GT box), bit for bit, at a fraction of the cost. Why it is exact:

1. Only the integer level ``int(tau * u8.max())`` matters, and levels that no
   pixel value separates give the same foreground: ``u8 > l`` depends only on
   which values present in the map exceed ``l``. Each distinct foreground is
   contoured once and its result broadcast to all its thresholds.
2. Single-pixel specks and pits are taken out before tracing and scored in
   closed form. A pixel brighter than its 8 neighbours is, for levels between
   its neighbours' maximum and its value, a component of its own: one
   contour, box ``[x, y, x + 1, y + 1]``, area 0, touching nothing else
   (its 8-ring of background is 4-connected). Lowering it to that maximum
   removes exactly that contour at those levels and changes no other level.
   Likewise a pixel darker than its 4 neighbours is, between its value and
   their minimum, a one-pixel hole (box ``[x - 1, y - 1, x + 2, y + 2]``,
   clipped) inside one component (its 4 neighbours are pairwise 8-adjacent);
   raising it removes exactly that hole. Noisy CAMs shed most of their
   contours this way, and contour tracing is what costs.
3. Each distinct foreground of the cleaned map is cropped to the rows (and,
   per mosaic, the columns) holding its pixels and the crops are stacked into
   a mosaic, one blank row apart, so that one ``findContours`` call traces
   them all. With 8-connected foreground, a blank row keeps tiles apart; a
   crop only drops blank pixels that touch the image border (findContours
   pads the image with blank pixels), so each tile's contours are the
   full-image contours, shifted. Calls are chunked to bound the contours and
   pixels per call.
4. The mosaic is traced with ``RETR_LIST`` (the same borders as
   ``RETR_TREE``, without building the tree, which slows down superlinearly
   on noisy maps). Single-box mode needs the contour of largest area, first
   in ``RETR_TREE`` order on ties. A hole's polygon lies inside its parent's
   outer polygon and an island's inside its enclosing hole's, so the largest
   area is always reached by a top-level outer border (a hole can only tie
   with its own parent, whose polygon it then equals, box included). OpenCV
   traces outer borders with a signed shoelace sum <= 0 and holes with a sum
   > 0, starts each outer border at its component's first pixel in raster
   order, and lists the top level in reverse raster order; so the pick is the
   outer border of largest area whose start pixel comes last in raster order.
5. Bounding rectangles come from per-contour min/max of the points; the
   polygon area from the shoelace sum in int64, which is exactly the value
   ``cv2.contourArea`` computes in double (integer points, no rounding).
6. IoU uses the same integer arithmetic and division as wsolevaluation.

The randomised cross-checks against the plain loop live in
``tests/metrics/test_metrics_sweep.py`` and ``test_metrics_sweep_property.py``.
Cost: OpenCV's border following (a few ns per mosaic pixel, tens of ns per
contour pixel) over the <= 256 distinct cleaned foregrounds; see
docs/metrics.md for how it grows with CAM count, size and thresholds.
"""

from __future__ import annotations

import cv2
import numpy as np

from colocam_plugin.errors import ShapeError
from colocam_plugin.metrics.cam_boxes import box_iou

__all__ = ["sweep_max_iou"]

# Tuning knobs of the chunked mosaic (any values give the same result):
#: contours aimed at per findContours call
CHUNK_CONTOURS = 20000
#: pixels at most per findContours call
MAX_CHUNK_PIXELS = 1 << 22

_EMPTY_BOX = np.zeros((1, 4), dtype=np.int64)
_RING8 = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.uint8)
_CROSS4 = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.uint8)


def _tile_crops(u8: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bounding box of ``u8 > level`` for each level (each non-empty)."""
    height, width = u8.shape
    above_r = u8.max(axis=1)[None, :] > levels[:, None]  # (L, H)
    above_c = u8.max(axis=0)[None, :] > levels[:, None]  # (L, W)
    r0 = above_r.argmax(axis=1)
    r1 = height - 1 - above_r[:, ::-1].argmax(axis=1)
    c0 = above_c.argmax(axis=1)
    c1 = width - 1 - above_c[:, ::-1].argmax(axis=1)
    return r0, r1, c0, c1


def _contour_bound(u8: np.ndarray) -> np.ndarray:
    """Upper bound on the number of contours of ``u8 > l``, for all 256 levels (256,).

    Each 8-connected component has a first pixel (raster order) whose left,
    upper-left, upper and upper-right neighbours are background; each hole
    (4-connected background, as findContours sees it) has a first pixel whose
    left and upper neighbours are foreground. A pixel is such a candidate on
    an interval of levels (between its value and its neighbours'), so one
    pass and a few bincounts give the count for every level. Only used to
    size the findContours calls.
    """
    u = np.pad(u8, ((1, 0), (1, 1)))  # outside = 0 = background at every level
    v = u[1:, 1:-1]
    nb_max = np.maximum(np.maximum(u[:-1, :-2], u[:-1, 1:-1]), np.maximum(u[:-1, 2:], u[1:, :-2]))
    nb_min = np.minimum(u[:-1, 1:-1], u[1:, :-2])
    outer = v > nb_max  # a component's first pixel for levels nb_max <= l < v
    hole = nb_min > v  # a hole's first pixel for levels v <= l < nb_min
    diff = np.bincount(nb_max[outer], minlength=257) - np.bincount(v[outer], minlength=257)
    diff += np.bincount(v[hole], minlength=257) - np.bincount(nb_min[hole], minlength=257)
    return np.cumsum(diff)[:256]


def _range_max(lo: np.ndarray, hi: np.ndarray, values: np.ndarray, fill: float) -> np.ndarray:
    """(256,): at each level l, the max of ``values[i]`` over ``lo[i] <= l < hi[i]``."""
    out = np.full(256, fill, dtype=values.dtype)
    lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    lens = hi - lo
    total = int(lens.sum())
    if total <= 1 << 16:  # usual: short intervals, expand them
        item = np.repeat(np.arange(len(lo)), lens)
        first = np.cumsum(lens) - lens
        level = lo[item] + np.arange(total) - first[item]
        np.maximum.at(out, level, values[item])
        return out
    # long intervals: a [hi, lo] table, then running maxima over hi' >= l + 1, lo' <= l
    table = np.full((257, 257), fill, dtype=values.dtype)
    np.maximum.at(table, (hi, lo), values)
    table = np.maximum.accumulate(table[::-1], axis=0)
    table = np.maximum.accumulate(np.ascontiguousarray(table.T), axis=0)
    lv = np.arange(256)
    return table[lv, 255 - lv]


def _despeckle(u8: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, ...]:
    """Take out one-pixel specks and pits (module docstring, point 2).

    Returns:
        ``(clean, speck_iou, speck_pos, last_iou, hole_iou)``: the cleaned
        map; per level (256,), the best IoU of a speck, the raster position
        of the last speck (-1: none) and its IoU, and the best IoU of a
        one-pixel hole (-1: none).
    """
    height, width = u8.shape
    ring_max = cv2.dilate(u8, _RING8, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    peaks = np.flatnonzero(u8 > ring_max)
    clean = np.minimum(u8, ring_max)
    cross_min = cv2.erode(clean, _CROSS4, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    pits = np.flatnonzero(clean < cross_min)
    speck_iou = np.full(256, -1.0)
    speck_pos = np.full(256, -1, dtype=np.int64)
    last_iou = np.full(256, -1.0)
    hole_iou = np.full(256, -1.0)
    if len(peaks):
        y, x = np.divmod(peaks, width)
        boxes = np.stack([x, y, np.minimum(x + 1, width - 1), np.minimum(y + 1, height - 1)], 1)
        lo, hi = ring_max.ravel()[peaks], u8.ravel()[peaks]
        ious = box_iou(boxes, gt).max(axis=1)
        speck_iou = _range_max(lo, hi, ious, -1.0)
        speck_pos = _range_max(lo, hi, peaks.astype(np.int64), -1)
        has = speck_pos >= 0
        last_iou[has] = ious[np.searchsorted(peaks, speck_pos[has])]  # peaks ascend
    if len(pits):
        y, x = np.divmod(pits, width)  # never on the image border
        boxes = np.stack(
            [x - 1, y - 1, np.minimum(x + 2, width - 1), np.minimum(y + 2, height - 1)], 1
        )
        lo, hi = clean.ravel()[pits], cross_min.ravel()[pits]
        hole_iou = _range_max(lo, hi, box_iou(boxes, gt).max(axis=1), -1.0)
    clean = np.maximum(clean, cross_min)
    return clean, speck_iou, speck_pos, last_iou, hole_iou


def _mosaic_max_ious(
    u8: np.ndarray,
    levels: np.ndarray,
    crops: tuple[np.ndarray, ...],
    bound: np.ndarray,
    gt: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Per level ``u8 > levels[i]``: (single IoU, multi IoU, single area2, single start)."""
    r0, r1, c0, c1 = crops
    # Bounded contours and pixels per findContours call: the chunking only
    # changes the speed, never the result.
    cum_rows = np.zeros(len(levels) + 1, dtype=np.int64)
    cum_rows[1:] = np.cumsum(r1 - r0 + 2)
    cum_contours = np.zeros(len(levels) + 1, dtype=np.int64)
    cum_contours[1:] = np.cumsum(bound)
    widths = c1 - c0 + 1  # non-increasing: levels ascend, foregrounds nest
    out = [np.empty(len(levels)), np.empty(len(levels))]
    out += [np.empty(len(levels), dtype=np.int64), np.empty(len(levels), dtype=np.int64)]
    i = 0
    while i < len(levels):
        rows = MAX_CHUNK_PIXELS // int(widths[i])
        j = min(
            int(np.searchsorted(cum_rows, cum_rows[i] + rows, side="right")),
            int(np.searchsorted(cum_contours, cum_contours[i] + CHUNK_CONTOURS, side="right")),
        )
        sl = slice(i, max(i + 1, j - 1))
        res = _chunk_max_ious(u8, levels[sl], (r0[sl], r1[sl], c0[sl], c1[sl]), gt)
        for o, r in zip(out, res):
            o[sl] = r
        i = sl.stop
    return tuple(out)


def _chunk_max_ious(
    u8: np.ndarray, levels: np.ndarray, crops: tuple[np.ndarray, ...], gt: np.ndarray
) -> tuple[np.ndarray, ...]:
    height, width = u8.shape
    r0, r1, c0, c1 = crops
    heights = r1 - r0 + 1
    tops = np.zeros(len(levels), dtype=np.int64)
    tops[1:] = np.cumsum(heights[:-1] + 1)  # one blank row between tiles
    # tiles nest (levels ascend), so the first one's columns hold every tile: keep
    # the CAM's columns and threshold whole tile rows (no zero-filling needed)
    x0, x1 = int(c0[0]), int(c1[0]) + 1
    mosaic = np.empty((int(tops[-1] + heights[-1]), x1 - x0), dtype=np.uint8)
    mosaic[tops[1:] - 1] = 0  # the blank rows
    cols = u8[:, x0:x1]
    for t, a, b, lv in zip(tops.tolist(), r0.tolist(), (r1 + 1).tolist(), levels.tolist()):
        # THRESH_BINARY is the strict u8 > lv, written in place
        cv2.threshold(cols[a:b], lv, 1, cv2.THRESH_BINARY, dst=mosaic[t : t + b - a])

    contours, _ = cv2.findContours(mosaic, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    lens = np.fromiter(map(len, contours), dtype=np.int64, count=len(contours))
    pts = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    starts = np.zeros(len(lens), dtype=np.int64)
    starts[1:] = np.cumsum(lens[:-1])
    xs, ys = pts[:, 0], pts[:, 1]
    tile = np.searchsorted(tops, ys[starts], side="right") - 1

    # boundingRect -> [x, y, x + w, y + h], clipped, in CAM coordinates
    dy = (r0 - tops)[tile]
    dx = x0
    boxes = np.stack(
        [
            np.minimum.reduceat(xs, starts) + dx,
            np.minimum.reduceat(ys, starts) + dy,
            np.minimum(np.maximum.reduceat(xs, starts) + 1 + dx, width - 1),
            np.minimum(np.maximum.reduceat(ys, starts) + 1 + dy, height - 1),
        ],
        axis=1,
    )
    ious = box_iou(boxes, gt).max(axis=1)

    # twice the signed polygon area, exactly: sum of x_i * y_{i+1} - x_{i+1} * y_i;
    # OpenCV traces outer borders with a sum <= 0 and holes with a sum > 0
    nxt = np.arange(1, len(pts) + 1)
    nxt[starts + lens - 1] = starts
    signed = np.add.reduceat(xs * ys[nxt] - xs[nxt] * ys, starts)
    hole = signed > 0
    # raster position (CAM grid) of each border's start pixel
    start_pos = (ys[starts] + dy) * width + xs[starts] + dx

    # per tile: the outer border of largest area, ties to the last one in raster order
    order = np.lexsort((-start_pos, signed, hole, tile))
    first = np.flatnonzero(np.r_[True, tile[order][1:] != tile[order][:-1]])
    if len(first) != len(levels):  # every tile is non-empty, so has a contour
        raise RuntimeError("sweep: lost a tile in the contour mosaic")
    pick = order[first]
    return ious[pick], np.maximum.reduceat(ious[order], first), -signed[pick], start_pos[pick]


def sweep_max_iou(
    u8: np.ndarray, gt_boxes: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Max IoU with the GT boxes at every threshold, single- and multi-box mode.

    Args:
        u8: uint8 CAM (H, W), already normalised (see
            :func:`~colocam_plugin.metrics.cam_boxes.cams_to_uint8`).
        gt_boxes: int (G, 4) ``[x0, y0, x1, y1]`` in the CAM's grid, G >= 1.
        thresholds: float64 (T,) in [0, 1].

    Returns:
        ``(single, multi)``, float64 (T,) each: at threshold ``t`` the IoU of
        the largest contour's box (single) and the best IoU over all contour
        boxes (multi), each maxed over the GT boxes.

    Examples:
        >>> u8 = np.zeros((8, 8), dtype=np.uint8); u8[2:5, 3:7] = 255
        >>> single, multi = sweep_max_iou(u8, np.array([[3, 2, 7, 5]]), np.array([0.0, 0.5]))
        >>> single.tolist(), multi.tolist()
        ([1.0, 1.0], [1.0, 1.0])
    """
    if u8.ndim != 2 or u8.dtype != np.uint8:
        raise ShapeError(f"u8: expected uint8 (H, W), got {u8.dtype} {tuple(u8.shape)}")
    gt = np.asarray(gt_boxes, dtype=np.int64).reshape(-1, 4)
    if len(gt) == 0:
        raise ShapeError("gt_boxes: expected at least one box, got (0, 4)")
    u8 = np.ascontiguousarray(u8)
    # int(tau * u8.max()), as wsolevaluation computes each threshold
    levels = (np.asarray(thresholds, dtype=np.float64) * float(u8.max())).astype(np.int64)
    uniq, inv = np.unique(levels, return_inverse=True)
    present = np.flatnonzero(np.bincount(u8.ravel(), minlength=256))
    keys = np.searchsorted(present, uniq, side="right")  # same key <=> same foreground
    ukeys, first, kinv = np.unique(keys, return_index=True, return_inverse=True)
    reps = uniq[first]
    nonempty = ukeys < len(present)

    single = np.full(len(reps), box_iou(_EMPTY_BOX, gt).max())  # no contour: [0, 0, 0, 0]
    multi = single.copy()
    if nonempty.any():
        lv = np.minimum(reps[nonempty], 255)
        clean, speck_iou, speck_pos, last_iou, hole_iou = _despeckle(u8, gt)
        s = last_iou[lv]  # a level with no contour left after cleaning holds specks
        m = np.maximum(speck_iou[lv], hole_iou[lv])
        traced = lv < clean.max()
        if traced.any():
            lt = lv[traced]
            crops = _tile_crops(clean, lt)
            bound = _contour_bound(clean)[lt]
            t_single, t_multi, t_area2, t_pos = _mosaic_max_ious(clean, lt, crops, bound, gt)
            # a speck (area 0) wins the single-box pick only over area-0 borders
            # that start before it in raster order
            speck_wins = (t_area2 == 0) & (speck_pos[lt] > t_pos)
            s[traced] = np.where(speck_wins, s[traced], t_single)
            m[traced] = np.maximum(m[traced], t_multi)
        single[nonempty], multi[nonempty] = s, m
    idx = kinv[inv]
    return single[idx], multi[idx]
