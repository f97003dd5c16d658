"""Kornia against what the pseudo-label sampler uses today, op by op.

Issue 13 asks for the pseudo-labels' 3x3 dilation and connected components
from Kornia, or a measured reason why not. For a batch of masks shaped like a
stage-2 batch (Otsu masks of upsampled CAMs: a few blobs per frame), this
times and compares:

- 3x3 dilation: ``torch.nn.functional.max_pool2d`` (today) against
  ``kornia.morphology.dilation`` with a 3x3 square kernel (same result);
- connected components: ``scipy.ndimage.label`` on CPU (today) against
  ``kornia.contrib.connected_components`` (iterative max-pool propagation),
  compared by the largest component each finds;
- the bilateral grid's separable Gaussian blur: a banded matrix product per
  axis (today) against ``kornia.filters.filter3d`` with the same 1-D kernel
  per axis (same result up to float rounding);
- colour augmentation: ``colocam_plugin.train.augment.colour_augment``
  (Kornia ``ColorJiggle`` + ``RandomGrayscale``, per frame and per sequence).

    python benchmarks/bench_kornia_ops.py [--batch 32] [--size 128]

Writes ``benchmarks/results/kornia_ops.json`` and ``kornia_ops.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import write_results

RESULTS = Path(__file__).resolve().parent / "results"


def blob_masks(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """(B, H, W) bool: Otsu-like masks of smooth random CAMs (2-4 blobs each)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cams = torch.zeros(batch, size, size)
    for b in range(batch):
        for _ in range(int(torch.randint(2, 5, (1,), generator=g))):
            cy, cx = (torch.rand(2, generator=g) * size).tolist()
            r = float(size * (0.05 + 0.15 * torch.rand(1, generator=g)))
            cams[b] += torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    cams += 0.05 * torch.rand(cams.shape, generator=g)
    return cams > cams.flatten(1).mean(1)[:, None, None]


