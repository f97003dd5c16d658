"""Is SynthYTO's problem the one CoLo-CAM solves? Classifier accuracy vs CAM quality.

Per seed of the default SynthYTO (the demo's data and classifier recipe, the
same work folder as ``bench_ablation.py`` so its classifiers are reused):

- the stage-1 classifier's top-1 frame accuracy on val (annotated frames of
  TRAIN videos) and test (frames of unseen videos), the latter also at the
  ``--eval-sizes`` (training sees objects at 8/7 of the input scale: random
  crops of a larger resize, so a larger test input can match it better);
- a colour-count rule on test: predict the class whose part colour
  (:func:`~colocam_plugin.data.synthyto.class_colour`) covers the most pixels.
  It shows how much class evidence the frames carry;
- LayerCAM on test: CorLoc (class-avg) and mean IoU of its best box with the
  ground truth (partial CAMs: IoU well below 0.5); the same on the test frames
  the classifier gets right (``_correct``), and on val, where the classifier is
  right on nearly every frame: is the CAM partial because the classifier errs,
  or although it is right?

    python benchmarks/bench_classifier.py                # seeds 0 1 2
    python benchmarks/bench_classifier.py --seeds 0
    python benchmarks/bench_classifier.py --seeds 0 --cam-strides 8 [--cam-finetune-epochs 2]

``--cam-strides`` also scores the trained classifier rebuilt at a finer output
stride (16x16 CAMs at stride 8), as is or fine-tuned there: does a finer CAM
from the same weights box the object better?

Writes ``benchmarks/results/classifier.json`` and ``classifier.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_ablation import RESULTS, stage1_for_seed, write_results

from colocam_plugin.api import create_cam_method, create_dataset
from colocam_plugin.data.io import read_image
from colocam_plugin.data.synthyto import MANIFEST, class_colour
from colocam_plugin.harness import evaluate_methods
from colocam_plugin.recipes import STAGE1_LR, stage1_config
from colocam_plugin.train.checkpoint import versions
from colocam_plugin.train.stage1 import (
    evaluate_accuracy,
    load_classifier,
    predict_classes,
    train_classifier,
)

COLOUR_RADIUS = 45.0  # RGB distance that still counts as the class colour (drift, JPEG)


def colour_count_accuracy(frames: list[Any], num_classes: int) -> float:
    """Top-1 (%) of 'the class colour with the most pixels wins'."""
    palette = np.stack([class_colour(k) for k in range(num_classes)])
    correct = 0
    for f in frames:
        img = read_image(f.path).astype(np.float32)
        dist = np.linalg.norm(img[:, :, None, :] - palette[None, None], axis=-1)
        correct += int((dist < COLOUR_RADIUS).sum((0, 1)).argmax() == f.label)
    return 100.0 * correct / max(1, len(frames))


def layercam_scores(
    model: Any, frames: list[Any], *, num_classes: int, image_size: int, device: str
) -> dict[str, Any]:
    """LayerCAM's scores (CorLoc, mean IoU, ...) of ``model`` on ``frames``."""
    return evaluate_methods(
        model,
        frames,
        {"layercam": create_cam_method("layercam")},
        num_classes=num_classes,
        image_size=image_size,
        device=device,
        progress=False,
    )["layercam"].scores


