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

Cost: every group (a CRF frame, a co-localisation sequence) gets a grid sized
by its OWN feature range, so its cost does not depend on the other groups of
the call (a narrow-colour frame keeps its small grid in any batch); groups of
equal (bucketed) grid shape share one blur call. On CPU the blur skips, exactly,
the grid lines that hold no point along the last axis and evaluates the first
axis only on the columns that hold points (the energy and the gradient read the
blurred grid only there), and calls are kept under ~16 MiB a buffer so that
their memory is reused rather than mapped afresh (docs/performance.md).

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

#: most grid cells (times K) one autograd call allocates; more groups are chunked.
#: 4M float32 cells (16 MiB a buffer) keeps every buffer under glibc's largest
#: mmap threshold (32 MiB): a larger one is mmapped and page-faulted afresh on
#: every call, which made the per-frame cost of a batch ~1.6x a lone frame's.
_MAX_CELLS = 1 << 22
#: skip the grid's empty lines and columns in the blur (exact; data-dependent
#: shapes, so one host sync each): None = on CPU when the grid outweighs the points
_SKIP_EMPTY: bool | None = None
#: K at or above which a point's K values are splatted and sliced as one row
#: (below it, per-row overhead outweighs the shorter index: one scalar each)
_ROW_K = 8
#: grid sizes are rounded up to a multiple of this many nodes per axis, so that
#: groups of similar feature range share one blur call (padding is exact)
_SIZE_QUANTUM = 4


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


def _occupied(index: torch.Tensor, size: int) -> torch.Tensor:
    """Sorted distinct values of ``index`` (all in [0, size)), via a mask (no sort)."""
    mask = torch.zeros(size, dtype=torch.bool, device=index.device)
    mask[index] = True
    return mask.nonzero().squeeze(1)


def _blur_lines(matrix: torch.Tensor, lines: torch.Tensor) -> torch.Tensor:
    """Blur (L, s, K) ``lines`` along s: one (L*K, s) @ (s, s) product (``matrix`` symmetric).

    A batched (s, s) @ (s, K) product per line is far slower for small K.
    """
    n, s, k = lines.shape
    flat = lines.transpose(1, 2).reshape(n * k, s) @ matrix
    return flat.view(n, k, s).transpose(1, 2)


def _scalar_index(index: torch.Tensor, k: int, groups: int) -> torch.Tensor:
    """(G * K * N) scalar indices into a (cells, K) grid, in (G, K, N) order, from (G * N) rows."""
    per_group = index.view(groups, 1, -1) * k
    return (per_group + torch.arange(k, device=index.device).view(1, k, 1)).reshape(-1)


def _splat(grid: torch.Tensor, index: torch.Tensor, values: torch.Tensor, rows: bool) -> None:
    """Add ``values`` into the (cells, K) ``grid`` at the points' row ``index``, in place."""
    if rows:  # (G, N, K): a point's K values are one row
        grid.index_add_(0, index, values.reshape(-1, grid.shape[1]))
    else:  # (G, K, N): few values per point, where a scalar index_add_ is faster
        groups = values.shape[0]
        grid.view(-1).index_add_(0, _scalar_index(index, grid.shape[1], groups), values.reshape(-1))


