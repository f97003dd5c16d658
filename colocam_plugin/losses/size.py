"""Absolute size constraint (ASC) with the extended log-barrier (Kervadec et al.).

``psi_tau(z) = -log(-z) / tau`` for ``z <= -1/tau^2``, else
``tau*z - log(1/tau^2)/tau + 1/tau`` (continuous, with continuous slope ``tau``).
CoLo-CAM applies it to the negated area of both regions,
``L_ASC = weight * 1/2 * sum_k mean_t psi_tau(-sum_p S_t^k(p))``, keeping the
foreground and background non-empty. ``tau`` starts at 1, is multiplied by 1.01
after each epoch and capped at 10 (:class:`SizeLoss.step_epoch`).
"""

from __future__ import annotations

import torch
from torch import nn

from colocam_plugin.losses._checks import check_float, check_ndim

__all__ = ["SizeLoss", "log_barrier", "size_loss"]


def log_barrier(z: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
    """Extended log-barrier ``psi_tau(z)``, element-wise, finite for every real ``z``.

    Args:
        z: any shape; the constraint is ``z <= 0``.
        tau: barrier sharpness (> 0), a float or a 0-d tensor.

    Returns:
        Tensor of the shape of ``z``; its gradient is finite everywhere.

    Examples:
        >>> log_barrier(torch.tensor([-4.0, 0.0, 2.0]), 1.0)
        tensor([-1.3863,  1.0000,  3.0000])
    """
    tau_t = torch.as_tensor(tau, dtype=z.dtype, device=z.device)
    switch = -1.0 / tau_t**2
    inside = z <= switch
    # clamp so the branch not taken never produces log(<=0) and a NaN gradient
    barrier = -torch.log(-torch.where(inside, z, switch)) / tau_t
    linear = tau_t * z - torch.log(1.0 / tau_t**2) / tau_t + 1.0 / tau_t
    return torch.where(inside, barrier, linear)


def size_loss(probs: torch.Tensor, tau: float | torch.Tensor, weight: float = 0.01) -> torch.Tensor:
    """``weight * 1/2 * sum_k mean_t psi_tau(-sum_p S_t^k(p))``.

    Args:
        probs: (B, K, H, W) class probabilities.
        tau: barrier sharpness.
        weight: loss weight (paper: 0.01).

    Returns:
        Scalar tensor.

    Raises:
        ShapeError: if ``probs`` is not a float (B, K, H, W) tensor.

    Examples:
        >>> probs = torch.full((2, 2, 8, 8), 0.5)      # each region has area 32
        >>> round(size_loss(probs, 1.0).item(), 5)    # 0.01 * 0.5 * 2 * -log(32)
        -0.03466
    """
    check_ndim(probs, "probs", "B, K, H, W")
    check_float(probs, "probs")
    areas = probs.sum(dim=(2, 3))  # (B, K)
    return weight * 0.5 * log_barrier(-areas, tau).mean(dim=0).sum()


class SizeLoss(nn.Module):
    """Module form of :func:`size_loss` owning the ``tau`` schedule (a buffer).

    Args:
        weight: loss weight (paper: 0.01).
        tau: initial sharpness (paper: 1.0).
        growth: factor applied by :meth:`step_epoch` (paper: 1.01).
        tau_max: cap on ``tau`` (paper: 10).

    Examples:
        >>> loss = SizeLoss()
        >>> for _ in range(3):
        ...     loss.step_epoch()
        >>> round(loss.tau.item(), 6)
        1.030301
    """

    tau: torch.Tensor

    def __init__(
        self, weight: float = 0.01, *, tau: float = 1.0, growth: float = 1.01, tau_max: float = 10.0
    ) -> None:
        super().__init__()
        if tau <= 0 or growth <= 0 or tau_max <= 0:
            raise ValueError(
                f"tau, growth, tau_max: expected positive values, got {tau}, {growth}, {tau_max}"
            )
        self.weight = float(weight)
        self.growth = float(growth)
        self.tau_max = float(tau_max)
        self.register_buffer(
            "tau", torch.tensor(min(float(tau), self.tau_max), dtype=torch.float64)
        )

    def step_epoch(self) -> None:
        """Multiply ``tau`` by ``growth``, capped at ``tau_max`` (call after each epoch)."""
        self.tau.mul_(self.growth).clamp_(max=self.tau_max)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        return size_loss(probs, self.tau.to(probs.dtype), self.weight)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, tau={self.tau.item():.4g}, tau_max={self.tau_max}"
