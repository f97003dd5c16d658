"""Peak memory of ``colocam train`` against dataset size: it must follow the batch, not the data.

Stage 2 reads frames through a DataLoader (decoded on demand, a frame cache
the user sizes) instead of keeping every decoded frame. This runs the whole
command, one epoch, on the default SynthYTO and on the same design with 4x
the training videos, each in a fresh process, and records the peak RSS of
each (``ru_maxrss``), plus one run at twice the batch for comparison. The
classifier is an untrained ResNet-18 at 64 px (memory does not depend on
its weights), so the run is cheap.

    python benchmarks/bench_memory.py [--scale 4] [--image-size 64]

Writes ``benchmarks/results/memory.json`` and ``memory.md``. Bar (issue 13):
4x the videos <= 1.25x the peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import write_results

RESULTS = Path(__file__).resolve().parent / "results"

_MEASURE = (
    "import resource, subprocess, sys; "
    "rc = subprocess.run(sys.argv[1:]).returncode; "
    "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)"
)


def _classifier(path: Path, image_size: int, classes: list[str]) -> None:
    import torch

    from colocam_plugin.models.classifier import WGAPClassifier
    from colocam_plugin.train.checkpoint import save_checkpoint
    from colocam_plugin.train.config import Stage1Config

    torch.manual_seed(0)
    model = WGAPClassifier("resnet18", len(classes), weights=None)
    cfg = Stage1Config(image_size=image_size, resize=round(image_size * 8 / 7))
    config = {**model.config, "image_size": cfg.image_size, "resize": cfg.resize}
    save_checkpoint(
        path,
        {
            "kind": "classifier",
            "config": config,
            "classes": classes,
            "state_dict": model.state_dict(),
        },
    )


def _peak_rss_mib(argv: list[str]) -> float:
    """Peak RSS (MiB) of ``argv`` run in a fresh process (its own children's maximum)."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True, check=False
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("MAXRSS_KB")), None)
    if line is None or line.split()[2] != "0":
        raise SystemExit(f"run failed: {' '.join(argv)}\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return int(line.split()[1]) / 1024


def run(args: argparse.Namespace) -> dict[str, Any]:
    from colocam_plugin.api import create_dataset
    from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto

    work = Path(args.work)
    base = SynthYTOConfig()
    rows: list[dict[str, Any]] = []
    colocam = [sys.executable, "-m", "colocam_plugin"]
    for scale, batch in ((1, args.batch), (args.scale, args.batch), (1, 2 * args.batch)):
        videos = base.train_videos_per_class * scale
        data = generate_synthyto(
            work / f"data_x{scale}", SynthYTOConfig(train_videos_per_class=videos)
        )
        train = create_dataset("yto-v1.0", data, "train")
        clf = work / f"clf_{args.image_size}.pt"
        if not clf.is_file():
            _classifier(clf, args.image_size, list(train.classes))
        out = work / f"x{scale}_b{batch}" / "colocam.pt"
        t0 = time.perf_counter()
        rss = _peak_rss_mib(
            [
                *colocam,
                "train",
                "--method", "colocam",
                "--classifier", str(clf),
                "--dataset", "yto-v1.0",
                "--root", str(data),
                "--out", str(out),
                "--epochs", "1",
                "--batch-frames", str(batch),
                "--crf-step", "0.5",
                "--no-progress",
                "--tensorboard", "none",
                "--cache-dir", str(work / f"cams_x{scale}"),
            ]
        )  # fmt: skip
        rows.append(
            {
                "videos_per_class": videos,
                "train_frames": len(train.frames),
                "batch_frames": batch,
                "peak_rss_mib": rss,
                "seconds": time.perf_counter() - t0,
            }
        )
        print(rows[-1], flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "settings": vars(args),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1min": os.getloadavg()[0],
            "git_commit": commit,
        },
        "rows": rows,
        "ratio_data": rows[1]["peak_rss_mib"] / rows[0]["peak_rss_mib"],
        "ratio_batch": rows[2]["peak_rss_mib"] / rows[0]["peak_rss_mib"],
    }


def to_markdown(out: dict[str, Any]) -> str:
    s, m = out["settings"], out["machine"]
    lines = [
        "# Peak memory of `colocam train` against dataset size",
        "",
        f"One epoch of CoLo-CAM, untrained ResNet-18 classifier at {s['image_size']} px, "
        f"default SynthYTO and {s['scale']}x its training videos; commit {m['git_commit']}, "
        f"load {m['load_avg_1min']:.1f}. Command: `python benchmarks/bench_memory.py "
        f"--scale {s['scale']} --image-size {s['image_size']} --batch {s['batch']}`.",
        "",
        "| training videos / class | training frames | batch frames | peak RSS (MiB) | seconds |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in out["rows"]:
        lines.append(
            f"| {r['videos_per_class']} | {r['train_frames']} | {r['batch_frames']} | "
            f"{r['peak_rss_mib']:.0f} | {r['seconds']:.0f} |"
        )
    lines += [
        "",
        f"{s['scale']}x the data: {out['ratio_data']:.3f}x the peak RSS (bar: <= 1.25x); "
        f"2x the batch: {out['ratio_batch']:.3f}x.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--work", default="runs/bench_memory")
    p.add_argument("--out", default=str(RESULTS / "memory"))
    args = p.parse_args()
    out = run(args)
    base = Path(args.out)
    write_results(base.parent, base.name, out, to_markdown(out).splitlines())
    print(to_markdown(out))


if __name__ == "__main__":
    main()
