"""Pixel pseudo-labels sampled from a classifier's CAM (CoLo-CAM's L_PL targets).

Per frame, at the network input size (METHOD.md, "Stage-2 loss" a):

1. the CAM ``C`` is resized bilinearly to (H, W);
2. ROI: Otsu threshold of ``C`` (``C > t``, scikit-image's 256-bin rule),
   largest 8-connected component, ROI = that component's filled bounding box;
3. foreground seeds: among ROI pixels the top ``fg_ratio`` (70%) by ``C``;
   ``n_fg`` drawn without replacement with probability proportional to ``C``;
4. background seeds: the ``bg_ratio`` (10%) lowest-``C`` pixels of the frame;
   ``n_bg`` drawn uniformly without replacement;
5. both seed masks dilated 3x3 (``kornia.morphology.dilation``); pixels in
   both are ignored.

Components are labelled with ``scipy.ndimage.label`` on CPU, not Kornia's
``connected_components``: the latter propagates labels by repeated pooling,
about 700x slower on a CPU batch (``benchmarks/bench_kornia_ops.py``).

Counts are given for 224x224 and scaled with the pixel count. Everything is
torch (no numpy), re-sampled on every call from ``generator``.
"""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F

from colocam_plugin.losses._checks import check_float, check_ndim

__all__ = [
    "IGNORE_INDEX",
    "largest_component",
    "otsu_threshold",
    "roi_boxes",
    "sample_pseudo_labels",
]

#: label of unlabeled pixels (pass it to ``F.cross_entropy(ignore_index=...)``)
IGNORE_INDEX = 255

_REF_PIXELS = 224 * 224


def otsu_threshold(values: torch.Tensor, nbins: int = 256) -> torch.Tensor:
    """Otsu threshold of every row, as ``skimage.filters.threshold_otsu(row, nbins)``.

    The histogram spans each row's [min, max]; the threshold is a bin centre and
    the foreground is ``values > threshold``. A constant row returns its value.

    Args:
        values: (B, N) floating point.
        nbins: number of histogram bins.

    Returns:
        (B,) thresholds.

    Examples:
        >>> otsu_threshold(torch.tensor([[0.0, 0.1, 0.2, 0.8, 0.9, 1.0]]))
        tensor([0.2012])
    """
    check_ndim(values, "values", "B, N")
    check_float(values, "values")
    low = values.amin(dim=1, keepdim=True)
    high = values.amax(dim=1, keepdim=True)
    width = (high - low).clamp_min(torch.finfo(values.dtype).tiny)
    bins = ((values - low) / width * nbins).long().clamp_(0, nbins - 1)
    hist = torch.zeros(values.shape[0], nbins, dtype=values.dtype, device=values.device)
    hist.scatter_add_(1, bins, torch.ones_like(values))
    centres = low + (torch.arange(nbins, device=values.device, dtype=values.dtype) + 0.5) * (
        width / nbins
    )
    weight1 = hist.cumsum(1)
    weight2 = hist.flip(1).cumsum(1).flip(1)
    mass = hist * centres
    mean1 = mass.cumsum(1) / weight1.clamp_min(1)
    mean2 = mass.flip(1).cumsum(1).flip(1) / weight2.clamp_min(1)
    between = weight1[:, :-1] * weight2[:, 1:] * (mean1[:, :-1] - mean2[:, 1:]) ** 2
    best = between.argmax(dim=1, keepdim=True)
    threshold = centres.gather(1, best).squeeze(1)
    return torch.where((high == low).squeeze(1), low.squeeze(1), threshold)


def largest_component(mask: torch.Tensor) -> torch.Tensor:
    """Keep, per image, the largest 8-connected component of a boolean mask.

    Components are labelled by scipy's ``ndimage.label`` on CPU (one call for
    the batch; iterative label propagation took 0.3-5 s per 32 frames at
    128x128) and by max-pool label propagation with pointer jumping on other
    devices. Ties keep the component holding the lowest maximal pixel index.

    Args:
        mask: (B, H, W) bool.

    Returns:
        (B, H, W) bool; all False where ``mask`` is empty.

    Examples:
        >>> m = torch.zeros(1, 5, 5, dtype=torch.bool)
        >>> m[0, 0, 0] = True; m[0, 2:5, 2:5] = True
        >>> largest_component(m)[0].sum().item()
        9
    """
    check_ndim(mask, "mask", "B, H, W")
    b, h, w = mask.shape
    if mask.device.type == "cpu":
        labels = _label_cpu(mask)
    else:
        labels = _label_propagation(mask)
    flat = labels.view(b, h * w)
    pixel = torch.arange(1, h * w + 1, device=mask.device).repeat(b)
    frame = torch.arange(b, device=mask.device).repeat_interleave(h * w)
    top = int(flat.max()) if flat.numel() else 0
    counts = torch.bincount(flat.reshape(-1), minlength=top + 1)
    ids = flat.reshape(-1)
    last = torch.zeros(top + 1, dtype=torch.int64, device=mask.device)
    last = last.scatter_reduce(0, ids, pixel, "amax")  # a component's maximal pixel index
    owner = torch.zeros(top + 1, dtype=torch.int64, device=mask.device)
    owner = owner.scatter_reduce(0, ids, frame, "amax")
    # largest first; among equals, the lowest maximal pixel index
    key = counts * (h * w + 2) + (h * w + 1 - last)
    key[0] = -1
    best = torch.full((b,), -1, dtype=torch.int64, device=mask.device)
    best = best.scatter_reduce(0, owner[1:], key[1:], "amax")
    return ((key[flat] == best.view(b, 1)) & (flat > 0)).view(b, h, w)


