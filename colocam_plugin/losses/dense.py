"""Exact dense (O(N^2), chunked) references for the CRF and co-localisation energies.

For validation and benchmarks only: the training path uses the bilateral grid
(:mod:`colocam_plugin.losses.crf`, :mod:`colocam_plugin.losses.coloc`). These
are differentiable by plain autograd and cost ``N^2`` kernel evaluations per
frame (CRF) or per sequence (co-localisation), done ``chunk`` rows at a time.
"""

from __future__ import annotations

import torch

from colocam_plugin.losses._checks import check_float, check_ndim, check_same_spatial

__all__ = ["dense_coloc_energy", "dense_crf_energy", "dense_gaussian_energy"]


def dense_gaussian_energy(
    values: torch.Tensor, features: torch.Tensor, *, chunk: int = 2048
) -> torch.Tensor:
    """Exact ``-sum_k v_k^T W v_k`` with ``W_ij = exp(-|f_i - f_j|^2 / 2)`` (diagonal included).

    Args:
        values: (G, K, N) floating point.
        features: (G, N, D) features already divided by their bandwidth.
        chunk: rows of ``W`` built at a time (memory ``G * chunk * N``).

    Returns:
        (G,) energies, dtype and device of ``values``.

    Examples:
        >>> v = torch.ones(1, 1, 2)
        >>> f = torch.tensor([[[0.0], [1.0]]])
        >>> dense_gaussian_energy(v, f)   # -(1 + 1 + 2 exp(-1/2))
        tensor([-3.2131])
    """
    check_ndim(values, "values", "G, K, N")
    check_ndim(features, "features", "G, N, D")
    energy = values.new_zeros(values.shape[0])
    for start in range(0, values.shape[2], chunk):
        rows = features[:, start : start + chunk]
        kernel = torch.exp(-0.5 * torch.cdist(rows, features).square())  # (G, c, N)
        filtered = torch.einsum("gcn,gkn->gkc", kernel, values)
        energy = energy - (values[:, :, start : start + chunk] * filtered).sum((1, 2))
    return energy


def dense_crf_energy(
    probs: torch.Tensor,
    images: torch.Tensor,
    *,
    sigma_rgb: float = 15.0,
    sigma_xy: float = 100.0,
    chunk: int = 2048,
) -> torch.Tensor:
    """Exact dense CRF energy per frame; same contract as :func:`crf_energy`.

    Args:
        probs: (B, K, H, W) class probabilities.
        images: (B, 3, H, W) colour in 0..255.
        sigma_rgb: colour bandwidth.
        sigma_xy: position bandwidth in pixels.
        chunk: rows of the affinity built at a time.

    Returns:
        (B,) energies.

    Examples:
        >>> probs = torch.full((1, 2, 4, 4), 0.5)
        >>> images = torch.zeros(1, 3, 4, 4)
        >>> dense_crf_energy(probs, images).shape
        torch.Size([1])
    """
    check_ndim(probs, "probs", "B, K, H, W")
    check_ndim(images, "images", "B, 3, H, W")
    check_same_spatial(probs, "probs", images, "images", 2)
    check_float(probs, "probs")
    b, k, h, w = probs.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=probs.dtype, device=probs.device),
        torch.arange(w, dtype=probs.dtype, device=probs.device),
        indexing="ij",
    )
    pos = torch.stack([ys, xs], -1).reshape(1, h * w, 2).expand(b, -1, -1) / sigma_xy
    rgb = images.to(probs.dtype).reshape(b, 3, h * w).transpose(1, 2) / sigma_rgb
    features = torch.cat([pos, rgb], dim=2)
    return dense_gaussian_energy(probs.reshape(b, k, h * w), features, chunk=chunk)


def dense_coloc_energy(
    probs: torch.Tensor, images: torch.Tensor, *, sigma_rgb: float = 15.0, chunk: int = 2048
) -> torch.Tensor:
    """Exact dense co-localisation energy per sequence; same contract as :func:`coloc_energy`.

    Args:
        probs: (B, n, K, H, W) class probabilities of B sequences of n frames.
        images: (B, n, 3, H, W) colour in 0..255.
        sigma_rgb: colour bandwidth.
        chunk: rows of the affinity built at a time.

    Returns:
        (B,) energies.

    Examples:
        >>> probs = torch.full((1, 2, 2, 4, 4), 0.5)
        >>> dense_coloc_energy(probs, torch.zeros(1, 2, 3, 4, 4))  # -(32*32*0.25*2)
        tensor([-512.])
    """
    check_ndim(probs, "probs", "B, n, K, H, W")
    check_ndim(images, "images", "B, n, 3, H, W")
    check_same_spatial(probs, "probs", images, "images", 2)
    check_float(probs, "probs")
    b, n, k, h, w = probs.shape
    values = probs.transpose(1, 2).reshape(b, k, n * h * w)
    rgb = images.to(probs.dtype).transpose(1, 2).reshape(b, 3, n * h * w).transpose(1, 2)
    return dense_gaussian_energy(values, rgb / sigma_rgb, chunk=chunk)
