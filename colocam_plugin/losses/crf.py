"""Per-frame dense CRF energy (Tang et al., ECCV 2018) on a 5-D bilateral grid.

``R_t = -sum_k S_t^k . (W S_t^k)`` with
``W_ij = exp(-|p_i - p_j|^2 / (2 sigma_xy^2) - |I_i - I_j|^2 / (2 sigma_rgb^2))``,
positions ``p`` in pixels, colours ``I`` in 0..255, diagonal included. With the
reference ``sigma_xy = 100`` at 224x224 the kernel is nearly global, so it is
computed exactly-in-expectation on a (y, x, r, g, b) grid, not with a windowed
filter (see :mod:`colocam_plugin.losses.bilateral_grid`).

Weight: the paper's 2e-9 was tuned for a permutohedral lattice whose energy is
about 0.5-0.75x the exact Gaussian energy computed here; the scale-equivalent
weight for this kernel is ``2e-9 * 0.6 = 1.2e-9`` (:data:`CRF_WEIGHT`,
docs/losses.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from colocam_plugin.errors import ShapeError
from colocam_plugin.losses._checks import check_float, check_ndim, check_same_spatial
from colocam_plugin.losses.bilateral_grid import gaussian_grid_energy

__all__ = ["CRF_STEP", "CRF_WEIGHT", "CRFEnergy", "CRFLoss", "crf_energy", "crf_loss"]

#: paper weight 2e-9 times the permutohedral-lattice/exact energy ratio (~0.6)
CRF_WEIGHT = 1.2e-9
#: default grid spacing in bandwidths: (position, colour). The position spacing
#: is further capped at a quarter of the frame's longer side (docs/losses.md).
CRF_STEP = (0.5, 1 / 3)


def _default_steps(h: int, w: int, sigma_xy: float) -> list[float]:
    """Per-axis (y, x, r, g, b) spacing: position at most max(H, W)/4 pixels."""
    position = min(CRF_STEP[0], max(h, w) / (4.0 * sigma_xy))
    return [position, position, CRF_STEP[1], CRF_STEP[1], CRF_STEP[1]]


def crf_energy(
    probs: torch.Tensor,
    images: torch.Tensor,
    *,
    sigma_rgb: float = 15.0,
    sigma_xy: float = 100.0,
    step: float | Sequence[float] | None = None,
) -> torch.Tensor:
    """Dense CRF energy of every frame, ``R_t = -sum_k S^k . (W S^k)``.

    Args:
        probs: (B, K, H, W) class probabilities (e.g. softmax of logits), float.
        images: (B, 3, H, W) colour in 0..255 (any float or integer dtype).
        sigma_rgb: colour bandwidth on the 0..255 scale.
        sigma_xy: position bandwidth in pixels.
        step: grid spacing in bandwidths, one value or five for (y, x, r, g, b);
            None: :data:`CRF_STEP` (position spacing capped at max(H, W)/4
            pixels), which keeps the error within ~1% (docs/losses.md).

    Returns:
        (B,) non-positive energies, dtype and device of ``probs``; differentiable
        in ``probs``.

    Raises:
        ShapeError: on a wrong rank, mismatched sizes/devices, or non-float probs.

    Examples:
        >>> probs = torch.rand(2, 2, 32, 32).softmax(1)
        >>> images = torch.rand(2, 3, 32, 32) * 255
        >>> crf_energy(probs, images).shape
        torch.Size([2])
    """
    check_ndim(probs, "probs", "B, K, H, W")
    check_ndim(images, "images", "B, 3, H, W")
    if images.shape[1] != 3:
        raise ShapeError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
    check_same_spatial(probs, "probs", images, "images", 2)
    check_float(probs, "probs")
    b, k, h, w = probs.shape
    dtype = probs.dtype if probs.dtype == torch.float64 else torch.float32
    ys = torch.arange(h, dtype=dtype, device=probs.device).view(1, h, 1).expand(1, h, w)
    xs = torch.arange(w, dtype=dtype, device=probs.device).view(1, 1, w).expand(1, h, w)
    features = [ys, xs, images[:, 0], images[:, 1], images[:, 2]]
    bandwidths = [sigma_xy, sigma_xy, sigma_rgb, sigma_rgb, sigma_rgb]
    steps = _default_steps(h, w, sigma_xy) if step is None else step
    return gaussian_grid_energy(probs.reshape(b, k, h * w), features, bandwidths, step=steps)


def crf_loss(
    probs: torch.Tensor,
    images: torch.Tensor,
    *,
    sigma_rgb: float = 15.0,
    sigma_xy: float = 100.0,
    weight: float = CRF_WEIGHT,
    step: float | Sequence[float] | None = None,
) -> torch.Tensor:
    """``weight * mean_t R_t``: the CRF loss of a batch of frames.

    Args:
        probs: (B, K, H, W) class probabilities.
        images: (B, 3, H, W) colour in 0..255.
        sigma_rgb: colour bandwidth.
        sigma_xy: position bandwidth in pixels.
        weight: loss weight (default :data:`CRF_WEIGHT`).
        step: grid spacing in bandwidths.

    Returns:
        Scalar tensor.

    Examples:
        >>> probs = torch.rand(2, 2, 16, 16).softmax(1)
        >>> crf_loss(probs, torch.rand(2, 3, 16, 16) * 255).ndim
        0
    """
    energy = crf_energy(probs, images, sigma_rgb=sigma_rgb, sigma_xy=sigma_xy, step=step)
    return weight * energy.mean()


class CRFEnergy(nn.Module):
    """Module form of :func:`crf_energy`; returns (B,) energies.

    Args:
        sigma_rgb: colour bandwidth on 0..255.
        sigma_xy: position bandwidth in pixels.
        step: grid spacing in bandwidths.

    Examples:
        >>> CRFEnergy()(torch.rand(1, 2, 8, 8).softmax(1), torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1])
    """

    def __init__(
        self,
        *,
        sigma_rgb: float = 15.0,
        sigma_xy: float = 100.0,
        step: float | Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        # the bandwidths fix the grid's integer layout, so they stay Python floats
        self.sigma_rgb = float(sigma_rgb)
        self.sigma_xy = float(sigma_xy)
        self.step = step

    def forward(self, probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return crf_energy(
            probs, images, sigma_rgb=self.sigma_rgb, sigma_xy=self.sigma_xy, step=self.step
        )

    def extra_repr(self) -> str:
        return f"sigma_rgb={self.sigma_rgb}, sigma_xy={self.sigma_xy}, step={self.step}"


class CRFLoss(CRFEnergy):
    """``weight * mean_t R_t`` (module form of :func:`crf_loss`); ``weight`` is a buffer.

    Args:
        weight: loss weight (default :data:`CRF_WEIGHT` = 1.2e-9, see module doc).
        sigma_rgb: colour bandwidth on 0..255.
        sigma_xy: position bandwidth in pixels.
        step: grid spacing in bandwidths.

    Examples:
        >>> loss = CRFLoss(weight=1e-3)
        >>> loss(torch.rand(2, 2, 8, 8).softmax(1), torch.zeros(2, 3, 8, 8)).item() < 0
        True
    """

    weight: torch.Tensor

    def __init__(
        self,
        weight: float = CRF_WEIGHT,
        *,
        sigma_rgb: float = 15.0,
        sigma_xy: float = 100.0,
        step: float | Sequence[float] | None = None,
    ) -> None:
        super().__init__(sigma_rgb=sigma_rgb, sigma_xy=sigma_xy, step=step)
        self.register_buffer("weight", torch.tensor(float(weight)))

    def forward(self, probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        energy = super().forward(probs, images)
        return self.weight.to(energy.dtype) * energy.mean()
