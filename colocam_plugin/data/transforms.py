"""Clip-consistent geometric transforms: one draw for every frame of a sequence.

Train mode (METHOD.md, stage 1 and 2): resize to ``(resize, resize)``, random
``crop x crop`` window, horizontal flip with probability 0.5. Eval mode:
resize to ``(crop, crop)``, no crop, no flip. The square resize (aspect ratio
not kept) follows wsolevaluation and the paper's "resize to 224x224".

The training loops' loaders only resize (eval mode with ``crop = resize``:
frames and pseudo-label CAMs to ``(resize, resize)``); their random crop and
flip run on the training device, one batched Kornia call per batch with the
same draw distribution (:func:`colocam_plugin.train.augment.crop_flip`).
Train mode is for clips transformed on the CPU with their boxes and masks.

The same parameters move the frames, their boxes, and optional CAMs (bilinear)
and masks (nearest, pixel-centre aligned), whatever their resolution: a map of any ``(h, w)`` is
taken to cover the whole frame. Boxes are ``[x0, y0, x1, y1]`` inclusive pixel
indices; they are mapped through pixel edges (``[x0, x1 + 1)`` is scaled), so
a box that contained a pixel still contains it after resizing, then clipped to
the output; a box wholly outside the crop is dropped.

Frames come in as uint8 ``(H, W, 3)`` numpy arrays and leave as float32
``(n, 3, S, S)`` tensors in ``0..255`` (not normalised: the classifier
normalises, and the CRF/CoLo colour terms want 0..255).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from colocam_plugin.errors import ShapeError

__all__ = ["ClipParams", "ClipSample", "ClipTransform"]

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class ClipParams:
    """The geometric draw shared by a clip.

    Attributes:
        resize: ``(height, width)`` after resizing.
        top: crop's first row in the resized image.
        left: crop's first column in the resized image.
        size: output side ``S`` (crop side, or ``crop`` in eval mode).
        flip: mirror left-right after cropping.
    """

    resize: tuple[int, int]
    top: int
    left: int
    size: int
    flip: bool


@dataclass
class ClipSample:
    """Output of :class:`ClipTransform`.

    Attributes:
        frames: float32 ``(n, 3, S, S)`` in 0..255.
        boxes: per frame a float64 ``(k_i, 4)`` array in the output grid, or None.
        cams: float32 ``(n, S, S)`` (bilinear), or None.
        masks: bool ``(n, S, S)`` (nearest), or None.
        params: the draw, to replay it on anything else.
    """

    frames: torch.Tensor
    boxes: list[np.ndarray] | None
    cams: torch.Tensor | None
    masks: torch.Tensor | None
    params: ClipParams


class ClipTransform:
    """Resize, random crop and flip a whole sequence identically.

    Args:
        resize: train-mode square resize side (ref 256).
        crop: output side ``S`` (ref 224); train crops it from the resized
            image, eval resizes straight to it.
        hflip: allow the random horizontal flip (train mode only).
        train: train (random) or eval (deterministic) mode.

    Examples:
        >>> t = ClipTransform(resize=64, crop=56)
        >>> frames = np.zeros((2, 48, 64, 3), np.uint8)
        >>> out = t(frames, boxes=[np.array([[0, 0, 63, 47.0]])] * 2,
        ...         generator=torch.Generator().manual_seed(0))
        >>> tuple(out.frames.shape), out.boxes[0].shape
        ((2, 3, 56, 56), (1, 4))
        >>> ClipTransform(resize=64, crop=56, train=False)(frames).params.top
        0
    """

    def __init__(self, resize: int = 256, crop: int = 224, hflip: bool = True, train: bool = True):
        if crop < 1 or resize < crop:
            raise ValueError(f"expected 1 <= crop <= resize, got crop={crop}, resize={resize}")
        self.resize = int(resize)
        self.crop = int(crop)
        self.hflip = bool(hflip)
        self.train = bool(train)

    def __repr__(self) -> str:
        return (
            f"ClipTransform(resize={self.resize}, crop={self.crop}, hflip={self.hflip}, "
            f"train={self.train})"
        )

    def sample_params(
        self, generator: torch.Generator | np.random.Generator | None = None
    ) -> ClipParams:
        """Draw the crop offset and flip (no randomness in eval mode).

        Args:
            generator: ``torch.Generator``, ``numpy.random.Generator`` or None
                (torch's global generator).
        """
        if not self.train:
            return ClipParams((self.crop, self.crop), 0, 0, self.crop, False)
        room = self.resize - self.crop + 1
        if isinstance(generator, np.random.Generator):
            top, left = (int(v) for v in generator.integers(0, room, 2))
            flip = bool(generator.random() < 0.5)
        else:
            draw = torch.randint(0, room, (2,), generator=generator)
            top, left = int(draw[0]), int(draw[1])
            flip = bool(torch.rand((), generator=generator) < 0.5)
        return ClipParams((self.resize, self.resize), top, left, self.crop, flip and self.hflip)

    def __call__(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        boxes: Sequence[np.ndarray] | None = None,
        cams: Sequence[ArrayLike] | ArrayLike | None = None,
        masks: Sequence[ArrayLike] | ArrayLike | None = None,
        *,
        generator: torch.Generator | np.random.Generator | None = None,
        params: ClipParams | None = None,
    ) -> ClipSample:
        """Transform a clip.

        Args:
            frames: ``n`` uint8 ``(H, W, 3)`` frames of one size (or an
                ``(n, H, W, 3)`` array).
            boxes: per frame a ``(k_i, 4)`` array of ``[x0, y0, x1, y1]``
                in frame pixels (inclusive), or None.
            cams: per frame a float ``(h, w)`` map (any size, one size for all), or None.
            masks: per frame a ``(h, w)`` binary map, or None.
            generator: randomness of the draw (ignored when ``params`` is given).
            params: replay a previous draw instead of drawing.

        Returns:
            A :class:`ClipSample`.

        Raises:
            ShapeError: frames not uint8 ``(H, W, 3)`` of one size, boxes not
                ``(k, 4)``, maps not 2-D of one size, or counts differ from ``n``.
        """
        video = _stack_frames(frames)
        n, h, w = video.shape[0], video.shape[1], video.shape[2]
        p = params if params is not None else self.sample_params(generator)
        x = torch.from_numpy(video).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=p.resize, mode="bilinear", align_corners=False, antialias=True)
        out_frames = self._crop_flip(x.clamp_(0, 255), p)
        out_boxes = None
        if boxes is not None:
            if len(boxes) != n:
                raise ShapeError(f"boxes: expected {n} arrays (one per frame), got {len(boxes)}")
            out_boxes = [self._boxes(b, i, (w, h), p) for i, b in enumerate(boxes)]
        out_cams = None if cams is None else self._maps(cams, n, "cams", "bilinear", p)
        out_masks = (
            None if masks is None else self._maps(masks, n, "masks", "nearest-exact", p) > 0.5
        )
        return ClipSample(out_frames, out_boxes, out_cams, out_masks, p)

    @staticmethod
    def _crop_flip(x: torch.Tensor, p: ClipParams) -> torch.Tensor:
        x = x[..., p.top : p.top + p.size, p.left : p.left + p.size]
        return x.flip(-1).contiguous() if p.flip else x.contiguous()

    def _maps(
        self, maps: Sequence[ArrayLike] | ArrayLike, n: int, name: str, mode: str, p: ClipParams
    ) -> torch.Tensor:
        items = list(maps)
        if len(items) != n:
            raise ShapeError(f"{name}: expected {n} maps (one per frame), got {len(items)}")
        tensors = [
            torch.as_tensor(np.asarray(m) if not isinstance(m, torch.Tensor) else m) for m in items
        ]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ShapeError(
                f"{name}: expected {n} 2-D maps (h, w) of one size, got shapes {sorted(shapes)}"
            )
        x = torch.stack([t.detach().to("cpu", torch.float32) for t in tensors])[:, None]
        kw = {"align_corners": False} if mode == "bilinear" else {}
        x = F.interpolate(x, size=p.resize, mode=mode, **kw)
        return self._crop_flip(x, p)[:, 0]

    @staticmethod
    def _boxes(box: np.ndarray, i: int, size: tuple[int, int], p: ClipParams) -> np.ndarray:
        b = np.asarray(box, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ShapeError(f"boxes[{i}]: expected (k, 4), got {tuple(b.shape)}")
        w, h = size
        sx, sy = p.resize[1] / w, p.resize[0] / h
        x0 = b[:, 0] * sx - p.left
        x1 = (b[:, 2] + 1) * sx - 1 - p.left
        y0 = b[:, 1] * sy - p.top
        y1 = (b[:, 3] + 1) * sy - 1 - p.top
        last = p.size - 1
        keep = (x1 >= 0) & (y1 >= 0) & (x0 <= last) & (y0 <= last)
        out = np.stack([x0, y0, x1, y1], axis=1)[keep].clip(0, last)
        if p.flip:
            out[:, [0, 2]] = last - out[:, [2, 0]]
        return out


def _stack_frames(frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    items = list(frames)
    if not items:
        raise ShapeError("frames: expected at least one (H, W, 3) uint8 frame, got none")
    for i, f in enumerate(items):
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            got = (tuple(f.shape), str(f.dtype)) if hasattr(f, "shape") else type(f).__name__
            raise ShapeError(f"frames[{i}]: expected uint8 (H, W, 3), got {got}")
    shapes = {f.shape for f in items}
    if len(shapes) != 1:
        raise ShapeError(f"frames: expected one size for the clip, got {sorted(shapes)}")
    return np.ascontiguousarray(np.stack(items))
