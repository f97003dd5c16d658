"""Stage-2 training step: time per part (data, encoder, decoder, each loss, backward, optimiser).

Run from the repository root::

    .venv/bin/python benchmarks/bench_step.py [--repeats 7] [--output-stride 32 8] [--quick]

The step is the one ``train_localizer`` runs (CoLo-CAM: PL + CRF + ASC + CoLo),
rebuilt from the same library pieces so each part can be timed on its own:

* ``data``: read the batch's frames from JPEG (SynthYTO, seed 0, generated
  under ``--work``) and apply the clip transform with the pseudo-label CAMs;
* ``encoder``: the frozen classifier's features (no grad);
* ``decoder``: the U-Net head's forward and the softmax;
* ``pl``: pseudo-label sampling from the CAMs plus the cross-entropy;
* ``crf``, ``asc``, ``coloc``: each loss term's forward;
* ``backward``: one ``loss.backward()`` through every term and the decoder;
* ``optimiser``: the SGD step.

The classifier is EfficientNet-Lite0 with its ImageNet weights (the demo's
backbone); the CAMs are smooth random maps at the encoder's output resolution.
Each part is the median over ``--repeats`` steps after one warm-up step.
Writes benchmarks/results/step.json and benchmarks/results/step.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("data", "encoder", "decoder", "pl", "crf", "asc", "coloc", "backward", "optimiser")
#: issue 12's bar for the demo setting (32 frames, 128 px, n = 4), seconds
STEP_BAR_S = 1.5


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class _Laps:
    """Seconds since the previous lap, by part name."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self._clock
        self._clock = now


def measure(args: argparse.Namespace, output_stride: int, amp: str, work: Path) -> dict[str, Any]:
    from colocam_plugin.api import create_dataset, get_registries
    from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto
    from colocam_plugin.data.transforms import ClipTransform
    from colocam_plugin.losses import IGNORE_INDEX, SizeLoss, sample_pseudo_labels
    from colocam_plugin.models.classifier import WGAPClassifier
    from colocam_plugin.train.stage2 import Stage2Config, amp_dtype, autocast, build_localizer

    size, n, batch = args.image_size, args.n_frames, args.batch_frames
    cfg = Stage2Config(
        image_size=size,
        resize=round(size * 8 / 7),
        n_frames=n,
        batch_frames=batch,
        crf_step=args.crf_step,
        amp=amp,
    )
    root = generate_synthyto(work / "synthyto", SynthYTOConfig(seed=0))
    shots = create_dataset("yto-v1.0", root, "train").shots
    torch.manual_seed(0)
    classifier = WGAPClassifier(
        pretrained="efficientnet-lite0", num_classes=5, output_stride=output_stride
    )
    model = build_localizer(classifier)
    regs = get_registries()
    crf = regs.losses.create(
        "crf",
        weight=cfg.crf_weight_at(size, size),
        sigma_rgb=cfg.sigma_rgb,
        sigma_xy=cfg.sigma_xy,
        step=cfg.crf_step,
    )
    coloc = regs.losses.create("coloc", weight=cfg.coloc_weight, sigma_rgb=cfg.sigma_rgb)
    size_loss = SizeLoss(weight=cfg.asc_weight)
    sampler = regs.samplers.create("sequence", shots=shots, n_frames=n, style="before", seed=0)
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.01, momentum=0.9, nesterov=True)
    transform = ClipTransform(resize=cfg.resize, crop=size, hflip=True, train=True)
    gen = torch.Generator().manual_seed(0)
    cam_side = size // output_stride
    seqs = list(sampler)
    per_batch = batch // n
    model.train()
    from colocam_plugin.data.io import read_image

    rows: list[dict[str, float]] = []
    for step in range(args.repeats + 1):
        laps = _Laps()
        lap = laps.lap

        chosen = [seqs[(step * per_batch + i) % len(seqs)] for i in range(per_batch)]
        images, cams = [], []
        for shot_idx, idxs in chosen:
            frames = [read_image(shots[shot_idx].frames[i].path) for i in idxs]
            raw = torch.rand(len(idxs), 1, 4, 4, generator=gen)
            clip_cams = F.interpolate(raw, size=(cam_side, cam_side), mode="bilinear")[:, 0]
            res = transform(frames, cams=clip_cams.numpy(), generator=gen)
            images.append(res.frames)
            cams.append(torch.as_tensor(res.cams))
        x, c = torch.cat(images), torch.cat(cams).float()
        lap("data")
        with torch.no_grad(), autocast(cfg.amp, "cpu"):
            feats = classifier.features(x)
        lap("encoder")
        with autocast(cfg.amp, "cpu"):
            seg = model.decode(feats, x.shape[-2:])
        seg = seg.float()
        probs = seg.softmax(1)
        lap("decoder")
        labels = sample_pseudo_labels(c, size=(size, size), generator=gen)
        loss = F.cross_entropy(seg, labels, ignore_index=IGNORE_INDEX)
        lap("pl")
        loss = loss + crf(probs, x)
        lap("crf")
        loss = loss + size_loss(probs)
        lap("asc")
        b = x.shape[0] // n
        loss = loss + coloc(probs.view(b, n, 2, size, size), x.view(b, n, 3, size, size))
        lap("coloc")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lap("backward")
        opt.step()
        lap("optimiser")
        if step > 0:  # the first step warms up
            rows.append(laps.times)
    parts = {p: statistics.median(r[p] for r in rows) for p in PARTS}
    total = statistics.median(sum(r.values()) for r in rows)
    return {
        "output_stride": output_stride,
        "amp": amp,
        "amp_dtype": str(amp_dtype(amp, "cpu")),
        "cam_side": cam_side,
        "parts_s": parts,
        "step_s": total,
        "bar_s": STEP_BAR_S,
        "meets_bar": total <= STEP_BAR_S,
    }


