"""Stage-2 training step: time per part (data, encoder, decoder, each loss, backward, optimiser).

Run from the repository root::

    .venv/bin/python benchmarks/bench_step.py [--settings demo resnet50] [--repeats 5]
        [--encoder NAME] [--image-size S] [--batch-frames B] [--n-frames N]
        [--crf-step none|0.5] [--output-stride 32 8] [--amp auto none] [--quick]

The step is the one ``train_localizer`` runs (CoLo-CAM: PL + CRF + ASC + CoLo),
rebuilt from the same library pieces so each part can be timed on its own:

* ``data``: read the batch's frames from JPEG (SynthYTO, seed 0, generated
  under ``--work``), resize them with their pseudo-label CAMs (the loader
  workers' part) and crop and flip both on the device (Kornia, one draw per
  sequence, as ``train_localizer`` does);
* ``encoder``: the frozen classifier's features (no grad);
* ``decoder``: the U-Net head's forward and the softmax;
* ``pl``: pseudo-label sampling from the CAMs plus the cross-entropy;
* ``crf``, ``asc``, ``coloc``: each loss term's forward AND its backward to the
  probabilities (the terms are evaluated on a detached copy of the softmax, so
  each term's whole cost is its own);
* ``backward``: the rest of ``loss.backward()``: from the cross-entropy and the
  summed term gradients through the softmax and the decoder;
* ``optimiser``: the SGD step.

The gradient reaching the decoder is the same as one ``loss.backward()`` over
the summed loss; only the attribution differs. Each term's share is its time
over the whole step's.

Settings (``--settings``; the flags above override a field in every selected
setting):

* ``demo``: EfficientNet-Lite0 with its ImageNet weights (the demo's
  backbone), 32 frames (8 sequences of n = 4) at 128 px, CRF colour step 0.5,
  output stride 32 and 8 (issue 12's bar: a step within 1.5 s);
* ``resnet50``: an smp ResNet-50 encoder (random weights: nothing is
  downloaded), 8 frames (2 sequences of n = 4) at 224 px, the accurate CRF
  (step None), output stride 32 (issue 15's bar: CoLo + CRF within 15% of the
  step on 2 CPU cores).

The CAMs are smooth random maps at the encoder's output resolution. Each part
is the median over ``--repeats`` steps after one warm-up step. Writes
benchmarks/results/step.json and benchmarks/results/step.md (``--out``).
:func:`build_step` is shared with ``bench_cost.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import RESULTS, env_line, environment, write_results

PARTS = ("data", "encoder", "decoder", "pl", "crf", "asc", "coloc", "backward", "optimiser")
#: issue 12's bar for the demo setting (32 frames, 128 px, n = 4), seconds
STEP_BAR_S = 1.5
#: issue 15's bar: CoLo + CRF (forward + backward) share of a stage-2 step
TERMS_BAR_SHARE = 0.15


@dataclass(frozen=True)
class StepSetting:
    """One stage-2 step configuration (encoder, input size, batch, sequence length)."""

    name: str
    encoder: str
    image_size: int
    batch_frames: int
    n_frames: int
    crf_step: float | None
    output_strides: tuple[int, ...]
    #: the bar this setting is held to: "step" (STEP_BAR_S) or "terms" (TERMS_BAR_SHARE)
    bar: str


SETTINGS = {
    "demo": StepSetting("demo", "efficientnet-lite0", 128, 32, 4, 0.5, (32, 8), "step"),
    "resnet50": StepSetting("resnet50", "resnet50", 224, 8, 4, None, (32,), "terms"),
}


class _Laps:
    """Seconds since the previous lap, by part name."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self._clock
        self._clock = now


