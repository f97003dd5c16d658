"""Fast, exact threshold sweep: max IoU with the GT boxes at every CAM threshold.

Gives the same numbers as the straightforward wsolevaluation loop (for each
threshold: binarise, ``cv2.findContours(RETR_TREE)``, pick the box(es), IoU
with every GT box), bit for bit, at a fraction of the cost. Why it is exact:

1. Only the integer level ``int(tau * u8.max())`` matters, and levels that no
   pixel value separates give the same foreground: ``u8 > l`` depends only on
   which values present in the map exceed ``l``. Each distinct foreground is
   contoured once and its result broadcast to all its thresholds.
2. One- and two-pixel specks and pits are taken out before tracing and scored
   in closed form (:func:`_despeckle`). A speck is a set S of one pixel, or
   two 8-adjacent pixels of equal value v, whose other 8-neighbours are all
   lower, at most m: for levels m <= l < v it is a component of its own (one
   contour, box of S, polygon area 0, start pixel S's first in raster order,
   touching nothing else: its ring of background is 4-connected). Lowering S
   to m removes exactly that contour at those levels and changes no other
   level. A pit is a set of one pixel, or two 4-adjacent pixels of equal value
   v, off the image border, whose other 4-neighbours are all higher, at least
   m: for levels v <= l < m it is a hole (box: the set's box grown by one
   pixel, clipped) inside one component (those 4-neighbours are 8-connected;
   every other foreground neighbour touches them). Raising it to m removes
   exactly that hole, and leaves that component's outer border, filled area,
   box and start pixel as they were. Applied in turn (one-pixel specks, then
   two-pixel specks, one-pixel pits, two-pixel pits), each step keeps the
   other contours of its input, so the traced contours plus the removed ones
   are the contours of the CAM at every level. A one-pixel peak above a
   neighbour becomes, once lowered, a two-pixel plateau; noisy CAMs shed most
   of their contours this way, and contour tracing is what costs (about 1 us
   per contour in OpenCV alone).
3. Each distinct foreground of the cleaned map is cropped to the rows (and,
   per mosaic, the columns) holding its pixels and the crops are stacked into
   a mosaic, one blank row apart, so that one ``findContours`` call traces
   them all. With 8-connected foreground, a blank row keeps tiles apart; a
   crop only drops blank pixels that touch the image border (findContours
   pads the image with blank pixels), so each tile's contours are the
   full-image contours, shifted. Calls are chunked to bound the pixels per
   call (a mosaic that stays in cache traces faster), and a chunk ends where
   the tiles get much narrower than its first one (less blank to scan). The
   contours of all chunks are then measured together, in a few numpy passes.
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
   A removed speck (area 0) can only win over traced borders of area 0, and
   only if it starts later in raster order: both compare by the key
   ``area2 * H * W + start pixel``.
5. Bounding rectangles come from per-contour min/max of the points; the
   polygon area from the shoelace sum in integers (int32 products, which
   cannot overflow at these mosaic sizes, summed in int64), which is exactly
   the value ``cv2.contourArea`` computes in double (no rounding).
6. IoU uses the same integer arithmetic and division as wsolevaluation.

The randomised cross-checks against the plain loop live in
``tests/metrics/test_metrics_sweep.py`` and ``test_metrics_sweep_property.py``.
Cost: OpenCV's border following over the <= 256 distinct cleaned foregrounds
(a fraction of a ns per mosaic pixel, about 10 ns per border pixel, 1 to 3 us
per contour, which is why the small specks go first), about half of the
time; see docs/metrics.md for how it grows with CAM count, size and
thresholds.
"""

from __future__ import annotations

import cv2
import numpy as np

from colocam_plugin.errors import ShapeError
from colocam_plugin.metrics.cam_boxes import box_iou

__all__ = ["sweep_max_iou"]

#: pixels at most per findContours call (any value gives the same result)
MAX_CHUNK_PIXELS = 1 << 20

_EMPTY_BOX = np.zeros((1, 4), dtype=np.int64)
_RING8 = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.uint8)
_CROSS4 = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.uint8)
_OFFSETS8 = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
_OFFSETS4 = ((-1, 0), (0, -1), (0, 1), (1, 0))


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
    np.maximum.at(table.ravel(), hi * 257 + lo, values)
    table = np.maximum.accumulate(table[::-1], axis=0)
    table = np.maximum.accumulate(np.ascontiguousarray(table.T), axis=0)
    lv = np.arange(256)
    return table[lv, 255 - lv]


