"""Colour augmentation on the device, built from Kornia.

Frames arrive from the loaders already resized, cropped and flipped
(:class:`~colocam_plugin.data.transforms.ClipTransform`, float 0..255). The
colour part of the augmentation runs here, on the training device, as one
batched Kornia call:

- stage 1 (:func:`colour_augment`): every frame draws its own brightness,
  contrast, saturation and hue jitter (``kornia.augmentation.ColorJiggle``)
  and is turned grey with probability ``grayscale_p``;
- stage 2 (``same_on_frame=True``): the frames of one sequence share one draw
  (``kornia.augmentation.VideoSequential``), so the colour co-localization
  term still compares the same object colour across the n frames.

The paper's stage 1 uses resize, random crop and flip only. Colour jitter is
our addition (docs/faithfulness.md): where class evidence lies in shape and
texture rather than colour, it keeps the classifier from telling training
instances apart by their colour.

Randomness comes from the ``generator`` the caller passes (one draw of a seed
per call), so a run is reproducible and a resumed run draws the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["ColourJitter", "colour_augment"]


@dataclass(frozen=True)
class ColourJitter:
    """Strengths of the colour jitter (Kornia ``ColorJiggle`` ranges).

    ``brightness``, ``contrast``, ``saturation``: factor drawn in
    ``[1 - s, 1 + s]``; ``hue``: shift drawn in ``[-h, h]`` (0.5 is the whole
    hue circle); ``grayscale_p``: probability of a grey frame (sequence).
    All zero: no augmentation.
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    grayscale_p: float = 0.0

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} jitter must be in [0, 1], got {v}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue jitter must be in [0, 0.5], got {self.hue}")
        if not 0.0 <= self.grayscale_p <= 1.0:
            raise ValueError(f"grayscale_p must be in [0, 1], got {self.grayscale_p}")

    @property
    def active(self) -> bool:
        return any((self.brightness, self.contrast, self.saturation, self.hue, self.grayscale_p))


def _pipeline(jitter: ColourJitter) -> list[Any]:
    import kornia.augmentation as K

    ops: list[Any] = []
    if any((jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)):
        ops.append(
            K.ColorJiggle(
                brightness=jitter.brightness,
                contrast=jitter.contrast,
                saturation=jitter.saturation,
                hue=jitter.hue,
                p=1.0,
            )
        )
    if jitter.grayscale_p:
        ops.append(K.RandomGrayscale(p=jitter.grayscale_p))
    return ops


@torch.no_grad()
def colour_augment(
    x: torch.Tensor,
    jitter: ColourJitter,
    generator: torch.Generator,
    *,
    sequence_length: int = 1,
) -> torch.Tensor:
    """Jitter the colours of a batch of frames (float 0..255, ``(B, 3, H, W)``).

    Args:
        x: frames on any device; returned on the same device, same dtype.
        jitter: strengths; all zero returns ``x`` unchanged.
        generator: CPU generator; one seed is drawn from it for Kornia.
        sequence_length: ``n``: consecutive groups of ``n`` frames are one
            sequence and share one colour draw (``B`` must be a multiple).
    """
    if not jitter.active:
        return x
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"frames: expected (B, 3, H, W), got {tuple(x.shape)}")
    n = int(sequence_length)
    if n < 1 or x.shape[0] % n:
        raise ValueError(f"batch of {x.shape[0]} frames is not a multiple of n = {n}")
    import kornia.augmentation as K

    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    unit = (x.float() / 255.0).clamp_(0.0, 1.0)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        if n == 1:
            out = K.AugmentationSequential(*_pipeline(jitter))(unit)
        else:
            video = unit.reshape(-1, n, *unit.shape[1:])  # (S, n, 3, H, W)
            seq = K.VideoSequential(*_pipeline(jitter), data_format="BTCHW", same_on_frame=True)
            out = seq(video).reshape(unit.shape)
    return (out.clamp(0.0, 1.0) * 255.0).to(x.dtype)
