"""Cost curves of a stage-2 step: time and peak memory against n, batch and resolution.

Run from the repository root::

    .venv/bin/python benchmarks/bench_cost.py [--encoder resnet18] [--repeats 2]
        [--sizes 128 224] [--ns 1 2 4 8 16] [--sequences 2] [--quick]

Every configuration runs in a fresh subprocess (``--child``) that builds the
step of ``bench_step.py`` (SynthYTO frames, frozen classifier, U-Net head,
PL + CRF + ASC + CoLo, SGD), takes its resident memory as the baseline, then
runs one warm-up and ``--repeats`` timed steps. Peak memory is the process's
``ru_maxrss`` after the steps minus that baseline: what the step itself adds
(activations, gradients, the loss terms' grids), not the model or the data set.

Curves:

* **n**: ``--sequences`` sequences of n = 1, 2, 4, 8, 16 frames per step
  (batch = sequences x n), at each resolution; the fitted exponent ``a`` of
  ``memory ~ n^a`` (least squares in log-log). Memory grows with the frames
  in the step; anything beyond linear (e.g. a co-localisation term that paired
  every pixel of the sequence with every other) shows as ``a > 1``.
* **batch**: n = 4 with 1, 2, 4 sequences per step, at each resolution;
* **resolution**: 128 and 224 px (both curves above). The issue asked for
  112; the classifier needs sides divisible by 32 (the U-Net's five
  halvings), so 128 is the nearest size it takes.

Writes benchmarks/results/cost.json, cost.md and cost.png (``--out``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, env_line, environment, write_results

#: issue 15's bar on the fitted exponent of peak memory in n
MEMORY_EXPONENT_BAR = 1.1


def _rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc), bytes."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def child(config: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in this process and return its figures."""
    import torch
    from bench_step import PARTS, StepSetting, build_step

    if config["threads"] > 0:
        torch.set_num_threads(config["threads"])
    setting = StepSetting(
        name="cost",
        encoder=config["encoder"],
        image_size=config["size"],
        batch_frames=config["sequences"] * config["n"],
        n_frames=config["n"],
        crf_step=config["crf_step"],
        output_strides=(32,),
        bar="none",
    )
    step = build_step(setting, 32, config["amp"], Path(config["work"]))
    gc.collect()
    baseline = _rss_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rows = [step(i) for i in range(config["repeats"] + 1)][1:]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        **config,
        "batch": setting.batch_frames,
        "step_s": statistics.median(sum(r.values()) for r in rows),
        "parts_s": {p: statistics.median(r[p] for r in rows) for p in PARTS},
        "peak_mb": (peak - baseline) / 2**20,
        "baseline_mb": baseline / 2**20,
        # ru_maxrss is a high-water mark: if building peaked above the steps, say so
        "peak_from_steps": peak > before,
    }