class _GridEnergy(torch.autograd.Function):
    """``-sum_k g_k^T B g_k`` per group, ``g`` the splat of ``values``; backward ``-2 A^T B g``.

    ``values`` is (G, N, K) contiguous when ``rows`` (K >= :data:`_ROW_K`), else
    (G, K, N) contiguous. The G groups' grids of ``sizes`` (s_1, ..., s_D) are
    laid out as one (s_1, G, s_2, ..., s_D, K) tensor (the first axis spans all
    groups; a point's K values are one row, so with many values per point
    splat and slice are row copies); ``nodes`` (G * N,) is every point's row in
    it (:func:`_group_grids`).

    The separable blur runs one axis at a time (one banded-Toeplitz matrix
    product each), skipping what cannot matter, exactly:

    * the last axis first, on its occupied lines only (real photos fill 2-5% of
      their colour cube's cells and 20-40% of its lines);
    * the middle axes densely;
    * the first axis last, computed only on the columns (s_2..s_D positions of
      each group) that hold a point, since the energy ``g . Bg`` and the
      gradient ``A^T B g`` only read ``Bg`` where ``g`` has points.

    Only that compact ``Bg`` and one index per point are kept for backward.
    Skipping is on CPU only (:data:`_SKIP_EMPTY`): elsewhere the whole grid is
    blurred, with no data-dependent shapes and so no host synchronisation.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        values: torch.Tensor,
        nodes: torch.Tensor,
        sizes: tuple[int, ...],
        matrices: list[torch.Tensor],
        rows: bool,
    ) -> torch.Tensor:
        # rows: values (G, N, K), a point's K values splatted as one row; else (G, K, N)
        groups, points, k = values.shape if rows else values.transpose(1, 2).shape
        first, rest = sizes[0], math.prod(sizes[1:])
        width = groups * rest  # columns of the (s_1, G * rest) layout
        grid = values.new_zeros(first * width, k)
        _splat(grid, nodes, values, rows)
        sparse = _SKIP_EMPTY
        if sparse is None:  # on CPU, when the grid's work outweighs a few passes over points
            sparse = values.device.type == "cpu" and k * first * width > 4 * groups * points
        out = grid
        if len(sizes) > 1:  # last axis first: on its occupied lines only
            last = sizes[-1]
            lines_of = grid.view(-1, last, k)
            if sparse:
                lines = _occupied(nodes // last, first * width // last)
                blurred_lines = _blur_lines(matrices[-1], lines_of.index_select(0, lines))
                out = torch.zeros_like(lines_of).index_copy_(0, lines, blurred_lines)
            else:
                out = _blur_lines(matrices[-1], lines_of)
        for axis in range(len(sizes) - 2, 0, -1):  # middle axes, dense
            pre = first * groups * math.prod(sizes[1:axis])
            post = math.prod(sizes[axis + 1 :]) * k
            out = torch.matmul(matrices[axis], out.reshape(pre, sizes[axis], post))
        picked, used = out.reshape(first, width, k), grid.view(first, width, k)
        index = nodes
        if sparse:  # first axis last: only on the occupied columns
            col = nodes % width
            cols = _occupied(col, width)
            picked, used = picked.index_select(1, cols), used.index_select(1, cols)
            lookup = torch.empty(width, dtype=torch.int64, device=values.device)
            lookup[cols] = torch.arange(cols.numel(), device=values.device)
            index = (nodes // width) * cols.numel() + lookup[col]
        blurred = (matrices[0] @ picked.reshape(first, -1)).reshape(-1, k)
        # sum over s_1 (contiguous), then over K: one value per column
        per_col = (used * blurred.view(first, -1, k)).sum(0).sum(1)
        if sparse:
            energy = -values.new_zeros(groups).index_add_(0, cols // rest, per_col)
        else:
            energy = -per_col.view(groups, rest).sum(1)
        ctx.save_for_backward(index if rows else _scalar_index(index, k, groups), blurred)
        ctx.shape = values.shape  # type: ignore[attr-defined]
        ctx.rows = rows  # type: ignore[attr-defined]
        return energy

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_energy: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None, None]:
        compact, blurred = ctx.saved_tensors  # type: ignore[attr-defined]
        # rows: one (K,) row of the blurred grid per point; else one scalar per (k, point)
        source = blurred if ctx.rows else blurred.view(-1)  # type: ignore[attr-defined]
        sliced = source.index_select(0, compact).view(ctx.shape)  # type: ignore[attr-defined]
        return sliced * (-2.0 * grad_energy).view(-1, 1, 1), None, None, None, None


def _bucket(size: int, largest: int) -> int:
    """``size`` rounded up to a multiple of :data:`_SIZE_QUANTUM`, at most ``largest``."""
    return min(-(-size // _SIZE_QUANTUM) * _SIZE_QUANTUM, largest)


def _group_grids(
    features: Sequence[torch.Tensor], spacings: Sequence[float], groups: int, points: int, k: int
) -> list[tuple[list[int], tuple[int, ...], torch.Tensor]]:
    """Groups bucketed by grid shape, one entry per autograd call: ``(groups, sizes, nodes)``.

    Each group's grid spans only its own feature range (each feature is offset
    by the group's minimum), so a narrow-colour frame gets a small grid whatever
    the other frames of the batch look like. Sizes are rounded up per axis to a
    multiple of :data:`_SIZE_QUANTUM` nodes (never past the largest group's), so
    frames of similar range share one blur call; the padding cells hold zeros
    and leave the energy unchanged. A bucket is split into calls of at most
    :data:`_MAX_CELLS` grid cells or points (times ``k``). ``nodes`` is the
    (len(groups) * points,) int64 row of every point in the call's
    (s_1, G, s_2, ..., s_D) grid layout (:class:`_GridEnergy`).
    """
    quantized, spans = [], []
    for feature, h in zip(features, spacings):
        dims = tuple(range(1, feature.ndim))
        low = feature.amin(dim=dims, keepdim=True)
        spans.append((feature.amax(dim=dims) - low.flatten()).double().div(h).expand(groups))
        # node arithmetic in floating point (exact below 2**24 / 2**53), one integer cast
        exact = torch.float64 if feature.dtype == torch.float64 else torch.float32
        q = (feature.to(exact) - low.to(exact)).mul_(1.0 / h).round_()
        quantized.append(q.reshape(-1, points))
    if not quantized:
        raise ShapeError("features: expected at least one feature, got none")
    exact_sizes = (torch.stack(spans, 1).round() + 1).to(torch.int64).tolist()  # one sync
    largest = [max(column) for column in zip(*exact_sizes)]
    buckets: dict[tuple[int, ...], list[int]] = {}
    for g, row in enumerate(exact_sizes):
        key = tuple(_bucket(int(n), top) for n, top in zip(row, largest))
        buckets.setdefault(key, []).append(g)
    out = []
    for sizes, members in sorted(buckets.items()):
        rest = math.prod(sizes[1:])
        per_call = max(1, _MAX_CELLS // max(1, k * max(points, math.prod(sizes))))
        for start in range(0, len(members), per_call):
            chunk = members[start : start + per_call]
            pick = _selector(chunk, quantized[0].device)
            parts = [q if q.shape[0] == 1 else q[pick] for q in quantized]
            if math.prod(sizes) * len(chunk) >= (1 << 24):  # past float32's exact integers
                parts = [part.double() for part in parts]
            # row in the (s_1, G, s_2, ..., s_D) layout: q_1 * G * rest + g * rest + (q_2, ...)
            tail = torch.zeros_like(parts[0])
            for part, size in zip(parts[1:], sizes[1:]):
                tail = tail * size + part
            group = torch.arange(len(chunk), device=tail.device, dtype=tail.dtype) * rest
            nodes = parts[0] * (len(chunk) * rest) + (tail + group.view(-1, 1))
            out.append((chunk, sizes, nodes.to(torch.int64).expand(len(chunk), points).reshape(-1)))
    return out


def _selector(members: list[int], device: torch.device) -> slice | torch.Tensor:
    """A slice when ``members`` are consecutive (no copy), else an index tensor."""
    if members == list(range(members[0], members[-1] + 1)):
        return slice(members[0], members[-1] + 1)
    return torch.tensor(members, device=device)


def gaussian_grid_energy(
    values: torch.Tensor,
    features: Sequence[torch.Tensor],
    bandwidths: Sequence[float],
    *,
    step: float | Sequence[float] = 0.5,
) -> torch.Tensor:
    """Grid approximation of ``-sum_k v_k^T W v_k``, ``W_ij = exp(-|(f_i - f_j) / b|^2 / 2)``.

    Differentiable in ``values`` (not in ``features``, which only place points).
    Groups are independent (each has its own grid, sized by its own feature
    range, so a group's cost does not depend on the others in the call); their
    points interact all-to-all inside the group.

    Args:
        values: (G, K, N) floating point, e.g. class probabilities of N points;
            fastest as the transposed view of a contiguous (G, N, K) tensor
            (the grid keeps a point's K values side by side).
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
        calls = _group_grids(features, spacings, groups, points, k)
    # (G, N, K) when a point's K values are one grid row (no copy when values is a
    # transposed view), else (G, K, N) as given (_ROW_K)
    rows = k >= _ROW_K
    work = values.to(compute_dtype).transpose(1, 2) if rows else values.to(compute_dtype)
    matrices: dict[tuple[float, int], torch.Tensor] = {}
    energies, order = [], []
    for members, sizes, nodes in calls:
        with torch.no_grad():
            for h, n in zip(steps, sizes):
                if (h, n) not in matrices:
                    kernel = blur_kernel1d(h, n, dtype=compute_dtype, device=values.device)
                    matrices[h, n] = _band_matrix(kernel, n)
        mats = [matrices[h, n] for h, n in zip(steps, sizes)]
        subset = work[_selector(members, values.device)].contiguous()
        energies.append(_GridEnergy.apply(subset, nodes, sizes, mats, rows))
        order += members
    energy = torch.cat(energies)
    if order != list(range(groups)):
        inverse = torch.empty(groups, dtype=torch.int64)
        inverse[torch.tensor(order)] = torch.arange(groups)
        energy = energy[inverse.to(energy.device)]
    return energy.to(values.dtype)
