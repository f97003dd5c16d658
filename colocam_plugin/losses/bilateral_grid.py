"""Dense-Gaussian quadratic energies on a bilateral grid, in O(points + grid cells).

Both CoLo-CAM regularisers are quadratic forms of a fully connected Gaussian
affinity, ``E = -sum_k s_k^T W s_k`` with ``W_ij = exp(-|f_i - f_j|^2 / 2)``,
where ``f`` are features already divided by their bandwidth (colour / sigma_rgb
for the co-localisation term; colour / sigma_rgb and position / sigma_xy for the
CRF). ``W`` is dense (``n*H*W`` squared pairs), so it is approximated by the
classic bilateral-grid pipeline:

1. **splat**: every point adds its value to the nearest node of a regular grid
   of spacing ``step`` (in bandwidth units) over the feature space
   (``index_add_`` on integer node indices);
2. **blur**: a separable Gaussian blur of the grid (one banded matrix product
   per axis);
3. **slice**: every point reads the blurred grid at its node.

The whole operator is ``A^T B A`` (``A`` the 0/1 splat matrix, ``B`` the
separable blur), symmetric like ``W``, so the energy is computed on the grid
(``-sum_k g_k^T B g_k`` with ``g = A s``) and its exact gradient
``-2 A^T B A s`` is a single gather of the blurred grid. A custom
``autograd.Function`` keeps the node indices from the forward pass and reuses
them in the backward pass.

Blur correction: rounding two points to their nodes displaces each by a
uniform error of variance ``step^2 / 12`` per axis, which on average widens
the kernel's variance by ``step^2 / 6``. The grid blur therefore uses
``sigma_b^2 = 1 - step^2 / 6`` (bandwidth units) and a peak factor
``1 / sigma_b`` per axis, so that splat-blur-slice matches the exact Gaussian
``exp(-d^2 / 2)`` in expectation (peak 1, unit bandwidth). With
``step = 0.5`` the measured error on real photos is well under 1% of the
energy, with gradient cosine similarity above 0.998 (see docs/losses.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from colocam_plugin.errors import ShapeError

__all__ = ["blur_kernel1d", "gaussian_grid_energy"]

#: most grid cells (times K) one autograd call allocates; more groups are chunked
_MAX_CELLS = 1 << 24


def blur_kernel1d(
    step: float, size: int, *, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The 1-D grid blur that makes nearest-node splat/blur/slice match ``exp(-d^2/2)``.

    Args:
        step: grid spacing in bandwidth units, in (0, 1.5].
        size: number of grid nodes along this axis (caps the kernel radius).
        dtype: dtype of the kernel.
        device: device of the kernel.

    Returns:
        Kernel of shape (2r+1,), ``exp(-(j*step)^2 / (2 sigma_b^2)) / sigma_b`` with
        ``sigma_b = sqrt(1 - step^2/6)`` and ``r = min(ceil(4 sigma_b / step), size-1)``.

    Examples:
        >>> k = blur_kernel1d(0.5, 40, dtype=torch.float64, device=torch.device("cpu"))
        >>> k.shape
        torch.Size([17])
        >>> round(float(k.sum() * 0.5), 3)  # integrates to sqrt(2*pi), like exp(-d^2/2)
        2.507
    """
    if not 0.0 < step <= 1.5:
        raise ValueError(f"step: expected a grid spacing in (0, 1.5] bandwidths, got {step}")
    sigma_b = math.sqrt(1.0 - step * step / 6.0)
    radius = max(0, min(math.ceil(4.0 * sigma_b / step), size - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64) * step
    kernel = torch.exp(-(offsets**2) / (2.0 * sigma_b**2)) / sigma_b
    return kernel.to(dtype=dtype, device=device)


def _band_matrix(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """(size, size) symmetric Toeplitz matrix of a centred 1-D kernel (zero padding)."""
    radius = (kernel.numel() - 1) // 2
    idx = torch.arange(size, device=kernel.device)
    offset = idx.view(-1, 1) - idx.view(1, -1)
    inside = offset.abs() <= radius
    return torch.where(inside, kernel[(offset + radius).clamp(0, 2 * radius)], 0.0)


def _blur(grid: torch.Tensor, matrices: Sequence[torch.Tensor]) -> torch.Tensor:
    """Separable zero-padded blur of ``grid`` (M, s_1, ..., s_D) along its last D axes.

    Each axis is one (batched) matrix product with its banded Toeplitz matrix:
    the grids are small (tens of nodes per axis), where BLAS beats convolution.
    """
    sizes = grid.shape[1:]
    out = grid
    for axis, matrix in enumerate(matrices):
        pre = grid.shape[0] * math.prod(sizes[:axis])
        post = math.prod(sizes[axis + 1 :])
        if post == 1:
            out = out.reshape(pre, sizes[axis]) @ matrix  # symmetric: no transpose
        else:
            out = torch.matmul(matrix, out.reshape(pre, sizes[axis], post))
    return out.reshape(grid.shape)


class _GridEnergy(torch.autograd.Function):
    """``-sum_k g_k^T B g_k`` per group, ``g`` the splat of ``values``; backward ``-2 A^T B g``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        values: torch.Tensor,
        nodes: torch.Tensor,
        sizes: tuple[int, ...],
        matrices: list[torch.Tensor],
    ) -> torch.Tensor:
        groups, k, _ = values.shape
        cells = math.prod(sizes)
        offsets = torch.arange(groups * k, device=values.device).view(groups, k, 1) * cells
        flat = (nodes.unsqueeze(1) + offsets).reshape(-1)
        grid = values.new_zeros(groups * k * cells)
        grid.index_add_(0, flat, values.reshape(-1))
        blurred = _blur(grid.view(groups * k, *sizes), matrices).reshape(-1)
        energy = -(grid * blurred).view(groups, -1).sum(1)
        ctx.save_for_backward(flat, blurred)
        ctx.shape = values.shape  # type: ignore[attr-defined]
        return energy

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_energy: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None]:
        flat, blurred = ctx.saved_tensors  # type: ignore[attr-defined]
        sliced = blurred.index_select(0, flat).view(ctx.shape)  # type: ignore[attr-defined]
        return sliced * (-2.0 * grad_energy).view(-1, 1, 1), None, None, None


def _node_indices(
    features: Sequence[torch.Tensor], spacings: Sequence[float], groups: int, points: int
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Nearest-node linear index (groups, points) of every point and the grid's sizes.

    Each feature is offset by its per-group minimum, so a group's grid spans only
    its own range; the grid's size per axis is the largest range over groups.
    """
    lows, highs = [], []
    for feature in features:
        dims = tuple(range(1, feature.ndim))
        lows.append(feature.amin(dim=dims, keepdim=True))
        highs.append(feature.amax(dim=dims, keepdim=True))
    spans = torch.stack([(hi - lo).amax() / h for lo, hi, h in zip(lows, highs, spacings)])
    sizes = tuple(int(n) + 1 for n in torch.round(spans).tolist())
    # node arithmetic in floating point (exact below 2**24 / 2**53), one integer cast
    exact = torch.float32 if math.prod(sizes) < (1 << 24) else torch.float64
    nodes: torch.Tensor | None = None
    for feature, low, h, size in zip(features, lows, spacings, sizes):
        q = (feature.to(exact) - low.to(exact)).mul_(1.0 / h).round_()
        nodes = q if nodes is None else nodes * size + q
    if nodes is None:
        raise ShapeError("features: expected at least one feature, got none")
    return nodes.reshape(-1, points).to(torch.int64).expand(groups, points), sizes


def gaussian_grid_energy(
    values: torch.Tensor,
    features: Sequence[torch.Tensor],
    bandwidths: Sequence[float],
    *,
    step: float | Sequence[float] = 0.5,
) -> torch.Tensor:
    """Grid approximation of ``-sum_k v_k^T W v_k``, ``W_ij = exp(-|(f_i - f_j) / b|^2 / 2)``.

    Differentiable in ``values`` (not in ``features``, which only place points).
    Groups are independent (each has its own grid); their points interact
    all-to-all inside the group.

    Args:
        values: (G, K, N) floating point, e.g. class probabilities of N points.
        features: D tensors of shape (G, *S) or (1, *S) with ``prod(S) = N``, in
            raw units (e.g. colour 0..255, pixels); a feature shared by all
            groups (pixel position) may be given once with a leading 1. Strided
            views (``images[:, :, c]``) are fine.
        bandwidths: D Gaussian bandwidths ``b_d`` (sigma_rgb, sigma_xy), in the
            features' units.
        step: grid spacing in bandwidths, one for all axes or one per feature,
            in (0, 1.5]. Smaller is more accurate and costs ``step^-D`` more
            grid cells.

    Returns:
        (G,) energies (non-positive), dtype and device of ``values``.

    Raises:
        ShapeError: if ``values`` is not (G, K, N) or a feature does not match.
        ValueError: if a step is outside (0, 1.5] or counts disagree.

    Examples:
        >>> from colocam_plugin.losses.dense import dense_gaussian_energy
        >>> g = torch.Generator().manual_seed(0)
        >>> v = torch.rand(1, 2, 4000, generator=g, dtype=torch.float64)   # G=1, K=2
        >>> rgb = torch.rand(1, 4000, 3, generator=g, dtype=torch.float64) * 255
        >>> approx = gaussian_grid_energy(v, list(rgb.permute(2, 0, 1)), [15.0] * 3, step=1 / 3)
        >>> exact = dense_gaussian_energy(v, rgb / 15.0)
        >>> bool(abs(approx / exact - 1) < 0.01)
        True
    """
    if not isinstance(values, torch.Tensor) or values.ndim != 3:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ShapeError(f"values: expected (G, K, N), got {got}")
    if len(features) == 0:
        raise ShapeError("features: expected at least one (G, *S) feature, got none")
    groups, k, points = values.shape
    for i, feature in enumerate(features):
        if feature.ndim < 2 or feature.shape[0] not in (1, groups) or feature[0].numel() != points:
            raise ShapeError(
                f"features[{i}]: expected ({groups}, ...) or (1, ...) with {points} points "
                f"per group, got {tuple(feature.shape)}"
            )
    steps = [float(step)] * len(features) if isinstance(step, (int, float)) else list(step)
    if len(steps) != len(features) or len(bandwidths) != len(features):
        raise ValueError(
            f"step/bandwidths: expected {len(features)} values (one per feature), "
            f"got {len(steps)} steps and {len(bandwidths)} bandwidths"
        )
    compute_dtype = values.dtype if values.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        spacings = [h * float(b) for h, b in zip(steps, bandwidths)]
        nodes, sizes = _node_indices(features, spacings, groups, points)
        matrices = [
            _band_matrix(blur_kernel1d(h, n, dtype=compute_dtype, device=values.device), n)
            for h, n in zip(steps, sizes)
        ]
    work = values.to(compute_dtype)
    per_call = max(1, _MAX_CELLS // max(1, k * math.prod(sizes)))
    energies = [
        _GridEnergy.apply(work[i : i + per_call], nodes[i : i + per_call], sizes, matrices)
        for i in range(0, groups, per_call)
    ]
    return torch.cat(energies).to(values.dtype)
