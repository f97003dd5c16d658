"""What CoLo-CAM's colour term can reach on a SynthYTO tree.

The colour term couples every two pixels ``i, j`` of a sequence of ``n``
frames with ``W_ij = exp(-|I_i - I_j|^2 / (2 sigma^2))`` (``I`` in 0..255 RGB,
paper sigma 15): pixel ``i`` is pulled towards the class its same-coloured
pixels hold. Two shares say whether a dataset lets it grow a CAM from the
class part over the whole object and no further:

- :func:`colour_kernel_mass_in_box`: of the kernel mass the object's pixels
  receive from all pixels of the sequence, the share sent by pixels inside
  the objects' boxes (1: the term cannot leak the object into the background);
- the part-to-body share: of the kernel mass the body's pixels receive from
  all pixels of their frame, the share sent by the part's pixels (near 0: the
  term cannot spread from the part, where a CAM starts, to the body).

:func:`synthyto_colour_stats` measures both on every annotated frame of a tree,
with the box area share. Sums run over random subsets of pixels (fixed seed):
exact dense sums on the subsets, unbiased for the shares' numerator and
denominator alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from colocam_plugin.data.synthyto import read_frame_table

__all__ = ["colour_kernel_mass_in_box", "colour_kernel_share", "synthyto_colour_stats"]


def colour_kernel_share(
    images: np.ndarray,
    receivers: np.ndarray,
    senders: np.ndarray,
    *,
    sigma: float = 15.0,
    max_receivers: int = 1024,
    max_pixels: int = 4096,
    seed: int = 0,
) -> float:
    """Share of the colour-kernel mass that ``receivers`` get from ``senders``.

    ``sum_{i in R, j in S} W_ij / sum_{i in R, j} W_ij``, ``j`` over every pixel
    of ``images``. At most ``max_receivers`` receivers and ``max_pixels`` pixels
    ``j`` are drawn uniformly (without replacement, ``seed``); the sums over the
    draws are exact.

    Args:
        images: ``(n, H, W, 3)`` RGB in 0..255 (any real dtype).
        receivers: ``(n, H, W)`` bool, the pixels ``i``; at least one.
        senders: ``(n, H, W)`` bool, the pixels ``j`` counted in the numerator.
        sigma: kernel width on 0..255 RGB (the paper's 15).
        max_receivers: receivers drawn (>= 1).
        max_pixels: pixels ``j`` drawn (>= 1).
        seed: seed of the draws.

    Returns:
        The share in [0, 1].

    Raises:
        ValueError: shapes disagree, no receiver, or a bad count or sigma.

    Examples:
        >>> img = np.zeros((1, 2, 2, 3)); img[0, 0] = 200.0  # top row red-ish
        >>> rows = np.zeros((1, 2, 2), bool); rows[0, 0] = True
        >>> round(colour_kernel_share(img, rows, rows), 3)  # same colour only in its row
        1.0
        >>> round(colour_kernel_share(img, rows, ~rows), 3)
        0.0
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images: expected (n, H, W, 3), got {images.shape}")
    for name, m in (("receivers", receivers), ("senders", senders)):
        if np.shape(m) != images.shape[:3]:
            raise ValueError(f"{name}: expected {images.shape[:3]}, got {np.shape(m)}")
    if sigma <= 0 or max_receivers < 1 or max_pixels < 1:
        raise ValueError(
            f"sigma, max_receivers, max_pixels must be > 0, got {sigma, max_receivers, max_pixels}"
        )
    colours = images.reshape(-1, 3)
    recv = np.flatnonzero(np.asarray(receivers).reshape(-1))
    if recv.size == 0:
        raise ValueError("receivers: no pixel selected")
    rng = np.random.default_rng(seed)
    if recv.size > max_receivers:
        recv = rng.choice(recv, max_receivers, replace=False)
    pix = np.arange(colours.shape[0])
    if pix.size > max_pixels:
        pix = rng.choice(pix, max_pixels, replace=False)
    a, b = colours[recv], colours[pix]
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    np.maximum(d2, 0.0, out=d2)
    d2 *= -1.0 / (2.0 * sigma * sigma)
    w = np.exp(d2, out=d2).sum(0, dtype=np.float64)  # kernel mass each drawn j sends
    total = float(w.sum())
    sent = float(w[np.asarray(senders).reshape(-1)[pix]].sum())
    return sent / total if total > 0 else 0.0


def colour_kernel_mass_in_box(
    images: np.ndarray,
    object_mask: np.ndarray,
    box_mask: np.ndarray,
    **kwargs: Any,
) -> float:
    """Share of the kernel mass the object's pixels get from inside the boxes.

    :func:`colour_kernel_share` with ``receivers = object_mask`` and
    ``senders = box_mask``: 1 when nothing outside the boxes shares the
    object's colours.

    Args:
        images: ``(n, H, W, 3)`` RGB in 0..255, the frames of one sequence.
        object_mask: ``(n, H, W)`` bool, the object pixels (e.g. only in the
            annotated frame).
        box_mask: ``(n, H, W)`` bool, the pixels inside the objects' boxes of
            every frame.
        **kwargs: ``sigma``, ``max_receivers``, ``max_pixels``, ``seed``.

    Examples:
        >>> img = np.zeros((2, 4, 4, 3)); img[:, :2, :2] = 120.0
        >>> obj = np.zeros((2, 4, 4), bool); obj[0, :2, :2] = True
        >>> box = np.zeros((2, 4, 4), bool); box[:, :2, :2] = True
        >>> colour_kernel_mass_in_box(img, obj, box)
        1.0
    """
    return colour_kernel_share(images, object_mask, box_mask, **kwargs)


def _boxes_mask(objects: Sequence[dict[str, Any]], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for obj in objects:
        if obj["box"] is not None:
            x0, y0, x1, y1 = obj["box"]
            mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def synthyto_colour_stats(
    root: str | Path,
    *,
    n_frames: int = 4,
    sigma: float = 15.0,
    max_receivers: int = 1024,
    max_pixels: int = 4096,
    seed: int = 0,
) -> dict[str, Any]:
    """Colour-kernel shares and box sizes over every annotated frame of a tree.

    Per annotated frame ``t`` (val and test): the sequence is ``n_frames``
    consecutive frames of its shot ending at ``t`` (the reference sampler's
    adjacent style), moved forward when ``t`` is too close to the shot's start.

    - ``kernel_mass_in_box``: receivers the object pixels of frame ``t``
      (``_mask.png``), senders the pixels inside the boxes of each frame of
      the sequence (``synthyto_frames.jsonl``), over all pixels of the sequence.
    - ``part_to_body``: receivers the body pixels of frame ``t`` (mask minus
      ``_part.png``), senders its part pixels, over all pixels of frame ``t``.
      ``part_area_share`` (part pixels over object pixels) is about what it
      would be if part and body had one colour and nothing else shared it.
    - ``box_area_share``: each box's area over the frame's.

    Args:
        root: a SynthYTO tree written with masks (``write_masks``).
        n_frames: frames per sequence (the paper's n = 4).
        sigma, max_receivers, max_pixels: see :func:`colour_kernel_share`.
        seed: seed of the pixel draws (frame ``k`` uses ``seed + k``).

    Returns:
        ``{"frames": annotated frames measured, "kernel_mass_in_box",
        "part_to_body", "part_area_share", "box_area_share": {"mean",
        "median"}, "n_frames", "sigma"}``.

    Raises:
        DataError: the tree has no frame table.
        FileNotFoundError: an annotated frame has no ``_mask.png`` or ``_part.png``.
    """
    root = Path(root)
    table = read_frame_table(root)
    shots: dict[str, list[dict[str, Any]]] = {}
    for rec in table:
        shots.setdefault(rec["shot"], []).append(rec)
    cache: dict[str, np.ndarray] = {}

    def load(rec: dict[str, Any]) -> np.ndarray:
        if rec["path"] not in cache:
            if len(cache) > 64:  # frames of a few shots at a time
                cache.clear()
            cache[rec["path"]] = np.asarray(Image.open(root / rec["path"]).convert("RGB"))
        return cache[rec["path"]]

    in_box, part_body, part_share, areas = [], [], [], []
    for k, rec in enumerate(r for r in table if r["annotated"]):
        shot = sorted(shots[rec["shot"]], key=lambda r: r["frame"])
        start = max(0, min(rec["frame"] - n_frames + 1, len(shot) - n_frames))
        seq = shot[start : start + n_frames]
        images = np.stack([load(r) for r in seq])
        shape = images.shape[1:3]
        t = [r["frame"] for r in seq].index(rec["frame"])
        frame_path = root / rec["path"]
        mask = np.asarray(Image.open(f"{frame_path}_mask.png")) > 127
        part = np.asarray(Image.open(f"{frame_path}_part.png")) > 127
        receivers = np.zeros(images.shape[:3], bool)
        receivers[t] = mask
        boxes = np.stack([_boxes_mask(r["objects"], shape) for r in seq])
        kw: dict[str, Any] = dict(sigma=sigma, max_receivers=max_receivers)
        kw |= dict(max_pixels=max_pixels, seed=seed + k)
        in_box.append(colour_kernel_mass_in_box(images, receivers, boxes, **kw))
        body = mask & ~part
        if body.any() and part.any():
            part_body.append(colour_kernel_share(images[t : t + 1], body[None], part[None], **kw))
            part_share.append(float(part.sum() / (mask | part).sum()))
        for obj in rec["objects"]:
            if obj["box"] is not None:
                x0, y0, x1, y1 = obj["box"]
                areas.append((x1 - x0 + 1) * (y1 - y0 + 1) / (shape[0] * shape[1]))

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {"mean": float("nan"), "median": float("nan")}
        return {"mean": float(np.mean(values)), "median": float(np.median(values))}

    return {
        "frames": len(in_box),
        "kernel_mass_in_box": summary(in_box),
        "part_to_body": summary(part_body),
        "part_area_share": summary(part_share),
        "box_area_share": summary(areas),
        "n_frames": n_frames,
        "sigma": sigma,
    }