def run_child(config: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter (its own peak memory)."""
    script = Path(__file__).resolve()
    out = subprocess.run(
        [sys.executable, str(script), "--child", json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=script.parent.parent,
    )
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"child failed ({out.returncode}): {out.stderr[-2000:]}")


def fit_exponent(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def plot(rows: list[dict[str, Any]], sizes: list[int], path: Path) -> bool:
    """Step time and peak memory against n (log-log), one line per resolution."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for size in sizes:
        pts = sorted((r["n"], r) for r in rows if r["curve"] == "n" and r["size"] == size)
        ns = [n for n, _ in pts]
        axes[0].plot(ns, [r["step_s"] for _, r in pts], "o-", label=f"{size} px")
        axes[1].plot(ns, [r["peak_mb"] for _, r in pts], "o-", label=f"{size} px")
    for ax, label in zip(axes, ("step time (s)", "peak memory over baseline (MB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (frames per sequence; batch = sequences x n)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="resnet18", help="classifier encoder (random weights)")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    p.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--sequences", type=int, default=2, help="sequences per step, n curve")
    p.add_argument("--batch-sequences", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeats", type=int, default=2, help="timed steps after one warm-up")
    p.add_argument("--amp", default="auto", help="Stage2Config.amp")
    p.add_argument("--crf-step", default="none", help="CRF colour step ('none': accurate)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--work", type=Path, default=Path("runs/bench_step"))
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--quick", action="store_true", help="128 px, n = 1, 2, 4, 1 timed step")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return
    if args.quick:
        args.sizes, args.ns, args.repeats, args.batch_sequences = [128], [1, 2, 4], 1, [1, 2]
    base = {
        "encoder": args.encoder,
        "repeats": args.repeats,
        "amp": args.amp,
        "crf_step": None if args.crf_step.lower() == "none" else float(args.crf_step),
        "threads": args.threads,
        "work": str(args.work),
    }
    configs = [
        {**base, "curve": "n", "size": s, "n": n, "sequences": args.sequences}
        for s in args.sizes
        for n in args.ns
    ] + [
        {**base, "curve": "batch", "size": s, "n": 4, "sequences": q}
        for s in args.sizes
        for q in args.batch_sequences
        if not (q == args.sequences and 4 in args.ns)  # already on the n curve
    ]
    import torch  # only for the environment record (children do the work)

    load_start = os.getloadavg()
    start = time.perf_counter()
    rows = []
    for config in configs:
        row = run_child(config)
        rows.append(row)
        print(
            f"{row['curve']:>5} {row['size']} px n={row['n']} batch={row['batch']}: "
            f"{row['step_s']:.2f} s, {row['peak_mb']:.0f} MB",
            flush=True,
        )
    exponents = {}
    for s in args.sizes:
        pts = [(r["n"], r["peak_mb"]) for r in rows if r["curve"] == "n" and r["size"] == s]
        exponents[str(s)] = {
            "memory": fit_exponent([n for n, _ in pts], [m for _, m in pts]),
            "time": fit_exponent(
                [r["n"] for r in rows if r["curve"] == "n" and r["size"] == s],
                [r["step_s"] for r in rows if r["curve"] == "n" and r["size"] == s],
            ),
        }
    worst = max(e["memory"] for e in exponents.values())
    report = {
        "command": " ".join(["python benchmarks/bench_cost.py", *sys.argv[1:]]),
        "environment": environment("cpu"),
        "torch_threads": torch.get_num_threads() if args.threads <= 0 else args.threads,
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "wall_s": time.perf_counter() - start,
        "settings": {k: v for k, v in base.items() if k != "work"} | {"sequences": args.sequences},
        "rows": rows,
        "exponents_in_n": exponents,
        "memory_exponent_bar": MEMORY_EXPONENT_BAR,
        "meets_bar": worst <= MEMORY_EXPONENT_BAR,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    has_plot = plot(rows, args.sizes, args.out / "cost.png")
    lines = [
        "# Stage-2 step cost against n, batch and resolution",
        "",
        f"Command: `{report['command']}`. {env_line(report['environment'])} 1-min load "
        f"average {load_start[0]:.2f} at start, {report['load_average_at_end'][0]:.2f} at end; "
        f"{report['wall_s'] / 60:.1f} min in all.",
        "",
        f"Setting: {args.encoder} encoder (random weights, output stride 32) + U-Net head, "
        f"CoLo-CAM (PL + CRF + ASC + CoLo), amp {args.amp}, CRF step {args.crf_step}, "
        f"SGD; CPU. Step time: median of {args.repeats} steps after a warm-up. Peak memory: "
        "`ru_maxrss` after the steps minus the resident memory after building (model, data "
        "set, losses), each configuration in a fresh process.",
        "",
        "## Against n",
        "",
        f"{args.sequences} sequence(s) of n frames per step (batch = {args.sequences} x n).",
        "",
        "| size | n | batch | step s | s / frame | crf s | coloc s | peak MB | MB / frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r["curve"] == "n"):
        lines.append(
            f"| {r['size']} | {r['n']} | {r['batch']} | {r['step_s']:.2f} | "
            f"{r['step_s'] / r['batch']:.3f} | {r['parts_s']['crf']:.2f} | "
            f"{r['parts_s']['coloc']:.2f} | {r['peak_mb']:.0f} | "
            f"{r['peak_mb'] / r['batch']:.1f} |"
        )
    lines += [
        "",
        "Fitted exponents (least squares on log-log, n = "
        + ", ".join(map(str, args.ns))
        + f"); the bar: memory exponent <= {MEMORY_EXPONENT_BAR}.",
        "",
        "| size | memory exponent in n | time exponent in n | bar |",
        "|---|---|---|---|",
    ]
    for s, e in exponents.items():
        verdict = "met" if e["memory"] <= MEMORY_EXPONENT_BAR else "not met"
        lines.append(f"| {s} | {e['memory']:.2f} | {e['time']:.2f} | {verdict} |")
    lines += [
        "",
        "## Against batch (n = 4)",
        "",
        "| size | sequences | batch | step s | s / frame | peak MB | MB / frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted((r for r in rows if r["n"] == 4), key=lambda r: (r["size"], r["sequences"])):
        lines.append(
            f"| {r['size']} | {r['sequences']} | {r['batch']} | {r['step_s']:.2f} | "
            f"{r['step_s'] / r['batch']:.3f} | {r['peak_mb']:.0f} | "
            f"{r['peak_mb'] / r['batch']:.1f} |"
        )
    if any(not r["peak_from_steps"] for r in rows):
        lines += ["", "Rows where building peaked above the steps understate the peak."]
    if has_plot:
        lines += ["", "![step time and peak memory against n](cost.png)"]
    write_results(args.out, "cost", report, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
