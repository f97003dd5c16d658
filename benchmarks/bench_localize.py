"""``colocam localize`` as a user runs it: frames/s (localizer vs LayerCAM) and peak memory.

Two measurements, each of whole ``python -m colocam_plugin localize`` processes:

1. **Speed** (issue 15, bar: localizer >= 1.5x LayerCAM): the same video
   (``--frames`` frames, ``--width`` x ``--height``, a moving object written
   with PyAV), the same classifier, the same machine, one run: ``--localizer``
   vs ``--method layercam``. frames/s is the command's own figure (frames /
   wall time after loading the checkpoints: decoding, resizing, model, boxes,
   writing); the process wall time (interpreter start, imports, loading
   included) is reported beside it. One warm-up run of each first, then
   ``--repeats`` runs; the median.
2. **Memory** (issue 14, bar: peak RSS on 2,000 frames <= 1.2x that on 200):
   peak resident set size (``os.wait4``'s ``ru_maxrss`` of the child) of
   localize with ``--localizer --temporal --overlay`` on a ``--rss-short``
   (200) and a ``--rss-long`` (2,000) frame video of the same size.

Without ``--classifier``/``--localizer``, untrained checkpoints of
``--encoder`` at ``--image-size`` are written to a temporary folder (speed
and memory do not depend on the weights). Writes ``benchmarks/results/
localize.json`` and ``localize.md``.

    python benchmarks/bench_localize.py                      # resnet50, 224 px (the paper's)
    python benchmarks/bench_localize.py --quick              # CI-sized
    python benchmarks/bench_localize.py --encoder resnet18 --image-size 128 --frames 64
    python benchmarks/bench_localize.py --classifier clf.pt --localizer colocam.pt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]
SPEED_BAR = 1.5
RSS_BAR = 1.2


def git_commit() -> str:
    """Short commit of the checkout, ``+dirty`` when tracked files changed."""

    def git(*a: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *a], capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def write_video(path: Path, frames: int, width: int, height: int, fps: float = 25.0) -> Path:
    """A textured background with a red square moving on a circle (PyAV, H.264 when present)."""
    from colocam_plugin.data.videos import VideoWriter

    rng = np.random.default_rng(0)
    background = rng.integers(60, 140, size=(height, width, 3), dtype=np.uint8)
    side = min(width, height) // 4
    with VideoWriter(path, fps) as w:
        for i in range(frames):
            img = background.copy()
            a = 2 * np.pi * i / 100
            x = int((width - side) / 2 * (1 + 0.8 * np.cos(a)))
            y = int((height - side) / 2 * (1 + 0.8 * np.sin(a)))
            img[y : y + side, x : x + side] = (220, 40, 40)
            w.write(img)
    return path


def untrained_checkpoints(
    folder: Path, encoder: str, image_size: int, classes: list[str]
) -> tuple[Path, Path]:
    """A classifier and a CoLo-CAM localizer checkpoint with random weights."""
    import torch

    from colocam_plugin.models.classifier import WGAPClassifier
    from colocam_plugin.train.checkpoint import save_checkpoint
    from colocam_plugin.train.stage2 import build_localizer

    torch.manual_seed(0)
    model = WGAPClassifier(encoder, len(classes))
    config = {**model.config, "image_size": image_size, "resize": round(image_size * 8 / 7)}
    clf, loc = folder / "clf.pt", folder / "colocam.pt"
    save_checkpoint(
        clf,
        {
            "kind": "classifier",
            "config": config,
            "classes": classes,
            "state_dict": model.state_dict(),
        },
    )
    save_checkpoint(
        loc,
        {
            "kind": "localizer",
            "config": {"head": "unet", "method": "colocam", "image_size": image_size},
            "classifier_config": config,
            "classes": classes,
            "state_dict": build_localizer(model, "unet").state_dict(),
        },
    )
    return clf, loc


def run_localize(argv: list[str], threads: int | None) -> dict[str, Any]:
    """One ``python -m colocam_plugin localize ARGV`` process.

    Returns ``{"wall_s", "frames_per_s" (the command's own figure), "peak_rss_mib"}``;
    the peak RSS is ``os.wait4``'s ``ru_maxrss`` of that child alone.
    """
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "colocam_plugin", "localize", *argv, "--no-progress"]
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{text[-2000:]}")
    m = re.search(r"\(([\d.]+) frames/s", text)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {
        "wall_s": wall,
        "frames_per_s": float(m.group(1)) if m else float("nan"),
        "peak_rss_mib": usage.ru_maxrss * scale / 2**20,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from colocam_plugin.train.checkpoint import versions

    work = Path(tempfile.mkdtemp(prefix="bench_localize-"))
    if args.classifier and args.localizer:
        clf, loc = Path(args.classifier), Path(args.localizer)
        source = "given"
    else:
        clf, loc = untrained_checkpoints(work, args.encoder, args.image_size, ["cat", "dog"])
        source = f"untrained {args.encoder} (random weights)"
    size = ["--image-size", str(args.image_size)] if args.image_size else []
    dev = ["--device", args.device, "--batch-size", str(args.batch_size)]

    # 1. speed
    video = write_video(work / "speed.mp4", args.frames, args.width, args.height)
    common = [str(video), "--classifier", str(clf), *size, *dev]
    speed: dict[str, Any] = {}
    for label, which in (
        ("localizer", ["--localizer", str(loc)]),
        ("layercam", ["--method", "layercam"]),
    ):
        argv = [*common, *which, "--out", str(work / f"out-{label}")]
        run_localize(argv, args.threads)  # warm-up (file cache, lazy inits)
        runs = [run_localize(argv, args.threads) for _ in range(args.repeats)]
        speed[label] = {
            "frames_per_s": statistics.median(r["frames_per_s"] for r in runs),
            "process_wall_s": statistics.median(r["wall_s"] for r in runs),
            "runs": runs,
        }
        print(f"{label:10s} {speed[label]['frames_per_s']:8.2f} frames/s")
    ratio = speed["localizer"]["frames_per_s"] / speed["layercam"]["frames_per_s"]

    # 2. memory flat in video length
    rss: dict[str, Any] = {}
    rss_size = ["--image-size", str(args.rss_image_size)]
    for n in (args.rss_short, args.rss_long):
        v = write_video(work / f"rss{n}.mp4", n, args.width, args.height)
        argv = [
            str(v),
            "--classifier",
            str(clf),
            "--localizer",
            str(loc),
            *rss_size,
            *dev,
            "--temporal",
            "--overlay",
            "--out",
            str(work / f"rss{n}"),
        ]
        rss[str(n)] = run_localize(argv, args.threads)
        print(f"{n:5d} frames: peak RSS {rss[str(n)]['peak_rss_mib']:.0f} MiB")
    short, long = rss[str(args.rss_short)], rss[str(args.rss_long)]
    rss_ratio = long["peak_rss_mib"] / short["peak_rss_mib"]

    cuda = torch.cuda.is_available()
    device = args.device if args.device != "auto" else ("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.machine()
    return {
        "benchmark": "localize",
        "checkpoints": source,
        "encoder": args.encoder if source != "given" else None,
        "image_size": args.image_size,
        "video": {"frames": args.frames, "width": args.width, "height": args.height, "fps": 25},
        "device": device,
        "device_name": name,
        "threads": args.threads or torch.get_num_threads(),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "speed": speed,
        "speedup_localizer_over_layercam": ratio,
        "speed_bar": SPEED_BAR,
        "speed_bar_met": ratio >= SPEED_BAR,
        "rss": rss,
        "rss_image_size": args.rss_image_size,
        "rss_frames": [args.rss_short, args.rss_long],
        "rss_ratio_long_over_short": rss_ratio,
        "rss_bar": RSS_BAR,
        "rss_bar_met": rss_ratio <= RSS_BAR,
        "git_commit": git_commit(),
        "versions": versions(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "command": "python benchmarks/bench_localize.py " + " ".join(sys.argv[1:]),
    }


def markdown(r: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    sp, rs = r["speed"], r["rss"]
    short, long = (str(n) for n in r["rss_frames"])
    v = r["video"]
    lines = [
        "# `colocam localize`: speed and memory",
        "",
        f"Whole `python -m colocam_plugin localize` processes, one run on one machine: "
        f"{r['device']} ({r['device_name']}), {r['threads']} threads, batch {r['batch_size']}, "
        f"{r['cpus']} CPUs, load average {r['load_average']}; checkpoints: {r['checkpoints']}, "
        f"input {r['image_size']} px; commit `{r['git_commit']}`; torch "
        f"{r['versions']['torch']}, Python {r['versions']['python']}.",
        "",
        f"## Speed: {v['frames']}-frame {v['width']}x{v['height']} video (bar: localizer "
        f">= {r['speed_bar']}x LayerCAM)",
        "",
        f"| method | frames/s (median of {r['repeats']}) | process wall s |",
        "|---|---:|---:|",
    ]
    for name in ("localizer", "layercam"):
        lines.append(
            f"| {name} | {sp[name]['frames_per_s']:.2f} | {sp[name]['process_wall_s']:.1f} |"
        )
    lines += [
        "",
        f"Localizer / LayerCAM: **{r['speedup_localizer_over_layercam']:.2f}x** "
        f"({'met' if r['speed_bar_met'] else 'NOT met'}). frames/s is the command's own figure: "
        "frames / wall time from the first frame decoded to the last row written (decoding, "
        "resizing, model, boxes, CSV/JSON), after loading the checkpoints; the process wall "
        "time adds interpreter start, imports and loading.",
        "",
        f"## Peak memory vs video length (bar: {long} frames <= {r['rss_bar']}x {short} frames)",
        "",
        f"`--localizer --temporal --overlay`, input {r['rss_image_size']} px, same video size; "
        "peak RSS of the whole process (`os.wait4` `ru_maxrss`).",
        "",
        "| frames | peak RSS MiB | wall s |",
        "|---:|---:|---:|",
        *(f"| {n} | {rs[n]['peak_rss_mib']:.0f} | {rs[n]['wall_s']:.1f} |" for n in (short, long)),
        "",
        f"Ratio: **{r['rss_ratio_long_over_short']:.3f}x** "
        f"({'met' if r['rss_bar_met'] else 'NOT met'}).",
        "",
        f"Command: `{r['command']}`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--classifier", help="stage-1 checkpoint (default: untrained --encoder)")
    ap.add_argument("--localizer", help="stage-2 checkpoint (default: untrained --encoder)")
    ap.add_argument("--encoder", default="resnet50", help="encoder of the untrained checkpoints")
    ap.add_argument("--image-size", type=int, default=224, help="network input side")
    ap.add_argument("--rss-image-size", type=int, default=64, help="input side of the RSS runs")
    ap.add_argument("--frames", type=int, default=96, help="frames of the speed video")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the children")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per method")
    ap.add_argument("--rss-short", type=int, default=200, help="frames of the short RSS video")
    ap.add_argument("--rss-long", type=int, default=2000, help="frames of the long RSS video")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized: resnet18, 64 px, 16 frames, RSS on 50 vs 500 frames",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "localize", help="JSON/MD path stem")
    args = ap.parse_args(argv)
    if args.quick:
        args.encoder, args.image_size, args.frames = "resnet18", 64, 16
        args.rss_short, args.rss_long = 50, 500
    record = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(record, indent=2) + "\n")
    args.out.with_name(args.out.name + ".md").write_text(markdown(record))
    print(markdown(record))
    return 0 if record["speed_bar_met"] and record["rss_bar_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
