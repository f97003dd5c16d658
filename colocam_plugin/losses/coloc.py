"""CoLo-CAM's multi-frame co-localisation term on a 3-D colour grid.

For a sequence of n frames all ``n*H*W`` pixels form one fully connected set:
``R_c = -sum_k S~^k . (W~ S~^k)`` with ``W~_ij = exp(-|I_i - I_j|^2 / (2 sigma^2))``,
colour only (no position term), ``I`` in 0..255, diagonal included. A dense
``W~`` has ~4e10 entries at n=4, 224x224; the energy is computed on an RGB
bilateral grid in O(nHW + grid) (:mod:`colocam_plugin.losses.bilateral_grid`).
The loss uses the adaptive weight ``lambda_c * R_c / |R_c|.detach()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from colocam_plugin.errors import ShapeError
from colocam_plugin.losses._checks import check_float, check_ndim, check_same_spatial
from colocam_plugin.losses.bilateral_grid import gaussian_grid_energy

__all__ = ["COLOC_STEP", "CoLocEnergy", "CoLocLoss", "coloc_energy", "coloc_loss"]

#: colour-grid spacing in bandwidths (5 levels at sigma_rgb 15; docs/losses.md)
COLOC_STEP = 1 / 3


def coloc_energy(
    probs: torch.Tensor,
    images: torch.Tensor,
    *,
    sigma_rgb: float = 15.0,
    step: float | Sequence[float] = COLOC_STEP,
) -> torch.Tensor:
    """Co-localisation energy of every sequence, ``R_c = -sum_k S~^k . (W~ S~^k)``.

    Args:
        probs: (B, n, K, H, W) class probabilities of B sequences of n frames.
        images: (B, n, 3, H, W) colour in 0..255 (any float or integer dtype).
        sigma_rgb: colour bandwidth on the 0..255 scale.
        step: colour-grid spacing in bandwidths (default 1/3: 5 levels at sigma 15).

    Returns:
        (B,) non-positive energies, dtype and device of ``probs``; differentiable
        in ``probs``.

    Raises:
        ShapeError: on a wrong rank, mismatched sizes/devices, or non-float probs.

    Examples:
        >>> probs = torch.rand(2, 4, 2, 32, 32).softmax(2)
        >>> images = torch.rand(2, 4, 3, 32, 32) * 255
        >>> coloc_energy(probs, images).shape
        torch.Size([2])
    """
    check_ndim(probs, "probs", "B, n, K, H, W")
    check_ndim(images, "images", "B, n, 3, H, W")
    if images.shape[2] != 3:
        raise ShapeError(f"images: expected (B, n, 3, H, W), got {tuple(images.shape)}")
    check_same_spatial(probs, "probs", images, "images", 2)
    check_float(probs, "probs")
    b, n, k, h, w = probs.shape
    values = probs.transpose(1, 2).reshape(b, k, n * h * w)
    features = [images[:, :, 0], images[:, :, 1], images[:, :, 2]]
    return gaussian_grid_energy(values, features, [sigma_rgb] * 3, step=step)


def coloc_loss(
    probs: torch.Tensor,
    images: torch.Tensor,
    *,
    sigma_rgb: float = 15.0,
    weight: float = 4.0,
    step: float | Sequence[float] = COLOC_STEP,
) -> torch.Tensor:
    """``mean_c weight * R_c / |R_c|.detach()``: CoLo-CAM's adaptive co-localisation loss.

    Its value is ``-weight`` whenever an energy is non-zero; its gradient is
    ``weight * dR_c / |R_c|``, i.e. the energy's gradient normalised per sequence.

    Args:
        probs: (B, n, K, H, W) class probabilities.
        images: (B, n, 3, H, W) colour in 0..255.
        sigma_rgb: colour bandwidth.
        weight: lambda_c (paper's best 4; the authors' README uses 9).
        step: colour-grid spacing in bandwidths.

    Returns:
        Scalar tensor.

    Examples:
        >>> probs = torch.rand(1, 2, 2, 16, 16, requires_grad=True)
        >>> loss = coloc_loss(probs, torch.rand(1, 2, 3, 16, 16) * 255)
        >>> loss.item()
        -4.0
    """
    energy = coloc_energy(probs, images, sigma_rgb=sigma_rgb, step=step)
    scale = energy.detach().abs().clamp_min(torch.finfo(energy.dtype).tiny)
    return (weight * energy / scale).mean()


class CoLocEnergy(nn.Module):
    """Module form of :func:`coloc_energy`; returns (B,) energies.

    Args:
        sigma_rgb: colour bandwidth on 0..255.
        step: colour-grid spacing in bandwidths.

    Examples:
        >>> m = CoLocEnergy()
        >>> m(torch.rand(1, 2, 2, 8, 8).softmax(2), torch.zeros(1, 2, 3, 8, 8)).shape
        torch.Size([1])
    """

    def __init__(
        self, *, sigma_rgb: float = 15.0, step: float | Sequence[float] = COLOC_STEP
    ) -> None:
        super().__init__()
        # the bandwidth fixes the grid's integer layout, so it stays a Python float
        self.sigma_rgb = float(sigma_rgb)
        self.step = step

    def forward(self, probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return coloc_energy(probs, images, sigma_rgb=self.sigma_rgb, step=self.step)

    def extra_repr(self) -> str:
        return f"sigma_rgb={self.sigma_rgb}, step={self.step}"


class CoLocLoss(CoLocEnergy):
    """Module form of :func:`coloc_loss`; ``weight`` (lambda_c) is a buffer.

    Args:
        weight: lambda_c (default 4, the paper's best).
        sigma_rgb: colour bandwidth on 0..255.
        step: colour-grid spacing in bandwidths.

    Examples:
        >>> loss = CoLocLoss(weight=9.0)
        >>> loss(torch.rand(2, 4, 2, 8, 8).softmax(2), torch.rand(2, 4, 3, 8, 8) * 255)
        tensor(-9.)
    """

    weight: torch.Tensor

    def __init__(
        self,
        weight: float = 4.0,
        *,
        sigma_rgb: float = 15.0,
        step: float | Sequence[float] = COLOC_STEP,
    ) -> None:
        super().__init__(sigma_rgb=sigma_rgb, step=step)
        self.register_buffer("weight", torch.tensor(float(weight)))

    def forward(self, probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        energy = super().forward(probs, images)
        scale = energy.detach().abs().clamp_min(torch.finfo(energy.dtype).tiny)
        return (self.weight.to(energy.dtype) * energy / scale).mean()