def write_markdown(report: dict[str, Any], path: Path) -> None:
    lines = [
        "# Stage-2 step time, per part",
        "",
        f"Command: `{report['command']}`; commit {report['commit']}; device cpu "
        f"({report['threads']} threads, {report['cpus']} cores); torch {report['torch']}; "
        f"1-min load average {report['load_start']:.2f} at start, {report['load_end']:.2f} "
        "at end.",
        "",
        f"Setting: {report['batch_frames']} frames ({report['batch_frames'] // report['n_frames']}"
        f" sequences of n = {report['n_frames']}), {report['image_size']} px, EfficientNet-Lite0 "
        f"+ U-Net head, CoLo-CAM (PL + CRF + ASC + CoLo), crf_step {report['crf_step']}. "
        f"Median of {report['repeats']} steps after a warm-up step, seconds.",
        "",
        "| output stride | CAM | amp | " + " | ".join(PARTS) + " | step | bar |",
        "|---|---|---|" + "---|" * (len(PARTS) + 2),
    ]
    for run in report["runs"]:
        cells = " | ".join(f"{run['parts_s'][p]:.3f}" for p in PARTS)
        verdict = "met" if run["meets_bar"] else "not met"
        lines.append(
            f"| {run['output_stride']} | {run['cam_side']}x{run['cam_side']} | "
            f"{run['amp']} ({run['amp_dtype'].replace('torch.', '')}) | {cells} | "
            f"**{run['step_s']:.2f}** | ≤ {run['bar_s']} s: {verdict} |"
        )
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7, help="timed steps (after one warm-up)")
    p.add_argument("--output-stride", type=int, nargs="+", default=[32, 8], choices=[8, 16, 32])
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-frames", type=int, default=32)
    p.add_argument("--n-frames", type=int, default=4)
    p.add_argument(
        "--crf-step", type=float, default=0.5, help="CRF colour-grid spacing (the demo's)"
    )
    p.add_argument(
        "--amp", nargs="+", default=["auto", "none"], help="Stage2Config.amp modes to time"
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--work", type=Path, default=Path("runs/bench_step"))
    p.add_argument("--out", type=Path, default=RESULTS / "step")
    p.add_argument("--quick", action="store_true", help="2 timed steps at 64 px (CI smoke)")
    args = p.parse_args()
    if args.quick:
        args.repeats, args.image_size, args.batch_frames = 2, 64, 8
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    runs = [measure(args, s, a, args.work) for s in args.output_stride for a in args.amp]
    report = {
        "command": "python benchmarks/bench_step.py "
        + f"--repeats {args.repeats} --output-stride "
        + " ".join(map(str, args.output_stride))
        + " --amp "
        + " ".join(args.amp)
        + (" --quick" if args.quick else ""),
        "commit": _git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "repeats": args.repeats,
        "image_size": args.image_size,
        "batch_frames": args.batch_frames,
        "n_frames": args.n_frames,
        "crf_step": args.crf_step,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