def dilated_scores(
    clf: Path,
    stride: int,
    val: list[Any],
    test: list[Any],
    *,
    train: list[Any],
    seed: int,
    finetune_epochs: int,
    num_classes: int,
    image_size: int,
    device: str,
) -> dict[str, float]:
    """The classifier trained at its own stride, rebuilt with its encoder dilated
    to ``stride`` (same weights; fine-tuned on ``train`` for ``finetune_epochs``
    when > 0): accuracy and LayerCAM scores."""
    from colocam_plugin.pipeline import make_frame_loader

    model = load_classifier(clf, device=device, output_stride=stride)
    loader = make_frame_loader(image_size, image_size)
    tag = f"os{stride}"
    if finetune_epochs:
        # stage 1 again, from the trained weights, at the new stride (the
        # demo's recipe for that many epochs); the copy sits beside the original
        tag += f"_ft{finetune_epochs}"
        cfg = stage1_config(finetune_epochs, image_size, seed)
        train_classifier(
            model.train(),
            train,
            make_frame_loader(cfg.image_size, cfg.resize),
            clf.with_name(f"classifier-{tag}.pt"),
            config=cfg,
            classes=model.classes,
            device=device,
            progress=False,
        )
        model.eval()
    res_test, res_val = (
        layercam_scores(
            model, frames, num_classes=num_classes, image_size=image_size, device=device
        )
        for frames in (test, val)
    )
    return {
        f"classifier_test_accuracy_{tag}": evaluate_accuracy(model, test, loader, device=device),
        f"layercam_corloc_{tag}": res_test["corloc"],
        f"layercam_mean_iou_{tag}": res_test["mean_iou"],
        f"layercam_val_corloc_{tag}": res_val["corloc"],
        f"layercam_val_mean_iou_{tag}": res_val["mean_iou"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from colocam_plugin.pipeline import make_frame_loader

    device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.perf_counter()
    per_seed: dict[str, dict[str, float]] = {}
    for seed in args.seeds:
        data, clf, test_acc = stage1_for_seed(
            Path(args.work),
            seed,
            args.classifier_epochs,
            args.image_size,
            device,
            args.knobs,
            args.classifier_lr,
            args.stage1_overrides,
        )
        model = load_classifier(clf, device=device)
        # the v1.0 reader lists all 10 YTO classes; only the generated ones compete
        synth_classes = len(json.loads((data / MANIFEST).read_text())["classes"])
        val = create_dataset("yto-v1.0", data, "val")
        test = create_dataset("yto-v1.0", data, "test")
        # eval loaders resize straight to the input: the train-time resize is unused
        loader = make_frame_loader(args.image_size, args.image_size)
        preds = predict_classes(model, test.frames, loader, device=device)
        right = [f for f, k in zip(test.frames, preds) if k == f.label]
        res, res_right, res_val = (
            layercam_scores(
                model,
                frames,
                num_classes=len(test.classes),
                image_size=args.image_size,
                device=device,
            )
            for frames in (test.frames, right, val.frames)
        )
        per_seed[f"seed{seed}"] = {
            "classifier_val_accuracy": evaluate_accuracy(model, val.frames, loader, device=device),
            "classifier_test_accuracy": test_acc,
            **{
                f"classifier_test_accuracy_{size}px": evaluate_accuracy(
                    model, test.frames, make_frame_loader(size, size), device=device
                )
                for size in args.eval_sizes
            },
            "colour_count_test_accuracy": colour_count_accuracy(test.frames, synth_classes),
            "layercam_corloc": res["corloc"],
            "layercam_mean_iou": res["mean_iou"],
            "layercam_corloc_correct": res_right["corloc"],
            "layercam_mean_iou_correct": res_right["mean_iou"],
            "layercam_val_corloc": res_val["corloc"],
            "layercam_val_mean_iou": res_val["mean_iou"],
        }
        # the training frames are read only to fine-tune, once per seed
        train = (
            create_dataset("yto-v1.0", data, "train").frames
            if args.cam_strides and args.cam_finetune_epochs
            else []
        )
        for stride in args.cam_strides:
            per_seed[f"seed{seed}"].update(
                dilated_scores(
                    clf,
                    stride,
                    val.frames,
                    test.frames,
                    train=train,
                    seed=seed,
                    finetune_epochs=args.cam_finetune_epochs,
                    num_classes=len(test.classes),
                    image_size=args.image_size,
                    device=device,
                )
            )
        print(f"seed {seed}: {per_seed[f'seed{seed}']}", flush=True)
    keys = next(iter(per_seed.values())).keys()
    summary = {
        k: {
            "mean": statistics.mean(r[k] for r in per_seed.values()),
            "std": statistics.stdev(r[k] for r in per_seed.values()) if len(per_seed) > 1 else 0.0,
        }
        for k in keys
    }
    return {
        "settings": vars(args) | {"device": device, "seconds": time.perf_counter() - t0},
        "versions": versions() | {"platform": platform.platform()},
        "summary": summary,
        "runs": per_seed,
    }


def to_markdown(out: dict[str, Any]) -> str:
    s = out["settings"]
    seeds = list(out["runs"])
    lines = [
        "# Classifier accuracy vs CAM quality on SynthYTO",
        "",
        f"Seeds {s['seeds']}, input {s['image_size']}, classifier epochs "
        f"{s['classifier_epochs']}, classifier lr {s.get('classifier_lr') or STAGE1_LR:g}, "
        f"SynthYTO knobs changed: {s['knobs'] or 'none'}, "
        f"stage-1 fields changed: {s.get('stage1_overrides') or 'none'}, "
        f"device {s['device']}, {s['seconds']:.0f} s. Command: "
        f"`python benchmarks/bench_classifier.py {' '.join(s['argv'])}`.",
        "",
        "| measure | mean | std | " + " | ".join(seeds) + " |",
        "|---|---:|---:|" + "---:|" * len(seeds),
    ]
    for k, v in out["summary"].items():
        runs = " | ".join(f"{out['runs'][sd][k]:.3g}" for sd in seeds)
        lines.append(f"| {k} | {v['mean']:.3g} | {v['std']:.2g} | {runs} |")
    lines += [
        "",
        "Accuracies in %, CorLoc in %, IoU in 0..1. val = annotated frames of training "
        "videos, test = unseen videos. `layercam_*` rows score test, `_correct` only the "
        "test frames the classifier gets right, `layercam_val_*` val.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--classifier-epochs", type=int, default=6)
    p.add_argument(
        "--classifier-lr",
        type=float,
        help="stage-1 base lr instead of the demo's (use its own --work)",
    )
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument(
        "--eval-sizes",
        type=int,
        nargs="*",
        default=[160],
        help="extra test input sizes (multiples of 32) for the classifier accuracy",
    )
    p.add_argument(
        "--cam-strides",
        type=int,
        nargs="*",
        default=[],
        choices=[8, 16],
        help="also score the trained classifier rebuilt at these output strides "
        "(dilated encoder, same weights; see --cam-finetune-epochs)",
    )
    p.add_argument(
        "--cam-finetune-epochs",
        type=int,
        default=0,
        help="with --cam-strides: train the rebuilt classifier this many more "
        "epochs at the new stride first (0: score it as rebuilt)",
    )
    p.add_argument("--work", default="runs/ablation", help="shared with bench_ablation.py")
    p.add_argument("--out", default=str(RESULTS / "classifier"))
    p.add_argument(
        "--synth",
        nargs="*",
        default=[],
        metavar="KNOB=JSON",
        help="SynthYTO knobs to change, e.g. body_size=[0.3,0.5] (use its own --work)",
    )
    p.add_argument(
        "--stage1",
        nargs="*",
        default=[],
        metavar="FIELD=JSON",
        help="Stage1Config fields to change, e.g. colour_jitter=0.4 hue_jitter=0.5 "
        "(use its own --work)",
    )
    args = p.parse_args(argv)
    args.knobs = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.synth)}
    args.stage1_overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.stage1)}
    args.argv = list(sys.argv[1:] if argv is None else argv)
    write_results(run(args), args.out, to_markdown)


if __name__ == "__main__":
    main()
