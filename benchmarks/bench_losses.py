"""Benchmark CoLo-CAM's grid energies: speed, memory and error vs the exact dense kernel.

Run from the repository root::

    .venv/bin/python benchmarks/bench_losses.py [--repeats 15] [--quick] [--threads N] [--out DIR]

On a shared machine where another process keeps a core busy, torch's 2-thread
OpenMP kernels can stall for a scheduler slice (~200 ms per call); ``--threads 1``
measures the code, not the contention. The file records threads and load.

Writes benchmarks/results/losses.json and benchmarks/results/losses.md.
Frames are real photos from scikit-image (chelsea, astronaut, coffee, rocket),
resized; probabilities are smooth random maps (blurred logits, softmax, K=2).
Timings: forward + backward (energy.sum().backward()), warm-up then the median
of ``--repeats`` runs. Memory: ``torch.cuda.max_memory_allocated`` on CUDA; on
CPU the torch profiler's total of CPU bytes allocated during one call (an upper
bound on the peak).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import kornia
import torch
import torch.nn.functional as F
from _common import RESULTS, env_line, environment, write_results
from skimage import data

from colocam_plugin.losses import coloc_energy, crf_energy, dense_coloc_energy, dense_crf_energy

PHOTOS = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket()]


def frames(n: int, size: int, dtype: torch.dtype, device: str, crop: bool = False) -> torch.Tensor:
    """(n, 3, size, size) real-photo frames in 0..255 (resized, or centre-ish crops)."""
    out = []
    for i in range(n):
        img = torch.from_numpy(PHOTOS[i % len(PHOTOS)].copy()).permute(2, 0, 1).double()
        if crop:
            y0, x0 = 100 + 30 * i, 150 + 20 * i
            out.append(img[:, y0 : y0 + size, x0 : x0 + size])
        else:
            out.append(F.interpolate(img[None], size=(size, size), mode="bilinear")[0])
    return torch.stack(out).to(device=device, dtype=dtype)


def smooth_logits(shape: tuple[int, ...], dtype: torch.dtype, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64)
    flat = kornia.filters.gaussian_blur2d(logits.reshape(-1, *shape[-3:]), (15, 15), (4.0, 4.0))
    flat = flat / flat.std() * 2
    return flat.reshape(shape).to(device=device, dtype=dtype)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], None], repeats: int, device: str) -> float:
    fn()
    sync(device)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1e3


def memory_mb(fn: Callable[[], None], device: str) -> float:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        fn()
        return torch.cuda.max_memory_allocated() / 2**20
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        fn()
    total = sum(max(0, e.self_cpu_memory_usage) for e in prof.key_averages())
    return total / 2**20


def energy_step(
    kind: str, n: int, size: int, device: str, dense: bool = False
) -> Callable[[], None]:
    """forward + backward of one call: coloc on 1 sequence of n frames, crf on n frames."""
    dtype = torch.float32
    images = frames(n, size, dtype, device)
    if kind == "coloc":
        logits = smooth_logits((1, n, 2, size, size), dtype, device).requires_grad_()
        energy = dense_coloc_energy if dense else coloc_energy

        def run() -> None:
            energy(logits.softmax(2), images[None]).sum().backward()

    else:
        logits = smooth_logits((n, 2, size, size), dtype, device).requires_grad_()
        energy = dense_crf_energy if dense else crf_energy

        def run() -> None:
            energy(logits.softmax(1), images).sum().backward()

    return run


def crf_per_frame(
    size: int, ns: tuple[int, ...], repeats: int, device: str, step: float | None
) -> list[dict]:
    """CRF forward+backward ms per frame against the batch's n (the cliff check).

    n frames cycle through the photos; n = 1 is the mean over each photo alone,
    so every n sees the same mix of colour ranges.
    """
    rows = []
    for n in ns:
        batches = [[i] for i in range(len(PHOTOS))] if n == 1 else [list(range(n))]
        total = 0.0
        for idx in batches:
            images = frames(max(idx) + 1, size, torch.float32, device)[idx]
            logits = smooth_logits((len(idx), 2, size, size), torch.float32, device)
            logits.requires_grad_()

            def run(images: torch.Tensor = images, logits: torch.Tensor = logits) -> None:
                crf_energy(logits.softmax(1), images, step=step).sum().backward()

            total += time_call(run, repeats, device) / len(idx)
        rows.append({"size": size, "n": n, "step": step, "ms_per_frame": total / len(batches)})
    return rows


def accuracy(kind: str, size: int, sigma_xy: float = 100.0) -> dict[str, float]:
    """float64 relative error and gradient cosine vs the exact dense energy, 2 photo crops."""
    images = frames(2, size, torch.float64, "cpu", crop=True)
    if kind == "coloc":
        probs = smooth_logits((1, 2, 2, size, size), torch.float64, "cpu").softmax(2)
        args: tuple = (images[None],)
        grid, dense, kw = coloc_energy, dense_coloc_energy, {}
    else:
        probs = smooth_logits((2, 2, size, size), torch.float64, "cpu").softmax(1)
        args = (images,)
        grid, dense, kw = crf_energy, dense_crf_energy, {"sigma_xy": sigma_xy}
    probs.requires_grad_()
    exact = dense(probs, *args, **kw)
    (g_exact,) = torch.autograd.grad(exact.sum(), probs)
    approx = grid(probs, *args, **kw)
    (g_approx,) = torch.autograd.grad(approx.sum(), probs)
    cos = F.cosine_similarity(g_exact.flatten(), g_approx.flatten(), 0)
    return {
        "max_rel_error": float((approx / exact - 1).abs().max()),
        "grad_cosine": float(cos),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="fewer sizes (smoke run)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: torch's default); 1 is robust on a shared, loaded machine",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    load_at_start = os.getloadavg()
    ns, sizes = ((1, 4), (64, 224)) if args.quick else ((1, 2, 4, 8), (64, 128, 224))
    rows: list[dict] = []
    for kind in ("coloc", "crf"):
        cases = {(n, 224) for n in ns} | {(4, s) for s in sizes}
        for n, size in sorted(cases):
            repeats = args.repeats if kind == "coloc" else max(3, args.repeats // 5)
            run = energy_step(kind, n, size, device)
            rows.append(
                {
                    "energy": kind,
                    "method": "grid",
                    "n": n,
                    "size": size,
                    "ms": time_call(run, repeats, device),
                    "memory_mb": memory_mb(run, device),
                }
            )
        for n, size in ((2, 32), (2, 48)):
            run = energy_step(kind, n, size, device, dense=True)
            rows.append(
                {
                    "energy": kind,
                    "method": "exact dense (chunked)",
                    "n": n,
                    "size": size,
                    "ms": time_call(run, 3, device),
                    "memory_mb": memory_mb(run, device),
                }
            )
            run = energy_step(kind, n, size, device)
            rows.append(
                {
                    "energy": kind,
                    "method": "grid",
                    "n": n,
                    "size": size,
                    "ms": time_call(run, args.repeats, device),
                    "memory_mb": memory_mb(run, device),
                }
            )
    per_frame = [
        row
        for size in ((128,) if args.quick else (128, 224))
        for step in (None, 0.5)
        for row in crf_per_frame(size, ns, max(3, args.repeats // 5), device, step)
    ]
    errors = []
    for size in (32, 48, 64):
        errors.append({"energy": "coloc", "size": size, "frames": 2, **accuracy("coloc", size)})
        for sigma_xy in (100.0, 10.0):
            errors.append(
                {
                    "energy": f"crf (sigma_xy={sigma_xy:g})",
                    "size": size,
                    "frames": 2,
                    **accuracy("crf", size, sigma_xy),
                }
            )
    bar = next(r for r in rows if r["energy"] == "coloc" and r["n"] == 4 and r["size"] == 224)
    report = {
        "command": "python benchmarks/bench_losses.py"
        + (" --quick" if args.quick else "")
        + (f" --repeats {args.repeats}" if args.repeats != 15 else "")
        + (f" --threads {args.threads}" if args.threads > 0 else ""),
        "environment": environment(device),
        "kornia": kornia.__version__,
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "timing": rows,
        "crf_ms_per_frame": per_frame,
        "accuracy_float64_vs_exact": errors,
        "speed_bar_coloc_n4_224_fwd_bwd_ms": bar["ms"],
    }
    lines = [
        "# Loss benchmarks",
        "",
        f"Command: `{report['command']}`. {env_line(report['environment'])} 1-min load "
        f"average {load_at_start[0]:.2f} at start, {report['load_average_at_end'][0]:.2f} at end.",
        "",
        "## Forward + backward time (float32, median) and memory",
        "",
        "coloc: one sequence of n frames; crf: a batch of n frames. Memory: "
        + ("CUDA peak allocated." if device == "cuda" else "CPU bytes allocated in one call."),
        "",
        "| energy | method | n | size | ms | memory MB |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['energy']} | {r['method']} | {r['n']} | {r['size']} | {r['ms']:.2f} "
        f"| {r['memory_mb']:.1f} |"
        for r in rows
    ]
    lines += [
        "",
        "## CRF cost per frame against the batch's n",
        "",
        "Forward + backward ms per frame; n frames cycle through the photos, n = 1 is the "
        "mean over each photo alone. step: colour-grid spacing (None: the accurate default; "
        "0.5: the CPU demo's). The bar: n = 4 within 1.5x of n = 1.",
        "",
        "| size | step | " + " | ".join(f"n={n}" for n in ns) + " | n=4 / n=1 |",
        "|---|---|" + "---|" * (len(ns) + 1),
    ]
    for size in sorted({r["size"] for r in per_frame}):
        for step in (None, 0.5):
            cells = {
                r["n"]: r["ms_per_frame"]
                for r in per_frame
                if r["size"] == size and r["step"] == step
            }
            ratio = cells[4] / cells[1]
            lines.append(
                f"| {size} | {step} | "
                + " | ".join(f"{cells[n]:.1f}" for n in ns)
                + f" | {ratio:.2f} |"
            )
    lines += [
        "",
        "## Error vs the exact dense energy (float64, 2 real-photo crops, smooth probs)",
        "",
        "| energy | size | max relative error | gradient cosine |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {e['energy']} | {e['size']} | {100 * e['max_rel_error']:.2f}% "
        f"| {e['grad_cosine']:.5f} |"
        for e in errors
    ]
    write_results(args.out, "losses", report, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