def build_classifier(encoder: str, output_stride: int) -> Any:
    """The frozen classifier: an offline pretrained backbone by name, else a random smp encoder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # smp/timm must never reach the network
    from colocam_plugin.models.classifier import WGAPClassifier
    from colocam_plugin.models.pretrained import PRETRAINED

    if encoder in PRETRAINED:
        return WGAPClassifier(pretrained=encoder, num_classes=5, output_stride=output_stride)
    return WGAPClassifier(encoder, num_classes=5, output_stride=output_stride)


def build_step(
    setting: StepSetting, output_stride: int, amp: str, work: Path
) -> Callable[[int], dict[str, float]]:
    """A function running stage-2 step ``i`` of ``setting`` and returning its laps (seconds).

    Everything (data set, classifier, localizer, losses, optimiser) is built
    here, so the caller can take a memory baseline between building and stepping.
    """
    from colocam_plugin.api import create_dataset, get_registries
    from colocam_plugin.data.io import read_image
    from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto
    from colocam_plugin.data.transforms import ClipTransform
    from colocam_plugin.losses import IGNORE_INDEX, SizeLoss, sample_pseudo_labels
    from colocam_plugin.train.augment import crop_flip
    from colocam_plugin.train.stage2 import Stage2Config, autocast, build_localizer

    size, n, batch = setting.image_size, setting.n_frames, setting.batch_frames
    cfg = Stage2Config(
        image_size=size,
        resize=round(size * 8 / 7),
        n_frames=n,
        batch_frames=batch,
        crf_step=setting.crf_step,
        amp=amp,
    )
    root = generate_synthyto(work / "synthyto", SynthYTOConfig(seed=0))
    shots = create_dataset("yto-v1.0", root, "train").shots
    torch.manual_seed(0)
    classifier = build_classifier(setting.encoder, output_stride)
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
    transform = ClipTransform(resize=cfg.resize, crop=cfg.resize, hflip=False, train=False)
    gen = torch.Generator().manual_seed(0)
    cam_side = size // output_stride
    seqs = list(sampler)
    per_batch = batch // n
    model.train()

    def step(i: int) -> dict[str, float]:
        laps = _Laps()
        lap = laps.lap
        chosen = [seqs[(i * per_batch + j) % len(seqs)] for j in range(per_batch)]
        images, cams = [], []
        for shot_idx, idxs in chosen:
            frames = [read_image(shots[shot_idx].frames[t].path) for t in idxs]
            raw = torch.rand(len(idxs), 1, 4, 4, generator=gen)
            clip_cams = F.interpolate(raw, size=(cam_side, cam_side), mode="bilinear")[:, 0]
            res = transform(frames, cams=clip_cams.numpy())
            images.append(res.frames)
            cams.append(torch.as_tensor(res.cams))
        x, c = torch.cat(images), torch.cat(cams).float()
        x, c = crop_flip(x, size, gen, maps=c, sequence_length=n)
        lap("data")
        with torch.no_grad(), autocast(cfg.amp, "cpu"):  # as Localizer.forward
            feats = classifier.features(x.contiguous(memory_format=torch.channels_last))
        lap("encoder")
        with autocast(cfg.amp, "cpu"):
            seg = model.decode(feats, x.shape[-2:])
        seg = seg.float()
        probs = seg.softmax(1)
        lap("decoder")
        labels = sample_pseudo_labels(c, size=(size, size), generator=gen)
        pl = F.cross_entropy(seg, labels, ignore_index=IGNORE_INDEX)
        lap("pl")
        # the terms on a detached copy: each term's forward + backward is its own lap
        leaf = probs.detach().requires_grad_()
        crf(leaf, x).backward()
        lap("crf")
        size_loss(leaf).backward()
        lap("asc")
        b = x.shape[0] // n
        coloc(leaf.view(b, n, 2, size, size), x.view(b, n, 3, size, size)).backward()
        lap("coloc")
        opt.zero_grad(set_to_none=True)
        torch.autograd.backward([pl, probs], [None, leaf.grad])
        lap("backward")
        opt.step()
        lap("optimiser")
        return laps.times

    return step


def measure(
    setting: StepSetting, output_stride: int, amp: str, repeats: int, work: Path
) -> dict[str, Any]:
    """Median part times of ``repeats`` steps after a warm-up step, and each part's share."""
    from colocam_plugin.train.stage2 import amp_dtype

    step = build_step(setting, output_stride, amp, work)
    rows = [step(i) for i in range(repeats + 1)][1:]  # the first step warms up
    parts = {p: statistics.median(r[p] for r in rows) for p in PARTS}
    total = statistics.median(sum(r.values()) for r in rows)
    shares = {p: statistics.median(r[p] / sum(r.values()) for r in rows) for p in PARTS}
    terms_share = statistics.median((r["crf"] + r["coloc"]) / sum(r.values()) for r in rows)
    meets = total <= STEP_BAR_S if setting.bar == "step" else terms_share <= TERMS_BAR_SHARE
    return {
        "setting": setting.name,
        "encoder": setting.encoder,
        "output_stride": output_stride,
        "amp": amp,
        "amp_dtype": str(amp_dtype(amp, "cpu")),
        "cam_side": setting.image_size // output_stride,
        "parts_s": parts,
        "shares": shares,
        "step_s": total,
        "crf_coloc_share": terms_share,
        "bar": f"step <= {STEP_BAR_S} s"
        if setting.bar == "step"
        else f"crf + coloc <= {TERMS_BAR_SHARE:.0%} of the step",
        "meets_bar": meets,
        "steps_s": [sum(r.values()) for r in rows],
    }