def _max_iou(
    x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, gt: np.ndarray
) -> np.ndarray:
    """Best IoU over the GT boxes of each box ``[x0, y0, x1, y1]`` (int64 columns).

    The arithmetic of :func:`~colocam_plugin.metrics.cam_boxes.box_iou`, one GT
    box at a time on contiguous columns (a few GT boxes, thousands of boxes).
    """
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    best = np.full(len(x0), -np.inf)
    for g0, h0, g1, h1 in gt.tolist():
        iw = np.minimum(x1, g1) - np.maximum(x0, g0) + 1
        ih = np.minimum(y1, h1) - np.maximum(y0, h0) + 1
        inter = np.maximum(iw, 0) * np.maximum(ih, 0)
        denom = area + (g1 - g0 + 1) * (h1 - h0 + 1) - inter
        bad = denom <= 0
        iou = inter / np.where(bad, 1, denom)
        iou[bad] = 0.0
        np.maximum(best, iou, out=best)
    return best


def _flat_pairs(
    cur: np.ndarray, offsets: tuple[tuple[int, int], ...], candidates: np.ndarray, specks: bool
) -> tuple[np.ndarray, ...]:
    """Two adjacent pixels of equal value v, all their other neighbours below (above) v.

    Args:
        cur: uint8 map (H, W).
        offsets: the neighbourhood, 8 (specks) or 4 (pits) ``(dy, dx)``.
        candidates: bool (H, W), the pixels with no neighbour above (specks) or
            below (pits) their value; outside the image counts as 0.
        specks: the neighbours of a pair are all lower (specks) or higher (pits).

    Returns:
        ``(p, q, v, bound)``, one entry per pair: flat indices ``p < q``,
        their value, and the highest (specks) or lowest (pits) value among
        their other neighbours (-1 for a speck with none). A pit never
        touches the image border.

    Examples:
        >>> cur = np.array([[0, 0, 0, 0], [0, 7, 7, 0], [0, 0, 0, 3]], dtype=np.uint8)
        >>> candidates = cur == _ring_max(cur)
        >>> [a.tolist() for a in _flat_pairs(cur, _OFFSETS8, candidates, specks=True)]
        [[5], [6], [7], [3]]
    """
    height, width = cur.shape
    # exactly one equal neighbour: with the candidates' other neighbours all on one
    # side of v, two such pixels that are neighbours and equal form a pair
    pad = cv2.copyMakeBorder(cur, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    equal = [pad[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] == cur for dy, dx in offsets]
    count = np.zeros((height, width), dtype=np.uint8)
    for e in equal:
        count += e
    single = candidates & (count == 1)
    if not specks:  # a pit's equal neighbour may not be the (zero) outside
        single[[0, -1], :] = False
        single[:, [0, -1]] = False
    ps, qs = [], []
    for (dy, dx), e in zip(offsets, equal):
        if (dy, dx) < (0, 0):  # each pair once, from its first pixel in raster order
            continue
        mate = np.zeros((height, width), dtype=bool)
        mate[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)] = single[
            max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)
        ]
        p = np.flatnonzero(single & e & mate)
        ps.append(p)
        qs.append(p + dy * width + dx)
    p, q = np.concatenate(ps), np.concatenate(qs)
    # the bound over the other neighbours of both pixels (outside the image: -1 or 256)
    wp = width + 2
    fill = -1 if specks else 256
    padded = cv2.copyMakeBorder(cur.astype(np.int16), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=fill)
    steps = np.array([dy * wp + dx for dy, dx in offsets])
    pp, qp = p + p // width * 2 + wp + 1, q + q // width * 2 + wp + 1  # (y+1, x+1) padded
    around = np.concatenate([pp[:, None] + steps, qp[:, None] + steps], axis=1)
    nb = padded.ravel()[around]
    nb[(around == pp[:, None]) | (around == qp[:, None])] = fill
    bound = nb.max(axis=1) if specks else nb.min(axis=1)
    return p, q, cur.ravel()[p], bound


