"""PxAPAccumulator: a hand-computed case, wsolevaluation's formula, merge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colocam_plugin.errors import ShapeError
from colocam_plugin.metrics import PxAPAccumulator, normalize_cams


def test_pxap_hand_computed():
    # scores (already in [0, 1]) and GT: positives 1.0, 0.6, 0.2; negatives 0.0, 0.6
    cams = np.array([[[1.0, 0.6, 0.2], [0.0, 0.6, 0.2]]])
    masks = np.array([[[True, True, True], [False, False, False]]])
    masks[0, 1, 2] = True  # the second 0.2 is positive too: positives 1.0, .6, .2, .2
    acc = PxAPAccumulator(num_bins=10)
    acc.update(cams, masks)
    # going down the thresholds: >=1.0: P 1/1, R 1/4; >=0.6: P 2/3, R 2/4; >=0.2: P 4/5, R 1
    expected = 100 * (1.0 * 0.25 + (2 / 3) * 0.25 + (4 / 5) * 0.5)
    assert acc.compute()["pxap"] == pytest.approx(expected)


def _wsol_pxap(scores, masks, num_bins):
    """wsolevaluation's MaskEvaluator, written out."""
    thr = np.arange(0, 1, 1 / num_bins)
    edges = np.append(thr, [1.0, 2.0, 3.0])
    pos = np.zeros(len(edges) - 1)
    neg = np.zeros(len(edges) - 1)
    for s, m in zip(scores, masks):
        pos += np.histogram(s[m], bins=edges)[0]
        neg += np.histogram(s[~m], bins=edges)[0]
    tp = pos[::-1].cumsum()
    fn = pos.sum() - tp
    fp = neg[::-1].cumsum()
    with np.errstate(invalid="ignore"):
        precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return (precision[1:] * np.diff(recall))[: len(thr) + 1].sum() * 100


def test_pxap_matches_wsolevaluation_and_merges():
    rng = np.random.default_rng(0)
    cams = rng.normal(size=(6, 20, 24)).astype(np.float32)
    cams[2] = np.round(cams[2], 1)  # ties on bin edges
    masks = (cams + rng.normal(size=cams.shape)) > 0.5
    whole = PxAPAccumulator(num_bins=100)
    whole.update(cams, masks)
    expected = _wsol_pxap(normalize_cams(cams), masks, 100)
    assert whole.compute()["pxap"] == pytest.approx(expected, rel=1e-12)
    a, b = PxAPAccumulator(num_bins=100), PxAPAccumulator(num_bins=100)
    a.update(cams[:2], masks[:2])
    b.update(torch.from_numpy(cams[2:]), torch.from_numpy(masks[2:]))
    assert a.merge(b).compute() == whole.compute()
    np.testing.assert_array_equal(a.positive, whole.positive)


def test_histogram_equals_numpy_histogram():
    acc = PxAPAccumulator(num_bins=1000)
    scores = np.r_[np.random.default_rng(1).random(5000), acc.edges[:1001], 1.0, 0.0]
    np.testing.assert_array_equal(acc._hist(scores), np.histogram(scores, bins=acc.edges)[0])


def test_pxap_edge_cases_and_checks():
    acc = PxAPAccumulator(num_bins=10)
    assert acc.compute() == {"pxap": None}
    acc.update(np.zeros((1, 2, 2)), np.zeros((1, 2, 2), dtype=bool))
    assert acc.compute() == {"pxap": None}  # no positive pixel
    acc.update(np.zeros((1, 2, 2)), np.ones((1, 2, 2), dtype=bool))  # constant map
    # every pixel scores 0: one PR point (P = 4/8, R = 1); wsolevaluation gives NaN
    assert acc.compute()["pxap"] == 50.0
    with pytest.raises(ShapeError, match="masks"):
        acc.update(np.zeros((1, 2, 2)), np.zeros((1, 2, 3), dtype=bool))
    with pytest.raises(ShapeError, match="masks"):
        acc.update(np.zeros((1, 2, 2)), np.full((1, 2, 2), 2))
    with pytest.raises(ValueError, match="num_bins"):
        PxAPAccumulator(num_bins=0)