def _load(run: dict[str, Any]) -> str:
    """The 1-min load average when the run started ("-" for runs that did not record it)."""
    load = run.get("load_1min")
    return "-" if load is None else f"{load:.1f}"


def markdown(report: dict[str, Any]) -> list[str]:
    """The results page: one table of times and one of shares per setting."""
    lines = [
        "# Stage-2 step time, per part",
        "",
        f"Command: `{report['command']}`. {env_line(report['environment'])} 1-min load "
        f"average {report['load_start']:.2f} at start, {report['load_end']:.2f} at end.",
        "",
        "threads: torch intra-op threads; load: the machine's 1-min load average when the "
        "run started (2 cores; other jobs share them). "
        "Each loss term's time is its forward **and** its backward to the probabilities "
        "(evaluated on a detached copy of the softmax); `backward` is the rest: through the "
        "softmax and the decoder. Median of "
        f"{report['repeats']} steps after a warm-up step, seconds; shares are the median of "
        "the per-step shares.",
    ]
    for name, setting in report["settings"].items():
        runs = [r for r in report["runs"] if r["setting"] == name]
        lines += [
            "",
            f"## Setting `{name}`",
            "",
            f"{setting['batch_frames']} frames ({setting['batch_frames'] // setting['n_frames']} "
            f"sequences of n = {setting['n_frames']}), {setting['image_size']} px, "
            f"{setting['encoder']} + U-Net head, CoLo-CAM (PL + CRF + ASC + CoLo), "
            f"crf_step {setting['crf_step']}.",
            "",
            "| threads | load | output stride | CAM | amp | "
            + " | ".join(PARTS)
            + " | step | bar |",
            "|---|---|---|---|---|" + "---|" * (len(PARTS) + 2),
        ]
        for run in runs:
            cells = " | ".join(f"{run['parts_s'][p]:.3f}" for p in PARTS)
            verdict = "met" if run["meets_bar"] else "not met"
            lines.append(
                f"| {run.get('threads', '?')} | {_load(run)} | "
                f"{run['output_stride']} | {run['cam_side']}x{run['cam_side']} | "
                f"{run['amp']} ({run['amp_dtype'].replace('torch.', '')}) | {cells} | "
                f"**{run['step_s']:.2f}** | {run['bar']}: {verdict} |"
            )
        lines += [
            "",
            "Share of the step, per part:",
            "",
            "| threads | output stride | amp | " + " | ".join(PARTS) + " | crf + coloc |",
            "|---|---|---|" + "---|" * (len(PARTS) + 1),
        ]
        for run in runs:
            cells = " | ".join(f"{100 * run['shares'][p]:.1f}%" for p in PARTS)
            lines.append(
                f"| {run.get('threads', '?')} | {run['output_stride']} | {run['amp']} | {cells} | "
                f"**{100 * run['crf_coloc_share']:.1f}%** |"
            )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--settings",
        nargs="+",
        default=list(SETTINGS),
        choices=list(SETTINGS),
        help="named settings to time (see the module doc)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed steps (after one warm-up)")
    p.add_argument("--encoder", help="override: encoder (smp name or efficientnet-lite0)")
    p.add_argument("--image-size", type=int, help="override: input side in pixels")
    p.add_argument("--batch-frames", type=int, help="override: frames per step")
    p.add_argument("--n-frames", type=int, help="override: frames per sequence")
    p.add_argument("--crf-step", help="override: CRF colour step ('none': the accurate default)")
    p.add_argument(
        "--output-stride", type=int, nargs="+", choices=[8, 16, 32], help="override: strides"
    )
    p.add_argument(
        "--amp", nargs="+", default=["auto", "none"], help="Stage2Config.amp modes to time"
    )
    p.add_argument(
        "--threads", type=int, nargs="+", default=[0], help="torch threads (0: torch's default)"
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the runs of <out>/step.json that this command does not re-measure",
    )
    p.add_argument("--work", type=Path, default=Path("runs/bench_step"))
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--quick", action="store_true", help="2 timed steps at 64 px, 8 frames (CI)")
    args = p.parse_args()
    overrides: dict[str, Any] = {
        "encoder": args.encoder,
        "image_size": args.image_size,
        "batch_frames": args.batch_frames,
        "n_frames": args.n_frames,
        "output_strides": tuple(args.output_stride) if args.output_stride else None,
    }
    if args.crf_step is not None:
        overrides["crf_step"] = None if args.crf_step.lower() == "none" else float(args.crf_step)
    if args.quick:
        args.repeats = 2
        overrides.update(image_size=64, batch_frames=8)
    settings = [
        replace(SETTINGS[name], **{k: v for k, v in overrides.items() if v is not None})
        for name in args.settings
    ]
    if args.crf_step is not None and overrides["crf_step"] is None:  # explicit "none"
        settings = [replace(s, crf_step=None) for s in settings]
    default_threads = torch.get_num_threads()
    load_start = os.getloadavg()[0]
    runs = []
    for threads in args.threads:
        torch.set_num_threads(threads if threads > 0 else default_threads)
        for s in settings:
            for stride in s.output_strides:
                for amp in args.amp:
                    load = os.getloadavg()[0]
                    run = measure(s, stride, amp, args.repeats, args.work)
                    run.update(threads=torch.get_num_threads(), load_1min=load)
                    runs.append(run)
    command = (
        "python benchmarks/bench_step.py --settings "
        + " ".join(args.settings)
        + f" --repeats {args.repeats} --amp "
        + " ".join(args.amp)
        + (" --threads " + " ".join(map(str, args.threads)) if args.threads != [0] else "")
        + (" --quick" if args.quick else "")
    )
    report = {
        "command": command,
        "environment": environment("cpu"),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "repeats": args.repeats,
        "settings": {s.name: asdict(s) for s in settings},
        "runs": runs,
    }
    previous = args.out / "step.json"
    if args.merge and previous.exists():
        old = json.loads(previous.read_text())
        key = ("setting", "output_stride", "amp", "threads")
        done = {tuple(r[k] for k in key) for r in runs}
        kept = [r for r in old.get("runs", []) if tuple(r.get(k) for k in key) not in done]
        report["runs"] = kept + runs
        report["settings"] = old.get("settings", {}) | report["settings"]
        report["command"] = old.get("command", "") + "`, then `" + command + " --merge"
    lines = markdown(report)
    write_results(args.out, "step", report, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
