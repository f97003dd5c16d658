"""PxAP: pixel average precision over CAM thresholds (wsolevaluation's MaskEvaluator).

CAMs are min-max normalised (as floats, no uint8 step); each pixel's score
falls in one of the bins ``[0, 1/n), [1/n, 2/n), ..., [1 - 1/n, 1), [1, 2),
[2, 3]`` (edges ``np.arange(0, 1, 1/n)`` then 1, 2, 3). Histograms of the
scores of GT-positive and GT-negative pixels are summed over the dataset
(so shards merge by adding them); then, from the highest bin down, TP and FP
are cumulative sums and

    PxAP = 100 * sum_i P_i * (R_i - R_{i-1})

over all but the top (empty) bin, exactly as wsolevaluation computes it.
One deviation: where no pixel scores that high, precision is 0/0;
wsolevaluation's sum then turns NaN, here such a bin counts 0 (its recall
step is 0 anyway), which only matters when every CAM is constant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from colocam_plugin.errors import ShapeError
from colocam_plugin.metrics.cam_boxes import normalize_cams

__all__ = ["PxAPAccumulator"]


class PxAPAccumulator:
    """Mergeable score histograms for PxAP.

    Args:
        num_bins: CAM thresholds ``np.arange(0, 1, 1 / num_bins)`` (1000 as in
            wsolevaluation's test protocol).

    Examples:
        >>> cams = np.array([[[0.0, 0.5], [1.0, 0.2]]])
        >>> masks = np.array([[[False, True], [True, False]]])
        >>> acc = PxAPAccumulator(num_bins=10)
        >>> acc.update(cams, masks)
        >>> acc.compute()
        {'pxap': 100.0}
    """

    def __init__(self, *, num_bins: int = 1000) -> None:
        if int(num_bins) != num_bins or num_bins < 1:
            raise ValueError(f"num_bins: expected an integer >= 1, got {num_bins}")
        self.num_bins = int(num_bins)
        self.edges = np.append(np.arange(0, 1, 1 / self.num_bins), [1.0, 2.0, 3.0])
        self.positive = np.zeros(len(self.edges) - 1, dtype=np.int64)
        self.negative = np.zeros(len(self.edges) - 1, dtype=np.int64)

    def _hist(self, scores: np.ndarray) -> np.ndarray:
        # == np.histogram(scores, bins=self.edges)[0] for scores in [0, 1], without sorting
        idx = np.searchsorted(self.edges, scores, side="right") - 1
        return np.bincount(idx, minlength=len(self.positive))

    def update(self, cams: Any, masks: Any) -> None:
        """Add frames.

        Args:
            cams: (N, H, W) numpy or torch, any range (normalised here).
            masks: (N, H, W) bool (or 0/1) GT foreground masks.
        """
        scores = normalize_cams(cams)
        m = masks.detach().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks)
        if m.shape != scores.shape:
            raise ShapeError(f"masks: expected {scores.shape} like cams, got {m.shape}")
        if m.dtype != bool:
            if m.dtype.kind not in "iuf" or not np.isin(m, (0, 1)).all():
                raise ShapeError(f"masks: expected bool or 0/1 values, got dtype {m.dtype}")
            m = m.astype(bool)
        self.positive += self._hist(scores[m])
        self.negative += self._hist(scores[~m])

    def merge(self, other: PxAPAccumulator) -> PxAPAccumulator:
        """Add ``other``'s histograms to this accumulator (in place) and return it."""
        if not isinstance(other, PxAPAccumulator) or other.num_bins != self.num_bins:
            raise ValueError("merge: expected a PxAPAccumulator with the same num_bins")
        self.positive += other.positive
        self.negative += other.negative
        return self

    def dense_counts(self) -> np.ndarray:
        """Both histograms in one flat int64 vector, for an all-reduce.

        The layout depends only on ``num_bins``, so the SUM of the shards'
        vectors, given to :meth:`load_dense_counts`, is the merged accumulator
        (as :class:`~colocam_plugin.metrics.BoxAccumulator`'s counts protocol).
        """
        return np.concatenate([self.positive, self.negative])

    def load_dense_counts(self, counts: Any) -> None:
        """Replace both histograms by a :meth:`dense_counts` vector (e.g. a sum)."""
        arr = np.asarray(counts, dtype=np.int64).ravel()
        if arr.shape != (2 * len(self.positive),):
            raise ShapeError(
                f"counts: expected {2 * len(self.positive)} dense counts for this "
                f"accumulator, got {arr.shape}"
            )
        half = len(arr) // 2
        self.positive = arr[:half].copy()
        self.negative = arr[half:].copy()

    def compute(self) -> dict[str, float | None]:
        """``{"pxap": PxAP in percent}``; None when no GT-positive pixel was seen."""
        num_pos = self.positive.sum()
        if num_pos == 0:
            return {"pxap": None}
        tp = self.positive[::-1].cumsum()
        fp = self.negative[::-1].cumsum()
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.nan_to_num(tp / (tp + fp), nan=0.0)
        recall = tp / num_pos
        auc = (precision[1:] * np.diff(recall))[: len(self.positive) - 1].sum()
        return {"pxap": float(auc * 100)}