def _ring_max(a: np.ndarray) -> np.ndarray:
    """Max over the 8 neighbours (outside the image: 0)."""
    return cv2.dilate(a, _RING8, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def _cross_min(a: np.ndarray) -> np.ndarray:
    """Min over the 4 neighbours (outside the image: 0)."""
    return cv2.erode(a, _CROSS4, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def _despeckle(u8: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, ...]:
    """Take out one- and two-pixel specks and pits, scored in closed form (module doc, 2).

    Returns:
        ``(clean, extra_iou, best_key, best_iou)``: the cleaned map; per level
        (256,), the best IoU of a removed contour (-1: none); among the
        removed components, the largest single-box key ``area2 * H * W +
        first pixel`` (area2 is twice the polygon area, here always 0; -1:
        none) and that component's IoU.
    """
    height, width = u8.shape
    clean = u8.copy()
    flat = clean.ravel()
    comps: list[tuple[np.ndarray, ...]] = []  # (lo, hi, x0, y0, x1, y1, key)
    holes: list[tuple[np.ndarray, ...]] = []
    # one-pixel specks: a component for ring max <= l < value; lowering the higher
    # pixel of a two-pixel speck makes it flat for the next step
    ring = _ring_max(clean)
    peaks = np.flatnonzero(clean > ring)
    y, x = np.divmod(peaks, width)
    box = (x, y, np.minimum(x + 1, width - 1), np.minimum(y + 1, height - 1))
    comps.append((ring.ravel()[peaks], flat[peaks], *box, peaks))
    np.minimum(clean, ring, out=clean)
    # two-pixel specks: equal 8-neighbours, nothing around as high
    ring = _ring_max(clean)
    p, q, v, bound = _flat_pairs(clean, _OFFSETS8, (clean == ring) & (clean > 0), specks=True)
    lo = np.maximum(bound, 0)
    y0, x0 = np.divmod(p, width)
    y1, x1 = np.divmod(q, width)
    x_lo, x_hi = np.minimum(x0, x1), np.maximum(x0, x1)
    box = (x_lo, y0, np.minimum(x_hi + 1, width - 1), np.minimum(y1 + 1, height - 1))
    comps.append((lo, v, *box, p))
    flat[p] = lo
    flat[q] = lo
    # one-pixel pits: a hole for value <= l < cross min (never on the image border)
    cross = _cross_min(clean)
    pits = np.flatnonzero(clean < cross)
    y, x = np.divmod(pits, width)
    box = (x - 1, y - 1, np.minimum(x + 2, width - 1), np.minimum(y + 2, height - 1))
    holes.append((flat[pits], cross.ravel()[pits], *box))
    np.maximum(clean, cross, out=clean)
    # two-pixel pits: equal 4-neighbours, nothing around as low, off the border
    p, q, v, bound = _flat_pairs(clean, _OFFSETS4, clean == _cross_min(clean), specks=False)
    y0, x0 = np.divmod(p, width)
    y1, x1 = np.divmod(q, width)
    x_lo, x_hi = np.minimum(x0, x1), np.maximum(x0, x1)
    box = (x_lo - 1, y0 - 1, np.minimum(x_hi + 2, width - 1), np.minimum(y1 + 2, height - 1))
    holes.append((v, bound, *box))
    flat[p] = bound
    flat[q] = bound

    c_lo, c_hi, c_x0, c_y0, c_x1, c_y1, c_key = (np.concatenate(k) for k in zip(*comps))
    h_lo, h_hi, h_x0, h_y0, h_x1, h_y1 = (np.concatenate(k) for k in zip(*holes))
    c_iou = _max_iou(c_x0, c_y0, c_x1, c_y1, gt)
    h_iou = _max_iou(h_x0, h_y0, h_x1, h_y1, gt)
    extra_iou = np.maximum(_range_max(c_lo, c_hi, c_iou, -1.0), _range_max(h_lo, h_hi, h_iou, -1.0))
    # the removed component that the single-box pick would take, per level: at one
    # level the removed components are disjoint, so their keys differ (not so
    # across levels: rank them, ties in any order)
    order = np.argsort(c_key, kind="stable")
    best = _range_max(c_lo[order], c_hi[order], np.arange(len(order)), -1)
    at, has = np.maximum(best, 0), best >= 0
    best_key = np.where(has, c_key[order][at] if len(order) else 0, -1)
    best_iou = np.where(has, c_iou[order][at] if len(order) else 0.0, -1.0)
    return clean, extra_iou, best_key, best_iou


def _trace_chunk(
    u8: np.ndarray, levels: np.ndarray, crops: tuple[np.ndarray, ...]
) -> tuple[list[np.ndarray], int]:
    """Contours of ``u8 > levels[i]``, tile under tile one blank row apart; the column shift."""
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
    return list(contours), x0


def _mosaic_max_ious(
    u8: np.ndarray, levels: np.ndarray, crops: tuple[np.ndarray, ...], gt: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Per level ``u8 > levels[i]``: (single IoU, multi IoU, single area2, single start)."""
    height, width = u8.shape
    r0, r1, c0, c1 = crops
    n_tiles = len(levels)
    # one virtual mosaic of all tiles, traced in chunks of bounded pixels (a mosaic
    # that stays in cache traces faster; the chunking never changes the result)
    tops = np.zeros(n_tiles + 1, dtype=np.int64)
    np.cumsum(r1 - r0 + 2, out=tops[1:])
    widths = c1 - c0 + 1  # non-increasing: levels ascend, foregrounds nest
    contours: list[np.ndarray] = []
    chunk_rows, chunk_cols, chunk_counts = [], [], []
    # a chunk is as wide as its first tile: start a new one where the tiles narrow
    narrow = np.searchsorted(-widths, -(widths * 3 // 4), side="right")
    i = 0
    while i < n_tiles:
        rows = MAX_CHUNK_PIXELS // int(widths[i])
        j = int(np.searchsorted(tops, tops[i] + rows, side="right")) - 1
        sl = slice(i, max(i + 1, min(j, int(narrow[i]))))
        found, x0 = _trace_chunk(u8, levels[sl], (r0[sl], r1[sl], c0[sl], c1[sl]))
        contours += found
        chunk_rows.append(tops[i])
        chunk_cols.append(x0)
        chunk_counts.append(len(found))
        i = sl.stop

    n = len(contours)
    lens = np.fromiter(map(len, contours), dtype=np.int64, count=n)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    ends = starts + lens - 1
    # points as two contiguous rows (x, y); int32 products cannot overflow here
    xy = np.concatenate(contours).reshape(-1, 2).T.copy()
    if (width + 1) * (int(tops[-1]) + 1) >= 1 << 30:
        xy = xy.astype(np.int64)
    xs, ys = xy
    low = np.minimum.reduceat(xy, starts, axis=1).astype(np.int64)
    high = np.maximum.reduceat(xy, starts, axis=1).astype(np.int64)
    sx, sy = xs[starts].astype(np.int64), ys[starts].astype(np.int64)
    # contour -> its chunk's shift into the virtual mosaic -> its tile
    dx = np.repeat(chunk_cols, chunk_counts)
    row = sy + np.repeat(chunk_rows, chunk_counts)
    tile = np.searchsorted(tops, row, side="right") - 1
    dy = row - sy + (r0 - tops[:-1])[tile]  # chunk rows -> CAM rows

    # boundingRect -> [x, y, x + w, y + h], clipped, in CAM coordinates
    ious = _max_iou(
        low[0] + dx,
        low[1] + dy,
        np.minimum(high[0] + 1 + dx, width - 1),
        np.minimum(high[1] + 1 + dy, height - 1),
        gt,
    )

    # twice the signed polygon area, exactly: sum of x_i * y_{i+1} - x_{i+1} * y_i over
    # each closed polygon (the term across two contours is replaced by the closing one);
    # OpenCV traces outer borders with a sum <= 0 and holes with a sum > 0
    cross = np.empty_like(xs)
    np.multiply(xs[:-1], ys[1:], out=cross[:-1])
    cross[:-1] -= xs[1:] * ys[:-1]
    cross[ends] = xs[ends] * ys[starts] - xs[starts] * ys[ends]
    area2 = -np.add.reduceat(cross, starts, dtype=np.int64)

    # per tile: the outer border of largest area, ties to the last one in raster order
    pixels = height * width
    key = np.where(area2 >= 0, area2 * pixels + (sy + dy) * width + sx + dx, -1)
    best = np.full(n_tiles, -1, dtype=np.int64)
    np.maximum.at(best, tile, key)
    if (best < 0).any():  # every tile is non-empty, so has an outer border
        raise RuntimeError("sweep: lost a tile in the contour mosaic")
    multi = np.full(n_tiles, -1.0)
    np.maximum.at(multi, tile, ious)
    pick = key == best[tile]
    single = np.empty(n_tiles)
    single[tile[pick]] = ious[pick]
    return single, multi, best // pixels, best % pixels


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
        clean, extra_iou, best_key, best_iou = _despeckle(u8, gt)
        s = best_iou[lv]  # a level with no contour left after cleaning holds specks
        m = extra_iou[lv]
        traced = lv < clean.max()
        if traced.any():
            lt = lv[traced]
            crops = _tile_crops(clean, lt)
            t_single, t_multi, t_area2, t_pos = _mosaic_max_ious(clean, lt, crops, gt)
            # a removed speck wins the single-box pick over a smaller traced border,
            # or an equal one that starts before it in raster order
            speck_wins = best_key[lt] > t_area2 * (u8.shape[0] * u8.shape[1]) + t_pos
            s[traced] = np.where(speck_wins, s[traced], t_single)
            m[traced] = np.maximum(m[traced], t_multi)
        single[nonempty], multi[nonempty] = s, m
    idx = kinv[inv]
    return single[idx], multi[idx]
