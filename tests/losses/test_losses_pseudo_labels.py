"""Pseudo-label sampling: Otsu, largest component, ROI box, seeds, counts, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.filters import threshold_otsu

from colocam_plugin.errors import ShapeError
from colocam_plugin.losses import (
    IGNORE_INDEX,
    largest_component,
    otsu_threshold,
    roi_boxes,
    sample_pseudo_labels,
)


def two_blob_cam(size: int = 64) -> torch.Tensor:
    """(1, size, size): a big blob (rows 10..29, cols 8..27) and a small one."""
    cam = torch.zeros(1, size, size)
    cam[0, 10:30, 8:28] = 0.9
    cam[0, 15:25, 12:22] = 1.0  # peak inside the big blob
    cam[0, 45:52, 45:52] = 0.95
    cam[0, 12:16, 30:34] = 0.0  # keep the blobs apart
    return cam


def test_otsu_matches_skimage() -> None:
    rng = np.random.default_rng(0)
    rows = rng.random((4, 500)) ** 2
    expected = [threshold_otsu(r) for r in rows]
    torch.testing.assert_close(
        otsu_threshold(torch.from_numpy(rows)), torch.tensor(expected, dtype=torch.float64)
    )


def test_otsu_constant_row_returns_value() -> None:
    assert otsu_threshold(torch.full((1, 10), 0.3)).item() == pytest.approx(0.3)


def test_largest_component_8_connected_snake() -> None:
    mask = torch.zeros(1, 9, 9, dtype=torch.bool)
    mask[0, 0, :] = True  # a snake 9 + 8 + 9 long, diagonal steps included
    mask[0, 1:9, 8] = True
    mask[0, 8, 0:8] = True
    mask[0, 4, 4] = True  # isolated pixel
    mask[0, 2:4, 2] = True  # small bar
    out = largest_component(mask)
    assert out.sum().item() == 9 + 8 + 8
    assert not out[0, 4, 4] and not out[0, 2, 2]
    diag = torch.zeros(1, 4, 4, dtype=torch.bool)
    diag[0, [0, 1, 2, 3], [0, 1, 2, 3]] = True
    assert largest_component(diag).sum().item() == 4  # diagonal neighbours connect


def test_roi_is_filled_box_of_largest_blob() -> None:
    roi = roi_boxes(two_blob_cam())[0]
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[10:30, 8:28] = True
    assert torch.equal(roi, expected)


def test_seeds_respect_roi_background_and_counts() -> None:
    cam = two_blob_cam(224)
    g = torch.Generator().manual_seed(0)
    labels = sample_pseudo_labels(cam, (224, 224), generator=g, dilate=1)
    fg, bg = labels[0] == 1, labels[0] == 0
    roi = roi_boxes(cam)[0]
    assert fg.sum().item() <= 1000 and bg.sum().item() == 1000
    assert fg.sum().item() > 0 and not (fg & ~roi).any()
    flat = cam[0].flatten()
    low_cut = flat.sort().values[int(0.1 * flat.numel())]
    assert (cam[0][bg] <= low_cut).all()
    # top 70% of the ROI by C: the 0.9-ring and the 1.0 peak (ROI 400 px: 280 eligible)
    assert (cam[0][fg] >= 0.9).all()


def test_counts_scale_with_pixels_and_ignore_overlap() -> None:
    cam = torch.rand(2, 7, 7)
    g = torch.Generator().manual_seed(1)
    labels = sample_pseudo_labels(
        cam, (112, 112), generator=g, dilate=1, fg_ratio=1.0, bg_ratio=1.0
    )
    # 1000 * 112^2 / 224^2 = 250 seeds each, drawn before the overlap is ignored
    for i in range(2):
        n_fg, n_bg = (labels[i] == 1).sum().item(), (labels[i] == 0).sum().item()
        n_ign = (labels[i] == IGNORE_INDEX).sum().item()
        assert n_fg <= 250 and n_bg <= 250 and n_ign >= 112 * 112 - 500
    labels = sample_pseudo_labels(
        cam, (112, 112), generator=g, dilate=3, fg_ratio=1.0, bg_ratio=1.0
    )
    assert (labels == IGNORE_INDEX).any() and set(labels.unique().tolist()) <= {0, 1, IGNORE_INDEX}


def test_dilation_marks_neighbours_and_conflicts_are_ignored() -> None:
    cam = torch.zeros(1, 5, 5)
    cam[0, 2, 2] = 1.0
    labels = sample_pseudo_labels(
        cam, (5, 5), n_fg=1, n_bg=10**6, bg_ratio=1.0, generator=torch.Generator().manual_seed(0)
    )
    # n_bg scales to 498 > 25: bg covers the frame; the fg seed (centre) dilates to the 3x3
    # block, which is then in both masks and ignored
    assert (labels[0, 1:4, 1:4] == IGNORE_INDEX).all()
    assert (labels[0][[0, 4], :] == 0).all()


def test_deterministic_with_seeded_generator_and_resampled_otherwise() -> None:
    cam = two_blob_cam(224)
    a = sample_pseudo_labels(cam, (224, 224), generator=torch.Generator().manual_seed(3))
    b = sample_pseudo_labels(cam, (224, 224), generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    c1 = sample_pseudo_labels(cam, (224, 224), generator=g)
    c2 = sample_pseudo_labels(cam, (224, 224), generator=g)
    assert torch.equal(a, b) and torch.equal(a, c1) and not torch.equal(c1, c2)


def test_output_contract_and_resize() -> None:
    labels = sample_pseudo_labels(
        torch.rand(3, 28, 28), (56, 40), generator=torch.Generator().manual_seed(0)
    )
    assert labels.shape == (3, 56, 40) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) <= {0, 1, IGNORE_INDEX}


def test_constant_cam_has_no_foreground() -> None:
    labels = sample_pseudo_labels(torch.zeros(1, 8, 8), (16, 16))
    assert not (labels == 1).any() and (labels == 0).any()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"cams": torch.rand(2, 3, 4, 4)},
            ShapeError,
            "cams: expected (B, h, w), got (2, 3, 4, 4)",
        ),
        ({"size": (0, 4)}, ValueError, "size: expected (H, W) with positive sides"),
        ({"fg_ratio": 1.5}, ValueError, "fg_ratio, bg_ratio: expected values in (0, 1]"),
        ({"dilate": 2}, ValueError, "dilate: expected an odd positive size, got 2"),
        ({"n_bg": -1}, ValueError, "n_fg, n_bg: expected non-negative counts"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    args = {"cams": torch.rand(1, 4, 4), "size": (8, 8)} | kwargs
    with pytest.raises(error) as info:
        sample_pseudo_labels(args.pop("cams"), args.pop("size"), **args)
    assert message in str(info.value)


def test_cpu_labelling_matches_label_propagation(monkeypatch: pytest.MonkeyPatch) -> None:
    # scipy's one-call labelling (CPU) and the device-agnostic propagation
    # must keep the same component, ties included
    from colocam_plugin.losses import pseudo_labels

    g = torch.Generator().manual_seed(0)
    blobs = F.interpolate(torch.rand(24, 1, 6, 6, generator=g), size=(40, 40), mode="bilinear")
    masks = torch.cat([blobs[:, 0] > 0.55, torch.rand(8, 40, 40, generator=g) > 0.6])
    masks[0] = False  # an empty frame
    masks[1] = False
    masks[1, 2:5, 2:5] = masks[1, 30:33, 30:33] = True  # a tie: the first blob wins
    fast = largest_component(masks)
    monkeypatch.setattr(pseudo_labels, "_label_cpu", pseudo_labels._label_propagation)
    torch.testing.assert_close(largest_component(masks), fast)
    assert not fast[0].any() and fast[1, 2:5, 2:5].all() and not fast[1, 30:33, 30:33].any()


@pytest.mark.parametrize("side", [1, 3, 5])
def test_kornia_dilation_equals_max_pooling_on_masks(side: int) -> None:
    """The seed dilation uses Kornia; on 0/1 masks it must equal a max-pool."""
    import kornia

    g = torch.Generator().manual_seed(side)
    masks = (torch.rand(4, 2, 17, 23, generator=g) > 0.93).float()
    masks[0, 0, 0, 0] = masks[1, 1, -1, -1] = 1.0  # corners: the border rule matters
    ours = kornia.morphology.dilation(masks, torch.ones(side, side)) > 0.5
    ref = F.max_pool2d(masks, side, stride=1, padding=side // 2) > 0
    assert torch.equal(ours, ref)
