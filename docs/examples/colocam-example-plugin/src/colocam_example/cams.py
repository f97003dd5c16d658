"""``centre-prior``: a CAM that ignores the image, a sanity baseline.

Objects in photos and videos sit near the centre more often than not; a
method whose CorLoc does not beat this map has learnt little about where
the object is.
"""

from __future__ import annotations

import torch
from torch import nn

from colocam_plugin.cam.base import CAMOutput


class CentrePrior:
    """Centre prior: ``cam(x, y) = exp(-d^2 / (2 sigma^2))``, ``d`` the distance to the centre.

    Args:
        sigma: width of the Gaussian, as a fraction of the half-diagonal.
    """

    name = "centre-prior"

    def __init__(self, *, sigma: float = 0.5) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = sigma

    def __call__(
        self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None
    ) -> CAMOutput:
        """``cams`` (B, H, W) in [0, 1] on ``images.device``; ``logits`` from ``model``."""
        b, _, h, w = images.shape
        ys = torch.linspace(-1.0, 1.0, h, device=images.device)
        xs = torch.linspace(-1.0, 1.0, w, device=images.device)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        d2 = (xx**2 + yy**2) / 2.0  # squared distance over the squared half-diagonal
        cam = torch.exp(-d2 / (2.0 * self.sigma**2))
        cam = (cam - cam.min()) / (cam.max() - cam.min())
        with torch.no_grad():
            logits = model(images)
        return CAMOutput(cam.expand(b, h, w).contiguous(), logits.detach())
