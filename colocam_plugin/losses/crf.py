"""Per-frame dense CRF energy (Tang et al., ECCV 2018) on a 5-D bilateral grid.

``R_t = -sum_k S_t^k . (W S_t^k)`` with
``W_ij = exp(-|p_i - p_j|^2 / (2 sigma_xy^2) - |I_i - I_j|^2 / (2 sigma_rgb^2))``,
positions ``p`` in pixels, colours ``I`` in 0..255, diagonal included. With the
reference ``sigma_xy = 100`` at 224x224 the kernel is nearly global, so it is
not a windowed filter. Two exact-in-expectation evaluations:

* **low-rank position** (the default whenever it is cheaper): the position
  kernel on the pixel lattice is separable, ``K_y (x) K_x``, and, with
  ``sigma_xy`` comparable to the frame, of very low rank. Its eigenvectors
  give ``K_pos ~= sum_r psi_r psi_r^T`` (R terms, the dropped eigenvalue mass
  under :data:`POSITION_TOL` of the trace), so
  ``R_t = sum_r -sum_k (psi_r S^k) . (W_rgb (psi_r S^k))``: R colour-only
  energies on one 3-D RGB grid per frame
  (:mod:`colocam_plugin.losses.bilateral_grid`). At 128x128, sigma_xy = 100,
  R = 6 against the 25 position nodes of the 5-D grid.
* **5-D grid** (y, x, r, g, b): when the position kernel is not low rank
  (small ``sigma_xy``), or when ``step`` gives five spacings.

Weight: the paper's 2e-9 was tuned for a permutohedral lattice whose energy is
about 0.5-0.75x the exact Gaussian energy computed here; the scale-equivalent
weight for this kernel is ``2e-9 * 0.6 = 1.2e-9`` (:data:`CRF_WEIGHT`,
docs/losses.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

from colocam_plugin.errors import ShapeError
from colocam_plugin.losses._checks import check_float, check_ndim, check_same_spatial
from colocam_plugin.losses.bilateral_grid import gaussian_grid_energy

__all__ = [
    "CRF_STEP",
    "CRF_WEIGHT",
    "POSITION_TOL",
    "CRFEnergy",
    "CRFLoss",
    "crf_energy",
    "crf_loss",
    "position_basis",
]

#: paper weight 2e-9 times the permutohedral-lattice/exact energy ratio (~0.6)
CRF_WEIGHT = 1.2e-9
#: default grid spacing in bandwidths: (position, colour). The position spacing
#: is further capped at a quarter of the frame's longer side (docs/losses.md).
CRF_STEP = (0.5, 1 / 3)


#: low-rank position kernel: eigen-terms kept until the dropped eigenvalue mass
#: is under this share of the trace (0.18% at 128x128, sigma_xy = 100)
POSITION_TOL = 2e-3
#: more terms than this and the 5-D grid is used instead (it has at most 25
#: position nodes per colour cell)
_MAX_RANK = 16
#: most (pixel x class x eigen-term) values built at once (8 MiB of float32):
#: a frame of 224x224, K = 2, R = 13 has 1.3M
_CHUNK_VALUES = 1 << 21


@functools.lru_cache(maxsize=32)
def _basis_cpu(h: int, w: int, sigma_xy: float, tol: float) -> torch.Tensor:
    axes = []
    for n in (h, w):
        a = torch.arange(n, dtype=torch.float64)
        k = torch.exp(-((a[:, None] - a[None]) ** 2) / (2.0 * sigma_xy * sigma_xy))
        vals, vecs = torch.linalg.eigh(k)
        axes.append((vals.flip(0).clamp_min(0.0), vecs.flip(1)))
    (ly, uy), (lx, ux) = axes
    prod = (ly[:, None] * lx[None]).flatten()
    order = prod.argsort(descending=True)
    kept = torch.cumsum(prod[order], 0) < (1.0 - tol) * prod.sum()
    rank = int(kept.sum()) + 1
    iy, ix = order[:rank] // w, order[:rank] % w
    psi = uy[:, iy].T[:, :, None] * ux[:, ix].T[:, None, :]  # (R, H, W)
    return (psi * prod[order[:rank]].sqrt().view(-1, 1, 1)).reshape(rank, h * w)


def position_basis(
    h: int,
    w: int,
    sigma_xy: float,
    *,
    tol: float = POSITION_TOL,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Low-rank factor of the pixel-position Gaussian kernel of an H x W frame.

    Args:
        h, w: frame size in pixels.
        sigma_xy: position bandwidth in pixels.
        tol: largest dropped share of the kernel's eigenvalue mass (trace).
        dtype, device: of the returned tensor.

    Returns:
        (R, H*W) ``psi`` with ``psi.T @ psi ~= exp(-|p_i - p_j|^2 / (2 sigma_xy^2))``
        (pixels in row-major order), R the fewest eigen-terms within ``tol``.

    Examples:
        >>> psi = position_basis(32, 32, 100.0, dtype=torch.float64)
        >>> psi.shape[0] <= 6
        True
        >>> ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        >>> p = torch.stack([ys.flatten(), xs.flatten()], 1).double()
        >>> exact = torch.exp(-torch.cdist(p, p) ** 2 / 2e4)
        >>> bool(((psi.T @ psi) - exact).abs().max() < 1e-3)
        True
    """
    basis = _basis_cpu(int(h), int(w), float(sigma_xy), float(tol))
    return basis.to(dtype=dtype, device=device)


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
        step: grid spacing in bandwidths. None: colour spacing ``CRF_STEP[1]``
            with the low-rank position kernel (or, when that needs more than
            16 terms, the 5-D grid with :data:`CRF_STEP`, position spacing
            capped at max(H, W)/4 pixels); error within ~1% (docs/losses.md).
            One value: the colour spacing, position as for None. Five values
            for (y, x, r, g, b): the 5-D grid with those spacings.

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
    five_d = isinstance(step, Sequence) and len(step) == 5
    if not five_d:
        psi = position_basis(h, w, sigma_xy, dtype=dtype, device=probs.device)
        if psi.shape[0] <= _MAX_RANK:
            colour_step = CRF_STEP[1] if step is None else step
            rank = psi.shape[0]
            psi_t = psi.T.reshape(1, h * w, 1, rank)
            # frames in chunks of at most _CHUNK_VALUES values: the per-frame cost then
            # stays flat in B (a bigger buffer is mmapped and page-faulted on every call)
            per_chunk = max(1, _CHUNK_VALUES // (k * rank * h * w))
            energies = []
            for i in range(0, b, per_chunk):
                frames = probs[i : i + per_chunk].to(dtype)
                # (b', HW, K, 1) * (1, HW, 1, R) -> (b', HW, K*R): R colour-only
                # energies per frame, a pixel's K*R values side by side
                values = (frames.flatten(2).transpose(1, 2).unsqueeze(3) * psi_t).flatten(2)
                rgb = images[i : i + per_chunk]
                energies.append(
                    gaussian_grid_energy(
                        values.transpose(1, 2),
                        [rgb[:, 0], rgb[:, 1], rgb[:, 2]],
                        [sigma_rgb] * 3,
                        step=colour_step,
                    )
                )
            return torch.cat(energies).to(probs.dtype)
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
