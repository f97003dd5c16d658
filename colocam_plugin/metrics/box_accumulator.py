"""Mergeable box-localization counts: CorLoc, MaxBoxAcc(V2), top-1 / GT-known Loc.

The accumulator stores integer counts, never averages: correct frames per
(class, delta, threshold) for the single-box and the multi-box mode, the same
for top-1 Loc (box correct AND predicted class correct), and frames per class.
Shards (workers, GPUs, files) each fill one and :meth:`BoxAccumulator.merge`
adds them up; the result equals one accumulator fed all frames. Drop the
frames a ``DistributedSampler`` repeats to pad its shards before updating:
counts cannot tell a repeated frame from a new one.

Definitions (wsolevaluation, EVALUATION.md): a frame is correct at delta
when the best IoU over (predicted box, GT box) pairs is ``>= delta / 100``;
BoxAcc(tau, delta) = 100 * correct / frames; MaxBoxAcc = max over tau (the
first, i.e. smallest, tau on ties).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from colocam_plugin.errors import ShapeError
from colocam_plugin.metrics.cam_boxes import cams_to_uint8, default_thresholds
from colocam_plugin.metrics.sweep import sweep_max_iou

__all__ = ["BoxAccumulator", "as_int_boxes"]

_MODES = 3  # single box, multi box, top-1 (single box and right class)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_int_boxes(boxes: Any, *, name: str = "boxes") -> np.ndarray:
    """GT boxes ``[x0, y0, x1, y1]`` as int64 (k, 4), truncating floats like ``int()``.

    Args:
        boxes: (k, 4) or (4,) numbers (numpy, torch or a list), k may be 0.
        name: field name for error messages.

    Raises:
        ShapeError: wrong shape, NaN/inf, negative coordinates or x1 < x0, y1 < y0.

    Examples:
        >>> as_int_boxes([[1.9, 2.0, 5.5, 6.0]]).tolist()
        [[1, 2, 5, 6]]
    """
    arr = _to_numpy(boxes)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ShapeError(f"{name}: expected (k, 4) boxes [x0, y0, x1, y1], got {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ShapeError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ShapeError(f"{name}: has NaN or inf coordinates")
    out = arr.astype(np.int64)  # truncation toward zero, as int()
    if (out < 0).any() or (out[:, 2] < out[:, 0]).any() or (out[:, 3] < out[:, 1]).any():
        bad = out[(out < 0).any(1) | (out[:, 2] < out[:, 0]) | (out[:, 3] < out[:, 1])][0]
        raise ShapeError(f"{name}: expected 0 <= x0 <= x1 and 0 <= y0 <= y1, got {bad.tolist()}")
    return out


class BoxAccumulator:
    """Counts for CorLoc, MaxBoxAcc, MaxBoxAccV2, top-1 Loc and GT-known Loc.

    Args:
        thresholds: CAM thresholds, a count n (``np.arange(0, 1, 1 / n)``;
            1000 on test, 250 on validation) or values in [0, 1].
        deltas: IoU thresholds in percent for MaxBoxAccV2 (delta 50 is always
            counted too, for CorLoc and MaxBoxAcc).
        num_classes: if given, labels must lie in ``[0, num_classes)``.

    A frame with no GT box cannot be scored (wsolevaluation always has one):
    it is skipped and counted in ``num_frames_without_boxes``.

    Examples:
        >>> cams = np.zeros((2, 16, 16)); cams[0, 2:8, 3:9] = 1; cams[1, 8:, 8:] = 1
        >>> acc = BoxAccumulator(thresholds=10)
        >>> acc.update(cams, [0, 1], [np.array([[3, 2, 8, 7]]), np.array([[0, 0, 5, 5]])])
        >>> out = acc.compute()
        >>> out["corloc"], out["per_class"], out["num_frames"]
        (50.0, {0: 100.0, 1: 0.0}, 2)
    """

    def __init__(
        self,
        *,
        thresholds: int | Sequence[float] | np.ndarray = 1000,
        deltas: Sequence[int] = (30, 50, 70),
        num_classes: int | None = None,
    ) -> None:
        self.thresholds = default_thresholds(thresholds)
        ds = [int(d) for d in deltas]
        if not ds or any(d != float(x) or not 0 < d <= 100 for d, x in zip(ds, deltas)):
            raise ValueError(f"deltas: expected integers in (0, 100], got {tuple(deltas)}")
        self.deltas = tuple(sorted(set(ds)))
        self._all_deltas = tuple(sorted(set(ds) | {50}))
        self._fracs = np.array([d / 100 for d in self._all_deltas])[:, None]
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes: expected >= 1, got {num_classes}")
        self.num_classes = num_classes
        # label -> int64 (3, D, T): single, multi, top-1 correct counts
        self._correct: dict[int, np.ndarray] = {}
        self._frames: dict[int, int] = {}
        self._frames_with_pred: dict[int, int] = {}
        self.num_frames_without_boxes = 0

    # -- filling ---------------------------------------------------------------------------
    def update(
        self,
        cams: Any,
        labels: Any,
        boxes: Sequence[Any],
        pred_labels: Any | None = None,
    ) -> None:
        """Add frames.

        Args:
            cams: (N, H, W) numpy or torch, any range (min-max normalised here).
            labels: (N,) integer class of each frame.
            boxes: N arrays (k_i, 4) ``[x0, y0, x1, y1]`` in the CAM's pixel
                grid (floats truncated like ``int()``); k_i may be 0.
            pred_labels: (N,) predicted class (top-1), for top-1 Loc.
        """
        u8 = cams_to_uint8(cams)
        n = len(u8)
        lab = self._labels(labels, n, "labels")
        pred = None if pred_labels is None else self._labels(pred_labels, n, "pred_labels")
        if len(boxes) != n:
            raise ShapeError(f"boxes: expected one (k, 4) array per frame ({n}), got {len(boxes)}")
        zeros = (_MODES, len(self._all_deltas), len(self.thresholds))
        for i in range(n):
            gt = as_int_boxes(boxes[i], name=f"boxes[{i}]")
            if len(gt) == 0:
                self.num_frames_without_boxes += 1
                continue
            single, multi = sweep_max_iou(u8[i], gt, self.thresholds)
            c = int(lab[i])
            counts = self._correct.setdefault(c, np.zeros(zeros, dtype=np.int64))
            hit = single[None, :] >= self._fracs  # (D, T)
            counts[0] += hit
            counts[1] += multi[None, :] >= self._fracs
            self._frames[c] = self._frames.get(c, 0) + 1
            if pred is not None:
                self._frames_with_pred[c] = self._frames_with_pred.get(c, 0) + 1
                if pred[i] == c:
                    counts[2] += hit

    def _labels(self, labels: Any, n: int, name: str) -> np.ndarray:
        arr = _to_numpy(labels)
        if arr.shape != (n,):
            raise ShapeError(f"{name}: expected ({n},) to match cams, got {arr.shape}")
        if arr.dtype.kind not in "iu":
            raise ShapeError(f"{name}: expected integers, got dtype {arr.dtype}")
        if n and arr.min() < 0:
            raise ShapeError(f"{name}: expected classes >= 0, got {int(arr.min())}")
        if n and self.num_classes is not None and arr.max() >= self.num_classes:
            raise ShapeError(
                f"{name}: expected classes < num_classes={self.num_classes}, got {int(arr.max())}"
            )
        return arr

    def merge(self, other: BoxAccumulator) -> BoxAccumulator:
        """Add ``other``'s counts to this accumulator (in place) and return it."""
        if not isinstance(other, BoxAccumulator):
            raise TypeError(f"merge: expected a BoxAccumulator, got {type(other).__name__}")
        if not np.array_equal(self.thresholds, other.thresholds) or self.deltas != other.deltas:
            raise ValueError("merge: accumulators use different thresholds or deltas")
        if self.num_classes != other.num_classes:
            raise ValueError("merge: accumulators use different num_classes")
        for c, counts in other._correct.items():
            if c in self._correct:
                self._correct[c] = self._correct[c] + counts
            else:
                self._correct[c] = counts.copy()
        for mine, theirs in (
            (self._frames, other._frames),
            (self._frames_with_pred, other._frames_with_pred),
        ):
            for c, k in theirs.items():
                mine[c] = mine.get(c, 0) + k
        self.num_frames_without_boxes += other.num_frames_without_boxes
        return self

    def dense_counts(self) -> np.ndarray:
        """Every count in one flat int64 vector of fixed length, for an all-reduce.

        The layout depends only on ``num_classes``, the thresholds and the
        deltas, so the vectors of shards (processes) line up and their SUM,
        given to :meth:`load_dense_counts`, is the merged accumulator (as
        :meth:`merge`, without pickling): ``correct`` (C, 3, D, T), ``frames``
        (C), ``frames_with_pred`` (C), ``num_frames_without_boxes`` (1).

        Raises:
            ValueError: ``num_classes`` was not given (the layout would vary).

        Examples:
            >>> a = BoxAccumulator(thresholds=4, num_classes=2)
            >>> b = BoxAccumulator(thresholds=4, num_classes=2)
            >>> a.update(np.eye(4)[None], [1], [np.array([[0, 0, 1, 1]])])
            >>> b.load_dense_counts(a.dense_counts() + b.dense_counts())
            >>> b.compute() == a.compute()
            True
        """
        c = self._num_classes_for_dense()
        shape = (c, _MODES, len(self._all_deltas), len(self.thresholds))
        correct = np.zeros(shape, dtype=np.int64)
        frames = np.zeros(c, dtype=np.int64)
        with_pred = np.zeros(c, dtype=np.int64)
        for k, v in self._correct.items():
            correct[k] = v
        for k, n in self._frames.items():
            frames[k] = n
        for k, n in self._frames_with_pred.items():
            with_pred[k] = n
        tail = np.array([self.num_frames_without_boxes], dtype=np.int64)
        return np.concatenate([correct.ravel(), frames, with_pred, tail])

    def load_dense_counts(self, counts: Any) -> None:
        """Replace this accumulator's counts by a :meth:`dense_counts` vector (e.g. a sum).

        Raises:
            ShapeError: the vector's length does not fit this accumulator's layout.
        """
        c = self._num_classes_for_dense()
        shape = (c, _MODES, len(self._all_deltas), len(self.thresholds))
        size = int(np.prod(shape))
        arr = _to_numpy(counts).astype(np.int64).ravel()
        if arr.shape != (size + 2 * c + 1,):
            raise ShapeError(
                f"counts: expected {size + 2 * c + 1} dense counts for this accumulator, "
                f"got {arr.shape}"
            )
        correct = arr[:size].reshape(shape)
        frames = arr[size : size + c]
        with_pred = arr[size + c : size + 2 * c]
        # a class is present exactly when it has scored frames, as update() builds it
        self._correct = {k: correct[k].copy() for k in range(c) if frames[k] > 0}
        self._frames = {k: int(frames[k]) for k in range(c) if frames[k] > 0}
        self._frames_with_pred = {k: int(with_pred[k]) for k in range(c) if with_pred[k] > 0}
        self.num_frames_without_boxes = int(arr[-1])

    def _num_classes_for_dense(self) -> int:
        if self.num_classes is None:
            raise ValueError("dense counts need the accumulator's num_classes")
        return self.num_classes

    # -- results ---------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Frames scored (with at least one GT box)."""
        return sum(self._frames.values())

    def counts(self) -> dict[str, Any]:
        """Raw counts: ``{"correct": {label: int64 (3, D, T)}, "frames": {label: int}, ...}``.

        ``correct[label][m, d, t]``: mode m (0 single box, 1 multi box, 2 top-1),
        delta ``deltas_counted[d]``, threshold ``thresholds[t]``.
        """
        return {
            "correct": {c: v.copy() for c, v in sorted(self._correct.items())},
            "frames": dict(sorted(self._frames.items())),
            "frames_with_pred": dict(sorted(self._frames_with_pred.items())),
            "deltas_counted": self._all_deltas,
            "thresholds": self.thresholds.copy(),
            "num_frames_without_boxes": self.num_frames_without_boxes,
        }

    def compute(self) -> dict[str, Any]:
        """Scores in percent.

        Returns:
            ``corloc`` (class-avg: MaxBoxAcc at delta 50, single box, tau per
            class, mean over classes present), ``corloc_pooled`` (all frames,
            one tau; equals ``maxboxacc``), ``maxboxacc`` (delta 50, single
            box), ``maxboxacc_v2`` (mean over ``deltas`` of the multi-box
            MaxBoxAcc, tau per delta), ``top1_loc`` and ``gt_known_loc``
            (delta 50, single box, at the pooled best tau; ``top1_loc`` is None
            unless every frame came with ``pred_labels``), ``per_class``
            {label: CorLoc}, ``best_thresholds`` {"corloc_per_class": {label:
            tau}, "pooled": tau, "v2": {delta: tau}}, ``num_frames``,
            ``num_frames_without_boxes``. Scores are None when no frame was scored.
        """
        n = self.num_frames
        out: dict[str, Any] = {
            "corloc": None,
            "corloc_pooled": None,
            "maxboxacc": None,
            "maxboxacc_v2": None,
            "top1_loc": None,
            "gt_known_loc": None,
            "per_class": {},
            "best_thresholds": {"corloc_per_class": {}, "pooled": None, "v2": {}},
            "num_frames": n,
            "num_frames_without_boxes": self.num_frames_without_boxes,
        }
        if n == 0:
            return out
        d50 = self._all_deltas.index(50)
        thr = self.thresholds
        per_class, tau_class = {}, {}
        for c in sorted(self._frames):
            acc = self._correct[c][0, d50] * 100.0 / self._frames[c]
            k = int(np.argmax(acc))
            per_class[c], tau_class[c] = float(acc[k]), float(thr[k])
        total = np.sum(list(self._correct.values()), axis=0)
        acc50 = total[0, d50] * 100.0 / n
        best = int(np.argmax(acc50))
        v2, tau_v2 = [], {}
        for d in self.deltas:
            acc = total[1, self._all_deltas.index(d)] * 100.0 / n
            k = int(np.argmax(acc))
            v2.append(float(acc[k]))
            tau_v2[d] = float(thr[k])
        out.update(
            corloc=float(np.mean(list(per_class.values()))),
            corloc_pooled=float(acc50[best]),
            maxboxacc=float(acc50[best]),
            maxboxacc_v2=float(np.mean(v2)),
            gt_known_loc=float(acc50[best]),
            per_class=per_class,
            best_thresholds={
                "corloc_per_class": tau_class,
                "pooled": float(thr[best]),
                "v2": tau_v2,
            },
        )
        if sum(self._frames_with_pred.values()) == n:
            out["top1_loc"] = float(total[2, d50, best] * 100.0 / n)
        return out