def _label_cpu(mask: torch.Tensor) -> torch.Tensor:
    """8-connected labels of every frame in one C call (scipy), 0 = outside."""
    from scipy import ndimage

    structure = torch.zeros(3, 3, 3, dtype=torch.bool)
    structure[1] = True  # 8-connected in-frame, never across frames
    labels, _ = ndimage.label(mask.numpy(), structure=structure.numpy())
    return torch.from_numpy(labels.astype("int64"))


def _label_propagation(mask: torch.Tensor) -> torch.Tensor:
    """8-connected labels on any device: max-pool label propagation, pointer jumping."""
    b, h, w = mask.shape
    inside = mask.reshape(b, 1, h, w).to(torch.float32)
    index = torch.arange(1, h * w + 1, device=mask.device, dtype=torch.float32)
    labels = index.view(1, 1, h, w) * inside
    while True:
        grown = F.max_pool2d(labels, 3, stride=1, padding=1) * inside
        # pointer jumping: adopt the label held by the pixel my label names
        flat = grown.view(b, h * w)
        jumped = flat.gather(1, (flat.long() - 1).clamp_(min=0)) * (flat > 0)
        grown = torch.maximum(flat, jumped).view(b, 1, h, w)
        if torch.equal(grown, labels):
            break
        labels = grown
    offsets = torch.arange(b, device=mask.device).view(b, 1, 1) * (h * w + 1)
    return (labels.view(b, h, w).long() + offsets) * mask


def roi_boxes(cams: torch.Tensor) -> torch.Tensor:
    """CoLo-CAM's ROI: filled bounding box of the largest Otsu component.

    Args:
        cams: (B, H, W) CAMs in [0, 1] at the target size.

    Returns:
        (B, H, W) bool ROI masks (empty where ``C > otsu`` is empty).

    Examples:
        >>> cam = torch.zeros(1, 8, 8); cam[0, 2, 2:6] = 1.0; cam[0, 5, 3] = 1.0
        >>> roi_boxes(cam)[0].sum().item()   # box rows 2..2, cols 2..5
        4
    """
    check_ndim(cams, "cams", "B, H, W")
    b, h, w = cams.shape
    threshold = otsu_threshold(cams.reshape(b, h * w))
    component = largest_component(cams > threshold.view(b, 1, 1))
    rows, cols = component.any(dim=2), component.any(dim=1)  # (B, H), (B, W)
    ys = torch.arange(h, device=cams.device)
    xs = torch.arange(w, device=cams.device)
    big = max(h, w) + 1
    y0 = torch.where(rows, ys, big).amin(1).view(b, 1, 1)
    y1 = torch.where(rows, ys, -1).amax(1).view(b, 1, 1)
    x0 = torch.where(cols, xs, big).amin(1).view(b, 1, 1)
    x1 = torch.where(cols, xs, -1).amax(1).view(b, 1, 1)
    in_rows = (ys.view(1, h, 1) >= y0) & (ys.view(1, h, 1) <= y1)
    in_cols = (xs.view(1, 1, w) >= x0) & (xs.view(1, 1, w) <= x1)
    return in_rows & in_cols


def _scaled(count: int, pixels: int) -> int:
    return max(1, round(count * pixels / _REF_PIXELS))


