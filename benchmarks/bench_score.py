"""`colocam score` as a whole command vs the straightforward per-threshold OpenCV loop.

For each CAM kind (``smooth``: 1-4 Gaussians + low-frequency clutter;
``noisy``: 2-6 Gaussians + clutter + mid-frequency texture + pixel noise, the
multi-blob, fragmented masks of real CAMs), writes seeded CAMs and 1-3 GT
boxes each to a score ``.npz``, then times

* the whole command ``colocam score CAMS.npz --json OUT`` in a subprocess,
  process start to JSON written (median of ``--repeats``), wall and CPU time;
* the straightforward loop, in process, on the same CAMs: for each CAM and
  each of the thresholds, ``cv2.threshold``, ``cv2.findContours(RETR_TREE)``,
  the largest-area box and all boxes, IoU with the GT boxes (one
  findContours call serves both modes), as EVALUATION.md defines it; timed in
  ``--repeats`` slices, each right after a command run, so that on a shared
  machine both see the same load;

checks that the command's scores equal the loop's, number for number, and
writes ``results/score.json`` and ``score.md``.

    python benchmarks/bench_score.py                  # the recorded 1000 CAMs x 1000 thresholds
    python benchmarks/bench_score.py --ref-n 100      # loop timed on 100 CAMs, scaled up
    python benchmarks/bench_score.py --quick --out /tmp/b   # CI-sized smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import RESULTS, env_line, environment, write_results

from colocam_plugin.metrics import BoxAccumulator, cams_to_uint8, default_thresholds

DELTAS = (30, 50, 70)
KINDS = ("smooth", "noisy")


def make_data(
    n: int, kind: str = "smooth", size: int = 224, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Seeded CAMs float32 (n, size, size) in [0, 1], labels (n,), GT boxes (k_i, 4) per CAM."""
    rng = np.random.default_rng(seed + (0 if kind == "smooth" else 1000))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cams, boxes = [], []
    labels = rng.integers(0, 10, n)
    for _ in range(n):
        cam = np.zeros((size, size), np.float32)
        frame_boxes: list[list[int]] = []
        blobs = int(rng.integers(2, 7) if kind == "noisy" else rng.integers(1, 5))
        for _ in range(blobs):
            cx, cy = rng.uniform(0, size, 2)
            sx, sy = rng.uniform(0.04, 0.25, 2) * size
            cam += rng.uniform(0.3, 1.0) * np.exp(
                -0.5 * (((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2)
            )
            if len(frame_boxes) < 3:
                x0, y0 = max(0, int(cx - 1.5 * sx)), max(0, int(cy - 1.5 * sy))
                x1, y1 = min(size - 1, int(cx + 1.5 * sx)), min(size - 1, int(cy + 1.5 * sy))
                frame_boxes.append([x0, y0, x1, y1])
        g = int(rng.choice([7, 14, 28]))
        clutter = cv2.resize(rng.random((g, g)).astype(np.float32), (size, size))
        cam += rng.uniform(0, 0.15) * clutter
        if kind == "noisy":  # texture of a stride-4/8 feature map, plus pixel noise
            peak = float(cam.max())
            m = int(rng.choice([28, 56]))
            texture = cv2.resize(rng.random((m, m)).astype(np.float32), (size, size))
            cam += peak * rng.uniform(0.03, 0.12) * texture
            cam += peak * rng.uniform(0.005, 0.03) * rng.random((size, size), dtype=np.float32)
        cam -= cam.min()
        cams.append(cam / cam.max())
        boxes.append(np.array(frame_boxes, dtype=np.int64))
    return np.stack(cams).astype(np.float32), labels, boxes


# -- the straightforward loop --------------------------------------------------------------
def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a[:, None, :], b[None, :, :]
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    den = area_a + area_b - inter
    return np.where(den > 0, inter / np.where(den > 0, den, 1), 0.0)


def reference_counts(cams, labels, boxes, thresholds) -> dict[int, np.ndarray]:
    """{label: int64 (3, 3, T)} single / multi / top-1 (unused) counts, the plain way."""
    counts: dict[int, np.ndarray] = {}
    fracs = [d / 100 for d in DELTAS]
    for cam, label, gt in zip(cams, labels, boxes):
        u8 = cams_to_uint8(cam)  # same normalisation as wsolevaluation
        height, width = u8.shape
        c = counts.setdefault(int(label), np.zeros((3, 3, len(thresholds)), np.int64))
        for t, thr in enumerate(thresholds):
            _, binary = cv2.threshold(u8, int(thr * np.max(u8)), 255, cv2.THRESH_BINARY)
            contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
            if len(contours) == 0:
                single = multi = np.array([[0, 0, 0, 0]])
            else:
                rects = [cv2.boundingRect(k) for k in contours]
                multi = np.array(
                    [[x, y, min(x + w, width - 1), min(y + h, height - 1)] for x, y, w, h in rects]
                )
                best = max(range(len(contours)), key=lambda i: cv2.contourArea(contours[i]))
                single = multi[best : best + 1]
            s, m = _iou(single, gt).max(), _iou(multi, gt).max()
            for d, f in enumerate(fracs):
                c[0, d, t] += s >= f
                c[1, d, t] += m >= f
    return counts


def scores_from_counts(counts: dict[int, np.ndarray], labels, thresholds) -> dict[str, Any]:
    """The score dict ``colocam score`` reports, computed from the loop's counts."""
    acc = BoxAccumulator(thresholds=thresholds, deltas=DELTAS)
    for c, v in counts.items():
        acc._correct[c] = v  # the loop counted exactly what update() counts
        acc._frames[c] = int(np.sum(np.asarray(labels) == c))
    return acc.compute()


def _save_npz(path: Path, cams, labels, boxes) -> None:
    rows = [[i, *b] for i, frame in enumerate(boxes) for b in frame.tolist()]
    np.savez(path, cams=cams, labels=labels, boxes=np.array(rows, dtype=np.float64))


def _command() -> list[str]:
    exe = Path(sys.executable).parent / "colocam"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "colocam_plugin"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_command(npz: Path, out: Path, thresholds: int) -> tuple[float, float]:
    """Wall and CPU time (user + system) of one ``colocam score`` run."""
    t0, c0 = time.perf_counter(), _children_cpu()
    subprocess.run(
        [*_command(), "score", str(npz), "--json", str(out), "--thresholds", str(thresholds)],
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    return time.perf_counter() - t0, _children_cpu() - c0


def run_kind(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cams, labels, boxes = make_data(args.n, kind, args.size)
    thr = default_thresholds(args.thresholds)
    npz, out = tmp / f"{kind}.npz", tmp / f"{kind}.json"
    _save_npz(npz, cams, labels, boxes)

    # command runs and slices of the loop take turns, so both see the same machine load
    ref_n = args.n if args.ref_n is None else min(args.ref_n, args.n)
    walls, cpus = [], []
    ref: dict[int, np.ndarray] = {}
    t_loop = c_loop = 0.0
    for part in np.array_split(np.arange(ref_n), args.repeats):
        wall, cpu = _run_command(npz, out, args.thresholds)
        walls.append(wall)
        cpus.append(cpu)
        t0, c0 = time.perf_counter(), time.process_time()
        counts = reference_counts(cams[part], labels[part], [boxes[i] for i in part], thr)
        t_loop, c_loop = t_loop + time.perf_counter() - t0, c_loop + time.process_time() - c0
        for c, v in counts.items():
            ref[c] = ref[c] + v if c in ref else v
    t_cmd, cpu_cmd = statistics.median(walls), statistics.median(cpus)
    got = json.loads(out.read_text())
    if ref_n == args.n:  # the command's JSON against the loop's scores
        want = scores_from_counts(ref, labels, thr)
        keys = ("corloc", "corloc_pooled", "maxboxacc", "maxboxacc_v2", "gt_known_loc")
        same = (
            all(got[k] == want[k] for k in keys)
            and {int(k): v for k, v in got["per_class"].items()} == want["per_class"]
        )
        checked = "command JSON == loop scores, all CAMs"
    else:  # counts of the library path against the loop's, on the loop's CAMs
        acc = BoxAccumulator(thresholds=thr, deltas=DELTAS)
        acc.update(cams[:ref_n], labels[:ref_n], boxes[:ref_n])
        mine = acc.counts()["correct"]
        same = mine.keys() == ref.keys() and all(
            np.array_equal(mine[c][:2], ref[c][:2]) for c in ref
        )
        checked = f"library counts == loop counts on {ref_n} CAMs"
    loop_total = t_loop * args.n / ref_n
    return {
        "kind": kind,
        "cams": args.n,
        "size": args.size,
        "thresholds": len(thr),
        "command_wall_s": t_cmd,
        "command_runs_wall_s": walls,
        "command_ms_per_cam": 1e3 * t_cmd / args.n,
        "loop_cams_timed": ref_n,
        "loop_wall_s": loop_total,
        "loop_cpu_s": c_loop * args.n / ref_n,
        "loop_ms_per_cam": 1e3 * t_loop / ref_n,
        "loop_extrapolated": ref_n != args.n,
        "speedup_whole_command": loop_total / t_cmd,
        "command_cpu_s": cpu_cmd,
        "speedup_whole_command_cpu": c_loop * args.n / ref_n / cpu_cmd,
        "identical": bool(same),
        "identity_check": checked,
        "scores": {k: got[k] for k in ("corloc", "maxboxacc", "maxboxacc_v2")},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=None, help="CAMs per kind (default 1000)")
    ap.add_argument("--size", type=int, default=224, help="CAM side (default 224)")
    ap.add_argument("--thresholds", type=int, default=None, help="(default 1000)")
    ap.add_argument("--ref-n", type=int, default=None, help="CAMs for the loop (default all)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs of the command (median), each followed by its share of the loop",
    )
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument(
        "--quick", action="store_true", help="CI size: 16 CAMs, 100 thresholds (unless given)"
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    args.n = args.n or (16 if args.quick else 1000)
    args.thresholds = args.thresholds or (100 if args.quick else 1000)
    cv2.setNumThreads(1)  # one core each: a fair single-process comparison

    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_kind(kind, args, Path(tmp)) for kind in args.kinds]
    env = environment("cpu")
    command = "python benchmarks/bench_score.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {
        "benchmark": "colocam score, whole command, vs the straightforward OpenCV loop",
        "rows": rows,
        "env": env,
        "command": command.strip(),
    }
    md = [
        "# `colocam score` (whole command) vs the straightforward loop",
        "",
        f"{args.n} CAMs {args.size}x{args.size} per kind, {args.thresholds} thresholds, single +"
        " multi box, deltas 30/50/70. Command: subprocess wall time from process start to JSON"
        f" written (start-up and npz loading included), median of {args.repeats} runs. Loop: in"
        " process, one `findContours(RETR_TREE)` per CAM and threshold (its own start-up not"
        f" counted), timed in {args.repeats} slices, each right after a command run."
        " Speed-up: wall time; CPU: user + system time of each, steadier than wall time on"
        " a shared machine.",
        env_line(env),
        "",
        "| CAMs | command s | loop s | speed-up | speed-up CPU | ms / CAM command"
        " | ms / CAM loop | identical |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        loop = f"{r['loop_wall_s']:.1f}" + (
            f" (from {r['loop_cams_timed']})" if r["loop_extrapolated"] else ""
        )
        md.append(
            f"| {r['kind']} | {r['command_wall_s']:.2f} | {loop} | "
            f"{r['speedup_whole_command']:.1f}x | {r['speedup_whole_command_cpu']:.1f}x | "
            f"{r['command_ms_per_cam']:.2f} | "
            f"{r['loop_ms_per_cam']:.1f} | {'yes' if r['identical'] else 'NO'} "
            f"({r['identity_check']}) |"
        )
    md += ["", f"Command: `{result['command']}`."]
    write_results(args.out, "score", result, md)
    print("\n".join(md))
    if not all(r["identical"] for r in rows):
        print("MISMATCH between `colocam score` and the reference loop", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
