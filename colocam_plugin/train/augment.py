"""Training augmentation on the device, built from Kornia.

The loaders only decode and resize (float 0..255, ``cfg.resize`` square; see
:class:`~colocam_plugin.data.transforms.ClipTransform`). The rest of the
augmentation runs here, on the training device, as batched Kornia calls:

- :func:`crop_flip`: a random ``crop x crop`` window
  (``kornia.augmentation.RandomCrop``, ``cropping_mode="slice"``: slicing, no
  warp) and a horizontal flip with probability 0.5
  (``RandomHorizontalFlip``). In stage 2 the frames of one sequence share one
  draw (``kornia.augmentation.VideoSequential``, ``same_on_frame=True``), and
  the pseudo-label source CAMs ride along as extra channels of the same call,
  so each CAM is cropped and flipped exactly as its frame (METHOD.md: "same
  augmentation as the frame"); stage 1 draws per frame.
- :func:`colour_augment`: brightness, contrast, saturation and hue jitter
  (``ColorJiggle``) and a grey frame with probability ``grayscale_p``; per
  frame in stage 1, one draw per sequence in stage 2, so the colour
  co-localization term still compares the same object colour across the n
  frames.

The paper's stage 1 uses resize, random crop and flip only. Colour jitter is
our addition (docs/faithfulness.md): where class evidence lies in shape and
texture rather than colour, it keeps the classifier from telling training
instances apart by their colour. Evaluation and inference never come here.

Randomness comes from the ``generator`` the caller passes (one draw of a seed
per call, Kornia then runs under that seed in a forked RNG), so a run is
reproducible, does not depend on the number of loader workers, and a resumed
run draws the same values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, overload

import torch

from colocam_plugin.errors import ShapeError

__all__ = ["ColourJitter", "colour_augment", "crop_flip"]


@contextmanager
def _seeded_from(generator: torch.Generator, device: torch.device) -> Iterator[None]:
    """Run the block (Kornia's draws) under one seed drawn from ``generator``.

    The global RNG (and the CUDA one of ``device``) is forked, so it is left
    as it was.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


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

    unit = (x.float() / 255.0).clamp_(0.0, 1.0)
    with _seeded_from(generator, x.device):
        if n == 1:
            out = K.AugmentationSequential(*_pipeline(jitter))(unit)
        else:
            video = unit.reshape(-1, n, *unit.shape[1:])  # (S, n, 3, H, W)
            seq = K.VideoSequential(*_pipeline(jitter), data_format="BTCHW", same_on_frame=True)
            out = seq(video).reshape(unit.shape)
    return (out.clamp(0.0, 1.0) * 255.0).to(x.dtype)


@overload
def crop_flip(
    x: torch.Tensor,
    size: int,
    generator: torch.Generator,
    *,
    maps: None = None,
    hflip: bool = True,
    sequence_length: int = 1,
) -> tuple[torch.Tensor, None]: ...


@overload
def crop_flip(
    x: torch.Tensor,
    size: int,
    generator: torch.Generator,
    *,
    maps: torch.Tensor,
    hflip: bool = True,
    sequence_length: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@torch.no_grad()
def crop_flip(
    x: torch.Tensor,
    size: int,
    generator: torch.Generator,
    *,
    maps: torch.Tensor | None = None,
    hflip: bool = True,
    sequence_length: int = 1,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random ``size x size`` crop and horizontal flip of a batch, with its maps.

    One batched Kornia call (``RandomCrop`` by slicing, then
    ``RandomHorizontalFlip`` with probability 0.5, inside ``VideoSequential``
    with ``same_on_frame=True``). ``maps`` are stacked onto the frames as
    extra channels of that call, so they get exactly the frames' crop and
    flip; their values are moved, never interpolated.

    Args:
        x: ``(B, C, H, W)`` frames, any device and dtype (returned alike).
        size: output side ``S``; ``S <= H`` and ``S <= W``.
        generator: CPU generator; one seed is drawn from it for Kornia.
        maps: optional ``(B, H, W)`` or ``(B, k, H, W)`` per-frame maps on the
            frames' grid (e.g. the pseudo-label source CAMs, already resized
            to the frames' size); returned in their shape, dtype and device.
        hflip: allow the flip (False: crop only).
        sequence_length: ``n``: consecutive groups of ``n`` frames are one
            sequence and share one crop and flip (``B`` must be a multiple).

    Returns:
        ``(frames, maps)``: ``(B, C, S, S)`` and the maps cropped and flipped
        alike (``None`` when none were given).

    Raises:
        ShapeError: ``x`` not ``(B, C, H, W)``, frames smaller than ``size``,
            ``maps`` not on the frames' batch and grid, or ``B`` not a
            multiple of ``sequence_length``.

    Examples:
        >>> x = torch.arange(2 * 8 * 8.0).view(2, 1, 8, 8)
        >>> cams = x[:, 0] / 127.0
        >>> g = torch.Generator().manual_seed(0)
        >>> out, cams_out = crop_flip(x, 4, g, maps=cams, sequence_length=2)
        >>> tuple(out.shape), tuple(cams_out.shape)
        ((2, 1, 4, 4), (2, 4, 4))
        >>> torch.equal(out[1] - out[0], torch.full((1, 4, 4), 64.0))  # one draw for both
        True
        >>> torch.equal(cams_out, out[:, 0] / 127.0)  # the maps moved with the frames
        True
    """
    if x.ndim != 4:
        raise ShapeError(f"frames: expected (B, C, H, W), got {tuple(x.shape)}")
    b, c, h, w = x.shape
    s = int(size)
    if s < 1 or s > h or s > w:
        raise ShapeError(
            f"frames of {h}x{w} cannot be cropped to {s}x{s}; resize them to at least {s}"
        )
    n = int(sequence_length)
    if n < 1 or b % n:
        raise ShapeError(f"batch of {b} frames is not a multiple of n = {n}")
    extra = None
    if maps is not None:
        extra = maps[:, None] if maps.ndim == 3 else maps
        if extra.ndim != 4 or extra.shape[0] != b or extra.shape[-2:] != x.shape[-2:]:
            raise ShapeError(
                f"maps: expected ({b}, {h}, {w}) or ({b}, k, {h}, {w}), got {tuple(maps.shape)}"
            )
    import kornia.augmentation as K

    # Kornia wants floats; a crop and a flip only move values, so working in a
    # type that holds both inputs exactly and casting back is lossless
    dtypes = [x.dtype] if extra is None else [x.dtype, extra.dtype]
    work = torch.float64
    if all(d.is_floating_point for d in dtypes):
        work = dtypes[0] if extra is None else torch.promote_types(*dtypes)
    both = x.to(work) if extra is None else torch.cat([x.to(work), extra.to(x.device, work)], 1)
    ops: list[Any] = [K.RandomCrop((s, s), cropping_mode="slice")]
    if hflip:
        ops.append(K.RandomHorizontalFlip(p=0.5))
    with _seeded_from(generator, x.device):
        seq = K.VideoSequential(*ops, data_format="BTCHW", same_on_frame=True)
        out = seq(both.reshape(b // n, n, *both.shape[1:])).reshape(b, -1, s, s)
    frames = out[:, :c].to(x.dtype).contiguous()
    if maps is None:
        return frames, None
    moved = out[:, c:].to(maps.device, maps.dtype)
    return frames, (moved[:, 0] if maps.ndim == 3 else moved).contiguous()