def _time(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _largest(labels: np.ndarray) -> np.ndarray:
    """Per frame, the mask of the largest labelled component (background 0)."""
    out = np.zeros(labels.shape, dtype=bool)
    for b, lab in enumerate(labels):
        ids, counts = np.unique(lab[lab > 0], return_counts=True)
        if len(ids):
            out[b] = lab == ids[counts.argmax()]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import kornia
    from scipy import ndimage

    from colocam_plugin.train.augment import ColourJitter, colour_augment

    torch.set_num_threads(args.threads)
    masks = blob_masks(args.batch, args.size)
    m4 = masks[:, None].float()
    kernel = torch.ones(3, 3)
    rows: dict[str, dict[str, Any]] = {}

    pool = F.max_pool2d(m4, 3, stride=1, padding=1)
    korn = kornia.morphology.dilation(m4, kernel)
    rows["dilation 3x3"] = {
        "ours": "F.max_pool2d",
        "ours_ms": 1e3 * _time(lambda: F.max_pool2d(m4, 3, stride=1, padding=1), args.repeats),
        "kornia": "kornia.morphology.dilation",
        "kornia_ms": 1e3 * _time(lambda: kornia.morphology.dilation(m4, kernel), args.repeats),
        "identical": bool(torch.equal(pool, korn)),
    }

    structure = np.zeros((3, 3, 3), dtype=bool)  # 8-connectivity, frames separate
    structure[1] = True

    def scipy_label() -> np.ndarray:
        return ndimage.label(masks.numpy(), structure=structure)[0]

    def kornia_label() -> torch.Tensor:
        return kornia.contrib.connected_components(m4, num_iterations=args.cc_iterations)

    ours = _largest(scipy_label())
    theirs = _largest(kornia_label()[:, 0].round().long().numpy())
    rows["connected components (largest)"] = {
        "ours": "scipy.ndimage.label (CPU)",
        "ours_ms": 1e3 * _time(scipy_label, args.repeats),
        "kornia": f"kornia.contrib.connected_components ({args.cc_iterations} iterations)",
        "kornia_ms": 1e3 * _time(kornia_label, max(1, args.repeats // 3)),
        "identical": bool(np.array_equal(ours, theirs)),
    }

    # the bilateral grid's separable Gaussian blur: one banded matrix product per
    # axis (ours) against kornia.filters.filter3d with the same 1-D kernel per axis
    from colocam_plugin.losses.bilateral_grid import _band_matrix, blur_kernel1d

    side = args.grid
    grid = torch.rand(args.grid_maps, side, side, side)
    kernel = blur_kernel1d(0.5, side, dtype=torch.float32, device=torch.device("cpu"))
    band = _band_matrix(kernel, side)

    def ours_blur() -> torch.Tensor:
        g = grid
        for axis in (1, 2, 3):
            g = torch.movedim(torch.movedim(g, axis, -1) @ band, -1, axis)
        return g

    k = kernel.numel()
    shapes = ((1, k, 1, 1), (1, 1, k, 1), (1, 1, 1, k))

    def kornia_blur() -> torch.Tensor:
        g = grid[:, None]
        for shape in shapes:
            g = kornia.filters.filter3d(g, kernel.view(shape), border_type="constant")
        return g[:, 0]

    rows[f"grid blur ({args.grid_maps} maps of {side}^3)"] = {
        "ours": "banded matmul per axis",
        "ours_ms": 1e3 * _time(ours_blur, args.repeats),
        "kornia": "kornia.filters.filter3d per axis",
        "kornia_ms": 1e3 * _time(kornia_blur, max(1, args.repeats // 3)),
        "identical": bool(torch.allclose(ours_blur(), kornia_blur(), rtol=1e-4, atol=1e-4)),
    }

    frames = torch.rand(args.batch, 3, args.size, args.size) * 255
    jitter = ColourJitter(0.4, 0.4, 0.4, 0.5, 0.2)
    for n in (1, 4):
        gen = torch.Generator().manual_seed(0)
        rows[f"colour jitter, n = {n}"] = {
            "ours": "-",
            "ours_ms": None,
            "kornia": "colour_augment (ColorJiggle + RandomGrayscale"
            + (", VideoSequential)" if n > 1 else ")"),
            "kornia_ms": 1e3
            * _time(lambda n=n, g=gen: colour_augment(frames, jitter, g, sequence_length=n), 3),
            "identical": None,
        }
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "settings": vars(args),
        "versions": {
            "torch": torch.__version__,
            "kornia": kornia.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "git_commit": commit,
            "load_avg_1min": os.getloadavg()[0],
        },
        "rows": rows,
    }


def to_markdown(out: dict[str, Any]) -> str:
    s, v = out["settings"], out["versions"]
    lines = [
        "# Kornia ops against the pseudo-label sampler's",
        "",
        f"Batch {s['batch']} masks of {s['size']}x{s['size']}, {s['threads']} thread(s), median "
        f"of {s['repeats']}; torch {v['torch']}, kornia {v['kornia']}, commit {v['git_commit']}, "
        f"load {v['load_avg_1min']:.1f}. Command: `python benchmarks/bench_kornia_ops.py "
        f"--batch {s['batch']} --size {s['size']} --threads {s['threads']}`.",
        "",
        "| op | ours | ms | kornia | ms | same result |",
        "|---|---|---:|---|---:|---|",
    ]
    for name, r in out["rows"].items():
        ours_ms = "-" if r["ours_ms"] is None else f"{r['ours_ms']:.2f}"
        same = "-" if r["identical"] is None else ("yes" if r["identical"] else "NO")
        # (the blur row compares to float tolerance 1e-4, the others exactly)
        lines.append(
            f"| {name} | {r['ours']} | {ours_ms} | {r['kornia']} | {r['kornia_ms']:.2f} | {same} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--cc-iterations", type=int, default=200)
    p.add_argument("--grid", type=int, default=40, help="colour-grid nodes per axis")
    p.add_argument("--grid-maps", type=int, default=16, help="grids blurred in one call")
    p.add_argument("--out", default=str(RESULTS / "kornia_ops"))
    args = p.parse_args()
    out = run(args)
    base = Path(args.out)
    write_results(base.parent, base.name, out, to_markdown(out).splitlines())
    print(to_markdown(out))


if __name__ == "__main__":
    main()