def sample_pseudo_labels(
    cams: torch.Tensor,
    size: tuple[int, int],
    *,
    fg_ratio: float = 0.7,
    n_fg: int = 1000,
    bg_ratio: float = 0.1,
    n_bg: int = 1000,
    dilate: int = 3,
    generator: torch.Generator | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Sample CoLo-CAM pixel pseudo-labels (1 = foreground, 0 = background).

    Args:
        cams: (B, h, w) CAMs min-max normalised to [0, 1], any resolution.
        size: (H, W) output size (the network input size).
        fg_ratio: share of ROI pixels, highest ``C`` first, eligible as foreground.
        n_fg: foreground seeds at 224x224 (scaled by ``H*W / 224^2``, at least 1).
        bg_ratio: share of the frame's pixels, lowest ``C`` first, eligible as
            background.
        n_bg: background seeds at 224x224 (scaled likewise).
        dilate: odd side of the square dilation applied to both seed masks.
        generator: random generator on ``cams``' device (seeded: reproducible).
        ignore_index: label of unlabeled and conflicting pixels (default 255).

    Returns:
        (B, H, W) int64 labels in {0, 1, ignore_index}, on ``cams``' device.

    Raises:
        ShapeError: if ``cams`` is not a float (B, h, w) tensor.
        ValueError: on a bad size, ratio, count or dilation.

    Examples:
        >>> cam = torch.zeros(1, 28, 28); cam[0, 8:20, 8:20] = 1.0
        >>> g = torch.Generator().manual_seed(0)
        >>> y = sample_pseudo_labels(cam, (224, 224), generator=g)
        >>> y.shape, sorted(y.unique().tolist())
        (torch.Size([1, 224, 224]), [0, 1, 255])
    """
    check_ndim(cams, "cams", "B, h, w")
    check_float(cams, "cams")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size: expected (H, W) with positive sides, got {size}")
    if not (0 < fg_ratio <= 1 and 0 < bg_ratio <= 1):
        raise ValueError(
            f"fg_ratio, bg_ratio: expected values in (0, 1], got {fg_ratio}, {bg_ratio}"
        )
    if n_fg < 0 or n_bg < 0:
        raise ValueError(f"n_fg, n_bg: expected non-negative counts, got {n_fg}, {n_bg}")
    if dilate < 1 or dilate % 2 == 0:
        raise ValueError(f"dilate: expected an odd positive size, got {dilate}")
    h, w = int(size[0]), int(size[1])
    b = cams.shape[0]
    if b == 0:
        return torch.empty(0, h, w, dtype=torch.int64, device=cams.device)
    cam = F.interpolate(cams.unsqueeze(1), size=(h, w), mode="bilinear", align_corners=False)
    cam = cam.squeeze(1)
    roi = roi_boxes(cam).view(b, h * w)
    flat = cam.reshape(b, h * w)
    n_fg_px, n_bg_px = _scaled(n_fg, h * w), _scaled(n_bg, h * w)
    n_low = max(1, math.ceil(bg_ratio * h * w))
    rows = torch.arange(b, device=cams.device).view(b, 1)
    # every frame at once: sampling without replacement is the top-k of
    # random keys (Gumbel-top-k for weights proportional to C; plain uniform
    # keys for the background), the same law as drawing one seed at a time
    fg = torch.zeros(b, h * w, dtype=torch.bool, device=cams.device)
    if n_fg > 0:
        # rank inside the ROI, highest C first (stable: ties keep pixel order)
        order = torch.where(roi, flat, -1.0).argsort(dim=1, descending=True, stable=True)
        eligible = torch.ceil(fg_ratio * roi.sum(1, keepdim=True)).clamp_min(1)
        ranked = torch.arange(h * w, device=cams.device).view(1, -1) < eligible
        ranked &= roi.gather(1, order)
        weights = torch.where(ranked, flat.gather(1, order).clamp_min(0), 0.0)
        uniform = torch.rand(b, h * w, generator=generator, device=cams.device)
        keys = torch.where(
            weights > 0, weights.log() - (-uniform.clamp_min(1e-12).log()).log(), -math.inf
        )
        draw = min(n_fg_px, h * w)
        top_keys, top = keys.topk(draw, dim=1)
        picked = order.gather(1, top)
        fg[rows.expand_as(picked)[top_keys > -math.inf], picked[top_keys > -math.inf]] = True
    bg = torch.zeros_like(fg)
    if n_bg > 0:
        lowest = flat.argsort(dim=1, stable=True)[:, :n_low]
        keys = torch.rand(b, n_low, generator=generator, device=cams.device)
        chosen = lowest.gather(1, keys.topk(min(n_bg_px, n_low), dim=1).indices)
        bg[rows.expand_as(chosen), chosen] = True
    # both seed masks in one Kornia call: as exact as max-pooling, and faster on
    # CPU (benchmarks/results/kornia_ops.md)
    seeds = torch.stack((fg, bg), 1).view(b, 2, h, w).float()
    kernel = torch.ones(dilate, dilate, device=cams.device)
    grown = kornia.morphology.dilation(seeds, kernel) > 0.5
    fg, bg = grown[:, :1], grown[:, 1:]
    labels = torch.full((b, 1, h, w), ignore_index, dtype=torch.int64, device=cams.device)
    labels[bg] = 0
    labels[fg] = 1
    labels[fg & bg] = ignore_index
    return labels.squeeze(1)
