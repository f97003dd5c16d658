"""``colocam evaluate``: every listed method through the shared harness."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from colocam_plugin.cli.argtypes import (
    device_name,
    existing_file,
    existing_files,
    output_dir,
    output_file,
    positive_int,
)

__all__ = ["add_arguments", "prepare", "run", "write_outputs"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from colocam_plugin.cli.common import add_dataset_arguments

    add_dataset_arguments(p, split="test")
    p.add_argument("--classifier", required=True, type=existing_file, help="stage-1 checkpoint")
    p.add_argument("--methods", default="layercam", help="comma-separated registered CAM methods")
    p.add_argument(
        "--localizers",
        type=existing_files,
        default="",
        help="comma-separated stage-2 checkpoints (colocam / fcam / tcam) to evaluate too",
    )
    p.add_argument(
        "--image-size", type=positive_int, default=None, help="default: the classifier's"
    )
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--thresholds", type=positive_int, default=None, help="1000 on test, 250 on val")
    p.add_argument(
        "--device",
        type=device_name,
        default="auto",
        help="auto (CUDA if present), cpu, cuda, cuda:N",
    )
    p.add_argument("--json", metavar="OUT", type=output_file, help="write {method: scores} here")
    p.add_argument(
        "--save-cams",
        metavar="DIR",
        type=output_dir,
        help="write each method's CAMs as score npz",
    )
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from colocam_plugin import distributed

    # under torchrun: batches dealt to the ranks, counts summed (docs/distributed.md)
    with distributed.session(_device(args)) as device:
        args.device = device
        return _run(args, main=distributed.is_main())


def _device(args: argparse.Namespace) -> str:
    from colocam_plugin.devices import resolve_device

    return resolve_device(args.device)


def prepare(
    args: argparse.Namespace, *, what: str = "evaluate"
) -> tuple[Any, Any, dict[str, Any], int]:
    """Dataset, classifier, ``{display name: CAM method}`` and input size from the flags.

    Shared by ``evaluate`` and ``gallery``. Unknown method names fail before
    any data is read; classifiers and localizers trained on other classes
    are refused with both class lists.
    """
    from colocam_plugin.api import create_cam_method, create_dataset
    from colocam_plugin.cli.common import dataset_kwargs
    from colocam_plugin.distributed import main_first
    from colocam_plugin.errors import DataError, UsageError
    from colocam_plugin.train.checkpoint import check_classes
    from colocam_plugin.train.stage1 import load_classifier

    methods: dict[str, Any] = {}  # unknown names fail here, before any data is read
    for name in filter(None, (m.strip() for m in args.methods.split(","))):
        methods[name] = create_cam_method(name)
    if not methods and not args.localizers.strip(","):
        raise UsageError(f"--methods and --localizers are both empty: nothing to {what}")
    with main_first():  # a dataset may build a cache on first read
        ds = create_dataset(args.dataset, args.root, args.split, **dataset_kwargs(args))
    model = load_classifier(args.classifier, device=args.device)
    data = f"{args.dataset} at {args.root}"
    check_classes(model.classes, ds.classes, checkpoint=args.classifier, data=data)
    size = args.image_size or model.checkpoint_config.get("image_size", 224)
    for path in filter(None, (m.strip() for m in args.localizers.split(","))):
        loc = create_cam_method("localizer", checkpoint=path, device=args.device)
        check_classes(loc.classes, ds.classes, checkpoint=path, data=data)
        methods[_unique(loc.name, methods)] = loc
    if not ds.frames:
        raise DataError(f"{args.root}: split {args.split!r} of {args.dataset} has no frames")
    return ds, model, methods, int(size)


def write_outputs(
    results: dict[str, Any], args: argparse.Namespace, methods: dict[str, Any] | None = None
) -> None:
    """``--save-cams`` (a folder of score npz, all or nothing) and ``--json``, atomically.

    A localizer's JSON entry also names its ``checkpoint`` file: two of one
    method are ``colocam`` and ``colocam-2`` in the order of ``--localizers``.
    """
    from colocam_plugin.atomic import atomic_dir, atomic_write
    from colocam_plugin.harness import save_cams_npz

    if args.save_cams:  # the folder appears with every file, or not at all
        with atomic_dir(args.save_cams) as cams_dir:
            for name, res in results.items():
                save_cams_npz(res, Path(cams_dir) / f"{name}.npz")
    if args.json:
        payload = {name: dict(res.scores) for name, res in results.items()}
        for name, method in (methods or {}).items():
            if getattr(method, "checkpoint", None) is not None and name in payload:
                payload[name]["checkpoint"] = str(method.checkpoint)
        with atomic_write(args.json) as fh:
            fh.write(json.dumps(payload, indent=2, sort_keys=True, default=float) + "\n")


def _run(args: argparse.Namespace, *, main: bool) -> int:
    """The command in one process, or on one rank (only ``main`` prints and writes)."""
    from colocam_plugin.harness import evaluate_methods, format_table

    ds, model, methods, size = prepare(args)
    thresholds = args.thresholds or (1000 if args.split == "test" else 250)
    results = evaluate_methods(
        model,
        ds.frames,
        methods,
        num_classes=len(ds.classes),
        image_size=size,
        batch_size=args.batch_size,
        thresholds=thresholds,
        device=args.device,
        keep_cams=bool(args.save_cams),
        progress=not args.no_progress and main,
    )
    if not main:  # the scores are pooled on every rank; rank 0 prints and writes them
        return 0
    print(format_table(results, ds.classes))
    write_outputs(results, args, methods)
    return 0


def _unique(name: str, taken: dict[str, Any]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}-{i}", i + 1
    return out
